"""What the CLI prints besides errors: its version, and --quiet's one line (fast: no Keras)."""

import subprocess
import sys

from tests import builders
from tuner.cli import one_line
from tuner.version import VERSION


def test_version_prints_the_installed_version():
    result = subprocess.run([sys.executable, "-m", "tuner.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"tune-loader {VERSION}"
    assert VERSION[0].isdigit()  # read from the installed package's metadata


def test_quiet_prints_the_settings_and_the_speed_up_on_one_line():
    line = one_line(builders.recommendation())
    assert "\n" not in line
    assert line.startswith("workers=8, use_multiprocessing=False, max_queue_size=16: 6.60x, [6.30, 6.90]")


def test_compare_prints_both_runs_and_gates_on_a_slower_new_one(tmp_path):
    import dataclasses

    from probes.stats import summarize

    old = builders.recommendation()  # its answer measured 300 batches/s
    slower = dataclasses.replace(old, best_tried_batches_per_second=summarize([240.0] * 6))
    (tmp_path / "old.json").write_text(old.to_json())
    (tmp_path / "new.json").write_text(slower.to_json())

    def compare(*args):
        return subprocess.run([sys.executable, "-m", "tuner.cli", "compare", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    same = compare("old.json", "old.json", "--fail-below", "0.95")
    assert same.returncode == 0 and "NEW / OLD: 1.000x" in same.stdout and "8 threads, queue 16" in same.stdout
    gated = compare("old.json", "new.json", "--fail-below", "0.95")
    assert gated.returncode == 1 and "NEW / OLD: 0.800x" in gated.stdout
    assert compare("old.json", "new.json").returncode == 0  # no gate asked for
    missing = compare("old.json", "nope.json")
    assert missing.returncode == 2 and "No such file: nope.json" in missing.stderr and "Traceback" not in missing.stderr
