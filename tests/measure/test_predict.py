import dataclasses

import pytest

from probes.profiles import StartCost
from tests import builders
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.measure.predict import (best_predictions, ceiling, ceiling_with_measured, gil_seconds,
                                    parallel_share, predict)
from tuner.search.space import SearchSpace

MACHINE = builders.machine(2)
MODEL = builders.model(step_ms=2.0)
WAITING = builders.dataset(cpu_fraction=0.03, thread_speedup=2.0, batch_ms=20.0)
GIL_BOUND = builders.dataset(cpu_fraction=1.0, thread_speedup=0.8, batch_ms=8.0)
EPOCH = 200


def rate(config, dataset):
    return predict(config, MACHINE, dataset, MODEL, EPOCH).epoch_batches_per_second


def test_parallel_share_follows_amdahl():
    assert parallel_share(WAITING) == pytest.approx(1.0)
    assert parallel_share(GIL_BOUND) == 0.0
    assert parallel_share(builders.dataset(thread_speedup=1.5)) == pytest.approx(2 / 3)


def test_waiting_code_scales_with_threads_until_the_consumer_limits():
    inline, four, eight = (rate(c, WAITING) for c in (KERAS_DEFAULTS, LoaderConfig(4, False, 10), LoaderConfig(8, False, 10)))
    # Inline, each 20 ms batch is followed by its model step (1/600 s with free data), no overlap.
    assert inline == pytest.approx(EPOCH / (0.04 + EPOCH * (0.020 + 1 / 600)), rel=0.01)
    # 4 threads: a 5 ms period plus the GIL convoy of the 0.6 ms of Python per batch,
    # and the pool's start-up and tear-down plus a first batch per epoch.
    period = 0.005 + 0.0006 * (0.0006 / 0.005)
    assert four == pytest.approx(EPOCH / (0.14 + 0.020 + EPOCH * period), rel=0.001)
    assert eight > four
    assert rate(LoaderConfig(32, False, 64), WAITING) < 650


def test_the_queue_caps_batches_in_flight():
    assert rate(LoaderConfig(8, False, 1), WAITING) == pytest.approx(rate(LoaderConfig(2, False, 10), WAITING), rel=0.01)


def test_threads_do_not_help_gil_bound_code_but_processes_do():
    inline = rate(KERAS_DEFAULTS, GIL_BOUND)
    assert rate(LoaderConfig(4, False, 10), GIL_BOUND) <= inline * 1.01
    assert rate(LoaderConfig(2, True, 10), GIL_BOUND) > 1.3 * inline
    predicted = predict(LoaderConfig(4, False, 10), MACHINE, GIL_BOUND, MODEL, EPOCH)
    assert predicted.bound == "GIL"


def grid(max_workers, allow_processes=True, threads_infeasible=""):
    return SearchSpace(max_workers, allow_processes, threads_infeasible=threads_infeasible).grid()


def test_best_predictions_pick_processes_for_gil_bound_code_and_threads_for_waiting_code():
    assert best_predictions(MACHINE, GIL_BOUND, MODEL, EPOCH, grid(8))[0].config.use_multiprocessing
    assert not best_predictions(MACHINE, WAITING, MODEL, EPOCH, grid(16))[0].config.use_multiprocessing
    assert not best_predictions(MACHINE, GIL_BOUND, MODEL, EPOCH, grid(8, False))[0].config.use_multiprocessing


def test_ceiling_bounds_every_prediction_and_names_the_bottleneck():
    limit = ceiling(MACHINE, WAITING, MODEL, EPOCH)
    best = best_predictions(MACHINE, WAITING, MODEL, EPOCH, grid(16))[0]
    assert limit.batches_per_second >= best.epoch_batches_per_second
    assert limit.bound == "input-bound" and limit.input_bound_factor == pytest.approx(13.0, rel=0.01)
    assert "about 13 batches in flight" in limit.verdict
    slightly_slow = builders.dataset(cpu_fraction=0.03, thread_speedup=2.0, batch_ms=20.0 * 1.5 / 13.0)
    assert "about 2 batches in flight" in ceiling(MACHINE, slightly_slow, MODEL, EPOCH).verdict  # 1.5x: one is short
    cheap = builders.dataset(cpu_fraction=1.0, thread_speedup=1.0, batch_ms=0.5)
    assert ceiling(MACHINE, cheap, MODEL, EPOCH).bound == "model-bound"


def test_a_measured_setting_above_the_free_data_probe_raises_the_ceiling():
    limit = ceiling(MACHINE, WAITING, MODEL, EPOCH)
    below = builders.trial(0, LoaderConfig(2, False, 10), 0.5 * limit.batches_per_second)
    assert ceiling_with_measured(limit, (below,)) == limit
    above = builders.trial(1, LoaderConfig(16, True, 10), 1.08 * limit.batches_per_second)
    raised = ceiling_with_measured(limit, (below, above))
    assert raised.batches_per_second == pytest.approx(1.08 * limit.batches_per_second)
    assert raised.raised_by.startswith("16 processes") and raised.verdict == limit.verdict


def test_noise_in_the_thread_test_does_not_move_waiting_code_predictions():
    noisy = builders.dataset(cpu_fraction=0.03, thread_speedup=1.6, batch_ms=20.0)
    eight = LoaderConfig(8, False, 10)
    assert rate(eight, noisy) == pytest.approx(rate(eight, WAITING))


def test_the_gil_share_never_exceeds_the_cpu_time():
    half_waiting = builders.dataset(cpu_fraction=0.5, thread_speedup=1.0, batch_ms=20.0)
    assert gil_seconds(half_waiting) == pytest.approx(0.010)




def test_under_spawn_each_process_worker_adds_the_dataset_s_pickling_and_its_module_s_import():
    cost = StartCost("spawn", worker_seconds=0.3, fork_worker_seconds=0.01, keras_seconds=2.0,
                     pickle_seconds=0.05, pickle_bytes=2**20, import_seconds=0.4)
    spawned = dataclasses.replace(GIL_BOUND, start_cost=cost)

    def fixed(config, data):
        return predict(config, MACHINE, data, MODEL, EPOCH).fixed_seconds

    four = LoaderConfig(4, True, 10)
    # four workers pickled in turn, imported two at a time on two cores
    assert fixed(four, spawned) - fixed(four, GIL_BOUND) == pytest.approx(4 * 0.05 + 2 * 0.4)
    threads = LoaderConfig(4, False, 10)
    assert fixed(threads, spawned) == fixed(threads, GIL_BOUND)


def test_persistent_workers_pay_no_start_at_every_epoch():
    cost = StartCost("forkserver", worker_seconds=0.6, fork_worker_seconds=0.01, keras_seconds=0.0,
                     pickle_seconds=0.01, pickle_bytes=2**10, import_seconds=0.7)
    started = dataclasses.replace(GIL_BOUND, start_cost=cost)
    fresh, kept = LoaderConfig(4, True, 8), LoaderConfig(4, True, 8, persistent_workers=True)
    assert predict(kept, MACHINE, started, MODEL, EPOCH).fixed_seconds < predict(
        fresh, MACHINE, GIL_BOUND, MODEL, EPOCH).fixed_seconds < predict(fresh, MACHINE, started, MODEL, EPOCH).fixed_seconds
    assert predict(kept, MACHINE, started, MODEL, EPOCH).batch_period_seconds == predict(
        fresh, MACHINE, started, MODEL, EPOCH).batch_period_seconds
