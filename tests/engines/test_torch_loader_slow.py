"""Real Keras 3 training on the torch backend over the example's torch DataLoader, through the CLI, with
worker processes started by forkserver: the knobs come back in DataLoader terms, persistent workers were
timed, the answer follows the race's rules, and no worker is left running. Marked slow."""

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
    assert any(t["config"]["persistent_workers"] for t in timed) and any(
        t["config"]["use_multiprocessing"] and not t["config"]["persistent_workers"] for t in timed)
    assert not any(t["config"]["workers"] > 1 and not t["config"]["use_multiprocessing"] for t in data["trials"])
    knobs = data["knobs"]
    if knobs["num_workers"]:
        assert knobs["multiprocessing_context"] == "forkserver" and knobs["prefetch_factor"] >= 1
        assert data["confirmation"]["speedup_low"] > 1.0
        assert len(data["confirmation"]["default_samples"]) >= decision.FIRST_VERDICT_ROUND
    else:
        assert knobs == {"num_workers": 0}
    arguments = ", ".join(f"{name}={value!r}" for name, value in knobs.items())
    assert f"DataLoader(dataset, batch_size=..., {arguments})" in result.stdout
    assert "torch DataLoader" in (out / "report.html").read_text()
    assert left_after(tag) == []
