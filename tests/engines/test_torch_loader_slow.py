"""Real Keras 3 training on the torch backend through the CLI, worker processes started by forkserver: the
example's torch DataLoader (knobs in DataLoader terms, persistent workers timed, the answer by the race's
rules) and a PyDataset, also timed inside a DataLoader whose workers persist. No worker is left running.
Marked slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import left_after, tagged_env
from tuner.search import decision

pytest.importorskip("torch")
pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_dataloader.py"


def test_the_example_dataloader_is_tuned_under_torch_with_forkserver_workers(tmp_path):
    env, tag = tagged_env()
    env["KERAS_BACKEND"] = "torch"
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tuner.cli", str(EXAMPLE), "--trials", "5", "--time-budget", "20",
                             "--start-method", "forkserver", "--out", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert (data["engine"], data["backend"], data["machine"]["start_method"]) == ("torch-dataloader", "torch",
                                                                                  "forkserver")
    assert data["dataset"]["class_name"] == "HashedText" and data["dataset"]["kind"] == "dataloader"
    timed = [t for t in data["trials"] if t["status"] == "ok"]
    # Fresh forkserver workers cost over a second each per epoch here, so the analytic model may leave them
    # unscreened; persistent ones must be timed.
    assert any(t["config"]["persistent_workers"] for t in timed)
    assert not any(t["config"]["workers"] > 1 and not t["config"]["use_multiprocessing"] for t in data["trials"])
    knobs = data["knobs"]
    if knobs["num_workers"]:
        assert knobs["multiprocessing_context"] == "forkserver" and knobs["prefetch_factor"] >= 1
        # Workers are recommended on the race's evidence, decided or not (docs/search.md, "The choice and the
        # claim"): expected faster by the margin, and faster with the probability, the rule asks for.
        how, claim = data["decision"], data["confirmation"]
        assert how["basis"] in ("decided_faster", "likeliest_faster")
        assert claim["speedup"] >= 1.0 + decision.MIN_EXPECTED_GAIN
        assert how["probability_faster"] >= decision.MIN_PROBABILITY_FASTER
        assert (how["basis"] == "decided_faster") == (claim["speedup_low"] > 1.0)
        assert len(claim["default_samples"]) >= decision.FIRST_VERDICT_ROUND
    else:
        assert knobs == {"num_workers": 0}
    arguments = ", ".join(f"{name}={value!r}" for name, value in knobs.items())
    assert f"DataLoader(dataset, batch_size=..., {arguments})" in result.stdout
    assert "torch DataLoader" in (out / "report.html").read_text()
    assert left_after(tag) == []


PURE_PYTHON_PYDATASET = '''
import keras, numpy as np

class Hashed(keras.utils.PyDataset):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
    def __len__(self):
        return 40
    def __getitem__(self, index):
        total = 0
        for i in range(40_000):
            total = (total * 31 + i + index) % 1_000_003
        return np.full((16, 8), total % 7, "float32"), np.zeros((16, 1), "float32")

def make_dataset():
    return Hashed()
'''


def test_a_pydataset_under_torch_is_also_timed_in_a_dataloader_whose_workers_persist(tmp_path):
    env, tag = tagged_env()
    env["KERAS_BACKEND"] = "torch"
    path, out = tmp_path / "hashed.py", tmp_path / "out"
    path.write_text(PURE_PYTHON_PYDATASET)
    result = subprocess.run([sys.executable, "-m", "tuner.cli", str(path), "--trials", "8", "--time-budget", "25",
                             "--start-method", "forkserver", "--out", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert (data["engine"], data["backend"]) == ("keras3", "torch")
    persistent = [t for t in data["trials"] if t["config"]["persistent_workers"]]
    assert persistent and all(t["status"] == "ok" and t["config"]["use_multiprocessing"] for t in persistent)
    if data["config"]["persistent_workers"]:
        assert data["knobs"]["persistent_workers"] and data["knobs"]["multiprocessing_context"] == "forkserver"
        assert "DataLoader(dataset, batch_size=None, shuffle=True, num_workers=" in result.stdout
    else:
        assert set(data["knobs"]) == {"workers", "use_multiprocessing", "max_queue_size"}
    assert left_after(tag) == []
