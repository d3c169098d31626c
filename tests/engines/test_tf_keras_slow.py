"""Real tf-keras (legacy Keras 2) training through fit_generator: few, small, marked slow. They run in CI too."""

import json
import subprocess
import sys
import textwrap

import pytest

from tests.engines.test_keras3_slow import no_descendants_left

pytestmark = pytest.mark.slow

PLAIN_GENERATOR = """
import numpy as np
import tf_keras  # noqa: F401

def batches():
    index = 0
    while True:
        total = sum(i * index % 7 for i in range(40_000))  # pure Python: the GIL is held inside next()
        x = np.full((8, 4), total % 5, dtype="float32")
        yield x, x.sum(axis=1)
        index += 1
"""

SEQUENCE = """
import time
import numpy as np
import tf_keras

class Sleepy(tf_keras.utils.Sequence):
    def __len__(self):
        return 60

    def __getitem__(self, index):
        time.sleep(0.01)
        x = np.full((8, 4), index, dtype="float32")
        return x, x.sum(axis=1)

def make_dataset():
    return Sleepy()
"""


def run_cli(tmp_path, source: str, *flags: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    (tmp_path / "legacy.py").write_text(textwrap.dedent(source))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tuner.cli", "legacy.py", "--out", str(out), *flags],
        cwd=tmp_path, capture_output=True, text=True, timeout=540,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((out / "results.json").read_text()), (out / "report.html").read_text()


def test_a_plain_generator_is_tuned_with_fit_generator_and_unsafe_settings_are_recorded_infeasible(tmp_path):
    result, data, html = run_cli(tmp_path, PLAIN_GENERATOR, "--trials", "6", "--time-budget", "30")
    assert data["engine"] == "tf-keras" and data["dataset"]["kind"] == "generator"
    assert data["dataset"]["thread_safe"] is False
    statuses = {t["status"] for t in data["trials"]}
    assert "ok" in statuses
    infeasible = [t for t in data["trials"] if t["status"] == "infeasible"]
    assert infeasible and all(t["config"]["workers"] > 1 and not t["config"]["use_multiprocessing"] for t in infeasible)
    assert all("not thread-safe" in t["reason"] for t in infeasible)
    # Processes would duplicate the data: never tried, never recommended without the flag.
    assert not any(t["config"]["use_multiprocessing"] for t in data["trials"])
    assert data["config"]["use_multiprocessing"] is False and data["duplicated_data_allowed"] is False
    assert "model.fit_generator(batches()" in result.stdout
    assert 'id="migration"' in html and "keras.utils.PyDataset" in html
    assert no_descendants_left() == []


def test_duplicated_data_is_tried_only_with_the_flag_and_then_stated_loudly(tmp_path):
    result, data, html = run_cli(
        tmp_path, PLAIN_GENERATOR, "--trials", "5", "--time-budget", "30", "--allow-duplicated-data"
    )
    assert any(t["config"]["use_multiprocessing"] and t["status"] == "ok" for t in data["trials"])
    assert data["duplicated_data_allowed"] is True
    assert 'id="duplicated"' in html
    if data["config"]["use_multiprocessing"]:
        assert any(w.startswith("DUPLICATED DATA") for w in data["warnings"])
    assert no_descendants_left() == []


def test_a_sequence_is_tuned_under_tf_keras_and_compared_with_keras3(tmp_path):
    result, data, html = run_cli(tmp_path, SEQUENCE, "--trials", "4", "--time-budget", "30", "--compare-keras3")
    assert data["engine"] == "tf-keras" and data["dataset"]["kind"] == "sequence"
    assert data["model"]["description"].startswith("tune-loader default (tf-keras)")
    comparison = data["keras3"]
    assert comparison["engine"] == "keras3" and comparison["batches_per_second"]["median"] > 0
    assert comparison["ratio_low"] <= comparison["ratio"] <= comparison["ratio_high"]
    assert "Measured as a Keras 3 PyDataset" in html
    assert any("tf-keras pays" in reason for reason in data["reasons"])
    assert no_descendants_left() == []
