"""The start-cost probe, with plain spawned processes (no Keras)."""

import dataclasses
import textwrap

import pytest

from probes.profiles import StartCost
from probes.start_cost import probe_start_cost

SLOW_MODULE = """
    import time
    time.sleep(0.4)  # what a heavy import costs every worker a spawned pool starts

    class Shards:
        def __init__(self):
            self.index = bytes(2**20)
"""


def test_spawn_pays_the_module_s_import_and_the_dataset_s_pickling_in_every_worker(tmp_path, monkeypatch):
    (tmp_path / "slow_shards.py").write_text(textwrap.dedent(SLOW_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import slow_shards

    cost = probe_start_cost(slow_shards.Shards(), "spawn", preloaded=("json",))
    assert cost.method == "spawn"
    assert cost.pickle_bytes > 2**20
    assert 0.4 <= cost.import_seconds < 5.0  # unpickling imported the module again, sleep included
    assert cost.per_worker_seconds >= cost.import_seconds + cost.pickle_seconds


def test_a_worker_s_cost_beyond_fork_adds_its_parts():
    cost = StartCost("forkserver", worker_seconds=0.30, fork_worker_seconds=0.05, keras_seconds=2.0,
                     pickle_seconds=0.1, pickle_bytes=2**20, import_seconds=0.5)
    assert cost.interpreter_seconds == pytest.approx(0.25)
    assert cost.per_worker_seconds == pytest.approx(2.85)
    assert dataclasses.replace(cost, worker_seconds=0.01).interpreter_seconds == 0.0


def test_a_dataset_a_fresh_worker_cannot_unpickle_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "vanishing_shards.py").write_text("class Shards:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import vanishing_shards

    shards = vanishing_shards.Shards()
    (tmp_path / "vanishing_shards.py").unlink()  # the worker's import of the class's module now fails
    cost = probe_start_cost(shards, "spawn")
    assert cost.error.startswith("ModuleNotFoundError") and "vanishing_shards" in cost.error
