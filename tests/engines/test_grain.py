"""The Grain engine's data side and knobs, without training: which engine a Grain dataset gets, which pipelines
are taken and which refused with their fix, that a window makes exactly the user's batches, how the knobs map
to a pool and back, and the code the answer pastes."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

grain = pytest.importorskip("grain")

from probes.dataset import pickle_failure  # noqa: E402
from tuner import engines  # noqa: E402
from tuner.core import KERAS_DEFAULTS, Backend, EngineName, LoaderConfig, PoolKind, StartMethod  # noqa: E402
from tuner.engines import backend, registry  # noqa: E402
from tuner.engines import grain_data  # noqa: E402
from tuner.engines.grain_data import GrainSource, GrainStream  # noqa: E402
from tuner.engines.knobs import GRAIN_KNOBS  # noqa: E402
from tuner.errors import TuneLoaderError  # noqa: E402


def batches(records: int = 20, size: int = 4):
    """Batch i holds the records 4i..4i+3, each a row of its own index."""
    return grain.MapDataset.range(records).map(lambda i: np.full((2,), i, "float32")).batch(size)


def test_a_grain_dataset_gets_the_grain_engine_and_no_other():
    assert engines.choose(batches(), None) == EngineName.GRAIN
    assert engines.choose(batches().to_iter_dataset(), None) == EngineName.GRAIN
    with pytest.raises(TuneLoaderError, match="only the grain engine times.*Received: engine='keras3'"):
        engines.choose(batches(), "keras3")
    assert registry.knob_set(EngineName.GRAIN, Backend.JAX) is GRAIN_KNOBS


@pytest.mark.parametrize("handed_over", [
    lambda ds: ds,
    lambda ds: ds.to_iter_dataset(grain.ReadOptions(num_threads=3, prefetch_buffer_size=7)),
    lambda ds: ds.to_iter_dataset().mp_prefetch(grain.MultiprocessingOptions(num_workers=1)),
    lambda ds: ds.to_iter_dataset().mp_prefetch(grain.MultiprocessingOptions(num_workers=3, per_worker_buffer_size=2)),
], ids=["map dataset", "to_iter_dataset", "mp_prefetch of 1", "mp_prefetch of 3"])
def test_a_pipeline_is_taken_by_its_batches_index_under_what_it_was_handed_over_with(handed_over):
    source = GrainSource(handed_over(batches()))
    assert source.num_batches == 5
    np.testing.assert_array_equal(source.batch(2)[:, 0], [8, 9, 10, 11])
    assert source.user_knobs in ({"worker_count": 0, "worker_buffer_size": 1}, {"worker_count": 1, "worker_buffer_size": 1},
                                 {"worker_count": 3, "worker_buffer_size": 2})


def test_the_read_options_and_mp_prefetch_handed_over_are_read_back():
    options = grain.ReadOptions(num_threads=3, prefetch_buffer_size=7)
    source = GrainSource(batches().to_iter_dataset(options).mp_prefetch(
        grain.MultiprocessingOptions(num_workers=3, per_worker_buffer_size=2)))
    assert source.read_options == options
    assert source.user_knobs == {"worker_count": 3, "worker_buffer_size": 2}
    assert GrainSource(batches()).read_options == grain.ReadOptions()


def test_a_window_makes_the_users_batches_in_order_from_its_offset_wrapping():
    source = GrainSource(batches())
    window = list(source.pipeline(KERAS_DEFAULTS, batches=4, offset=3))
    assert [int(batch[0, 0]) for batch in window] == [12, 16, 0, 4]


def loader(records: int = 22, epochs: int | None = 1, workers: int = 0) -> grain.DataLoader:
    """A grain.DataLoader over records whose rows hold their index, in batches of 4."""
    sampler = grain.samplers.IndexSampler(records, shuffle=False, num_epochs=epochs,
                                          shard_options=grain.sharding.NoSharding())
    return grain.DataLoader(data_source=[np.full((2,), i, "float32") for i in range(records)], sampler=sampler,
                            operations=[grain.transforms.Batch(4)], worker_count=workers, worker_buffer_size=3)


def firsts(pipeline) -> list[int]:
    return [int(batch[0, 0]) for batch in pipeline]


STREAMS = {
    "batch after to_iter_dataset": lambda records=22: grain.MapDataset.range(records).map(
        lambda i: np.full((2,), i, "float32")).to_iter_dataset().batch(4),
    "a DataLoader": loader,
    "a filter": lambda: grain.MapDataset.range(22).map(lambda i: np.full((2,), i, "float32")).to_iter_dataset()
    .filter(lambda row: row[0] % 2 == 0).batch(4),
}


@pytest.mark.parametrize("name", STREAMS)
def test_a_pipeline_whose_batches_have_no_index_is_timed_from_its_first_batch_as_each_epoch_reads_it(name):
    user = STREAMS[name]()
    stream = grain_data.taken(user)
    assert isinstance(stream, GrainStream)
    expected = firsts(user)
    assert stream.num_batches == len(expected)  # by its structure, or counted where a filter decides
    assert firsts(stream.pipeline(KERAS_DEFAULTS, batches=3, offset=5)) == expected[:3]
    assert firsts(stream.fresh()) == expected
    assert [int(stream.batch(i)[0, 0]) for i in range(len(expected) + 1)] == expected + expected[:1]
    restored = pickle.loads(pickle.dumps(stream))
    assert pickle_failure(stream) == "" and firsts(restored.fresh()) == expected


def test_a_dataloaders_own_knobs_are_read_back_and_its_window_is_a_dataloader_of_its_first_records():
    stream = grain_data.taken(loader(records=4000, workers=2))
    assert stream.user_knobs == {"worker_count": 2, "worker_buffer_size": 3}
    window = stream.pipeline(KERAS_DEFAULTS, batches=4, offset=0)
    assert isinstance(window, grain.DataLoader)  # what Keras trains the user's on: slower than its dataset
    assert firsts(window) == [0, 4, 8, 12]


# Run in a fresh interpreter: spawn starts a resource tracker that lives as long as the process that spawned,
# and the slow tests check that pytest's own process leaves no child behind.
POOL_WINDOW = """
import multiprocessing.resource_tracker, sys
import psutil
from tests.engines import test_grain as t
from tuner.core import LoaderConfig
from tuner.engines import grain_data

if __name__ == "__main__":
    user = t.loader(records=4000, workers=2) if sys.argv[1] == "loader" else t.STREAMS["batch after to_iter_dataset"](4000)
    iterator = iter(grain_data.taken(user).pipeline(LoaderConfig(2, True, 2), batches=4, offset=0))
    window = t.firsts(iterator)  # held, as Keras holds an epoch's iterator after its end
    tracker = multiprocessing.resource_tracker._resource_tracker._pid
    workers = [child for child in psutil.Process().children(recursive=True) if child.pid != tracker]
    print(len(window), len(set(window)), len(psutil.wait_procs(workers, timeout=10)[1]))
"""


@pytest.mark.parametrize("user", ["loader", "iter"], ids=["a DataLoader", "batch after to_iter_dataset"])
def test_a_process_pool_window_stops_its_workers_at_its_end(user):
    done = subprocess.run([sys.executable, "-c", POOL_WINDOW, user], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["4", "4", "0"]  # 4 distinct batches, and no worker alive after the window


def test_pipelines_without_an_end_are_refused_with_the_fix():
    with pytest.raises(TuneLoaderError, match="repeats without end.*no repeat"):
        grain_data.taken(batches().repeat())
    with pytest.raises(TuneLoaderError, match="num_epochs=None.*Fix: .*num_epochs=1"):
        grain_data.taken(loader(epochs=None))
    assert engines.choose(loader(), None) == EngineName.GRAIN


def test_a_pipeline_with_a_lambda_passes_the_probes_pickling_test_as_grain_sends_it():
    source = GrainSource(batches())
    assert pickle_failure(source) == ""
    restored = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(restored.batch(1), source.batch(1))


@pytest.mark.parametrize("values, config", [
    ({"worker_count": 0, "worker_buffer_size": 1}, KERAS_DEFAULTS),
    ({"worker_count": 2, "worker_buffer_size": 1}, LoaderConfig(2, True, 2)),
    ({"worker_count": 4, "worker_buffer_size": 4}, LoaderConfig(4, True, 16)),
])
def test_the_knobs_are_a_process_pool_and_back(values, config):
    assert GRAIN_KNOBS.config_of(values) == config
    assert GRAIN_KNOBS.values(config) == values
    assert GRAIN_KNOBS.recorded(config, "fork") == (values if values["worker_count"] else {"worker_count": 0})


def test_the_screen_starts_from_workers_on_a_ladder_at_buffers_of_one_and_four_and_only_processes():
    pools = GRAIN_KNOBS.pools(4, (PoolKind.THREADS, PoolKind.PROCESSES), 64)
    assert [GRAIN_KNOBS.values(c)["worker_count"] for c in pools] == [1, 1, 2, 2, 4, 4]
    assert {GRAIN_KNOBS.values(c)["worker_buffer_size"] for c in pools} == {1, 4}
    assert GRAIN_KNOBS.pools(4, (PoolKind.THREADS,), 64) == []
    assert GRAIN_KNOBS.start_method == StartMethod.SPAWN and not GRAIN_KNOBS.persistent_pools


def test_jax_excludes_processes_only_where_they_would_fork():
    assert backend.processes_excluded(Backend.JAX, StartMethod.FORK) == backend.FORK_UNSAFE
    assert backend.processes_excluded(Backend.JAX, StartMethod.SPAWN) is None
    assert backend.processes_excluded(Backend.TENSORFLOW, StartMethod.FORK) is None



class FakeClock:
    """An EpochClock's readings, made up: (begin, batch ends, end) per epoch."""

    def __init__(self, epochs):
        self.epochs = epochs


def evenly(begin: float, first: float, batches: int, spacing: float):
    return begin, [begin + first + i * spacing for i in range(batches)], begin + first + (batches - 1) * spacing


def test_fits_at_two_lengths_give_the_fixed_cost_and_rate_whatever_the_batches_spacing():
    from tuner.engines.grain_loader import by_length

    # Two fits of two epochs: 2 s of start and 25 ms a batch, the batches all in a burst at each epoch's end.
    def fit(batches):
        epochs, begin = [], 0.0
        for _ in range(2):
            end = begin + 2.0 + 0.025 * batches
            epochs.append((begin, [end - 0.001 * (batches - i) for i in range(batches)], end))
            begin = end
        return FakeClock(epochs)

    timing = by_length([fit(32), fit(8)], pool_starts=True)
    assert timing.fixed_seconds == pytest.approx(2.0) and timing.steady_batches_per_second == pytest.approx(40.0)
    assert timing.steady_from_middle and timing.predicted_epoch_seconds(160) == pytest.approx(6.0)


def test_a_lone_epoch_counts_the_wait_for_a_process_pools_first_batch_as_its_start_and_no_other():
    from tuner.engines.grain_loader import by_length

    lone = FakeClock([evenly(0.0, 1.5, 21, 0.05)])  # 1.5 s to the first batch, then one every 50 ms
    pool = by_length([lone], pool_starts=True)
    assert pool.fixed_seconds == pytest.approx(1.45) and pool.steady_batches_per_second == pytest.approx(20.0)
    threads = by_length([lone], pool_starts=False)  # read threads: a late first batch is a burst, no start
    assert threads.fixed_seconds == 0.0 and threads.steady_batches_per_second == pytest.approx(21 / 2.5)
