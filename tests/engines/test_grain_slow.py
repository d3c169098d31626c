"""Real Keras 3 training on JAX through the CLI over a Grain pipeline: the knobs are mp_prefetch's, its workers
spawned by Grain whatever --start-method says (so JAX allows them), the answer by the race's rules, and the
code to paste is mp_prefetch's. No worker is left running. Marked slow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.processes import left_after, tagged_env

pytest.importorskip("grain")
pytest.importorskip("jax")
pytestmark = pytest.mark.slow

PURE_PYTHON_PIPELINE = '''
import grain, numpy as np

def work(index):
    total = 0
    for i in range(30_000):
        total = (total * 31 + i + int(index)) % 1_000_003
    return np.full((8,), total % 7, "float32"), np.zeros((1,), "float32")

def make_dataset():
    return grain.MapDataset.range(640).map(work).batch(16).to_iter_dataset()
'''

# The same batches from a grain.DataLoader, whose own knobs are read back: a stream, timed from its first batch.
PURE_PYTHON_LOADER = PURE_PYTHON_PIPELINE.replace('''def make_dataset():
    return grain.MapDataset.range(640).map(work).batch(16).to_iter_dataset()''', '''
class Work(grain.transforms.Map):
    def map(self, index):
        return work(index)

def make_dataset():
    sampler = grain.samplers.IndexSampler(640, shuffle=False, num_epochs=1, shard_options=grain.sharding.NoSharding())
    return grain.DataLoader(data_source=range(640), sampler=sampler, operations=[Work(), grain.transforms.Batch(16)],
                            worker_count=1)''')


@pytest.mark.parametrize("source, user_knobs", [
    (PURE_PYTHON_PIPELINE, {"worker_count": 0, "worker_buffer_size": 1}),
    (PURE_PYTHON_LOADER, {"worker_count": 1, "worker_buffer_size": 1}),
], ids=["to_iter_dataset", "DataLoader"])
def test_a_grain_pipeline_is_tuned_under_jax_by_mp_prefetchs_knobs(tmp_path, source, user_knobs):
    (tmp_path / "grain_data.py").write_text(source)
    env, tag = tagged_env()
    env["KERAS_BACKEND"] = "jax"
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tuner.cli", "grain_data.py", "--time-budget", "25",
                             "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert (data["engine"], data["backend"], data["machine"]["start_method"]) == ("grain", "jax", "spawn")
    assert data["dataset"]["kind"] == "grain" and data["dataset"]["batches_per_epoch"] == 40
    assert data["dataset"]["user_knobs"] == user_knobs
    timed = [t for t in data["trials"] if t["status"] == "ok"]
    assert any(t["config"]["use_multiprocessing"] for t in timed)  # spawned workers are safe under JAX
    assert all(t["config"]["use_multiprocessing"] or not t["config"]["workers"] > 1 for t in data["trials"])
    knobs = data["knobs"]
    if knobs["worker_count"]:
        assert set(knobs) == {"worker_count", "worker_buffer_size"}
        code = (f"worker_count={knobs['worker_count']}, worker_buffer_size={knobs['worker_buffer_size']}"
                if source is PURE_PYTHON_LOADER else f"grain.MultiprocessingOptions(num_workers={knobs['worker_count']}, "
                f"per_worker_buffer_size={knobs['worker_buffer_size']})")
        assert code in result.stdout
        assert data["confirmation"]["speedup"] > 1.0
    else:
        assert knobs == {"worker_count": 0}
        assert ("worker_count=0" if source is PURE_PYTHON_LOADER else "without mp_prefetch") in result.stdout
    assert "Grain" in (out / "report.html").read_text()
    assert left_after(tag) == []
