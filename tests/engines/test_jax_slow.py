"""Real Keras 3 training under the JAX backend, through the CLI on two examples: the answer is timed under
JAX, processes are never tried (fork is unsafe there), and nothing is left running. Marked slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import left_after, tagged_env
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.engines.backend import FORK_UNSAFE
from tuner.search import decision

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", ["io_bound", "gil_bound"])
def test_an_example_is_tuned_under_jax_with_threads_only(tmp_path, example):
    env, tag = tagged_env()
    env["KERAS_BACKEND"] = "jax"
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tuner.cli", str(EXAMPLES / f"{example}.py"), "--trials", "3",
                             "--time-budget", "15", "--out", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert data["backend"] == "jax"  # what Keras loaded in the trial process, not what was asked
    assert "keras3 on JAX" in result.stdout and "keras3 on JAX" in (out / "report.html").read_text()
    assert data["machine"]["package_versions"]["jax"]
    timed = [t for t in data["trials"] if t["status"] in ("ok", "pruned")]
    assert timed and not any(t["config"]["use_multiprocessing"] for t in data["trials"])
    assert not data["config"]["use_multiprocessing"]
    assert f"Processes were not tried: {FORK_UNSAFE}." in data["warnings"]
    claim, how = data["confirmation"], data["decision"]
    # The answer follows the race's rule (docs/search.md, "The choice and the claim"): a pool when it is
    # expected faster by the margin with the odds the rule asks for, else the defaults, with the reason
    # (gil_bound's threads can be slower under JAX).
    if LoaderConfig(**data["config"]) != KERAS_DEFAULTS:
        assert how["basis"] in ("decided_faster", "likeliest_faster")
        assert claim["speedup"] >= 1.0 + decision.MIN_EXPECTED_GAIN
        assert how["probability_faster"] >= decision.MIN_PROBABILITY_FASTER
    else:
        assert how["basis"] in ("defaults_as_fast", "harm_guard", "unconfirmed")
    assert left_after(tag) == []
