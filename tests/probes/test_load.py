"""The CPU other processes take while a window runs (probes.load)."""

import os
import subprocess
import sys
import time

import pytest

from probes.load import CpuSnapshot, cpu_snapshot, foreign_cores


def test_foreign_cores_are_busy_time_not_ours_plus_steal_over_the_wall_time():
    before = CpuSnapshot(busy_seconds=100.0, steal_seconds=5.0, ours_seconds=40.0)
    after = CpuSnapshot(busy_seconds=104.0, steal_seconds=5.5, ours_seconds=42.5)
    # 4 s busy, 2.5 s of it ours, 0.5 s stolen, over 2 s: 0.75 + 0.25 cores.
    assert foreign_cores(before, after, 2.0) == pytest.approx(1.0)
    assert foreign_cores(before, before, 0.0) == 0.0


def test_a_process_spinning_beside_the_measured_one_is_seen_as_foreign():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)  # let it start
        before, began = cpu_snapshot((os.getpid(),)), time.monotonic()
        time.sleep(1.0)
        load = foreign_cores(before, cpu_snapshot((os.getpid(),)), time.monotonic() - began)
    finally:
        spinner.kill()
        spinner.wait()
    assert load >= 0.5  # one core spinning; the measured process itself slept
