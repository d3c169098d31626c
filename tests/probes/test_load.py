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


def test_a_descendant_of_a_measured_tree_is_ours_even_when_another_process_reaps_it():
    # a forkserver's workers are its children: their CPU never reaches the trial process's reaped times
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    server = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spin!r}])"])
    try:
        time.sleep(0.5)  # let the grandchild start spinning
        ours = (os.getpid(),)
        before, began = cpu_snapshot(ours, (server.pid,)), time.monotonic()
        plain = cpu_snapshot(ours)
        time.sleep(1.0)
        wall = time.monotonic() - began
        as_tree = foreign_cores(before, cpu_snapshot(ours, (server.pid,)), wall)
        as_pids = foreign_cores(plain, cpu_snapshot(ours), wall)
    finally:
        server.kill()
        server.wait()
    assert as_pids - as_tree >= 0.5  # the spinning grandchild: foreign only when its tree is not measured
