"""The epoch clock both Keras engines mix into their callbacks, driven by hand: no Keras."""

import pytest

from tuner.core import LoaderConfig
from tuner.engines import common
from tuner.measure.epoch_model import start_batches


def run_epochs(monkeypatch, epochs: list[tuple[float, list[float], float]]) -> common.EpochClock:
    """Calls the clock's hooks as ``fit`` would, with ``perf_counter`` reading the given (begin, batch ends, end)."""
    readings = iter([reading for begin, ends, end in epochs for reading in (begin, *ends, end)])
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(readings))
    clock = common.EpochClock()
    for number, (_, ends, _) in enumerate(epochs):
        clock.on_epoch_begin(number)
        for step in range(len(ends)):
            clock.on_train_batch_end(step)
        clock.on_epoch_end(number)
    return clock


def test_a_lone_epoch_is_timed_from_its_start(monkeypatch):
    timing = run_epochs(monkeypatch, [(10.0, [10.2, 10.4, 10.6, 10.8], 11.0)]).timing()
    assert timing.epoch_seconds == pytest.approx(1.0)
    assert timing.first_batch_seconds == pytest.approx(0.2)


def test_epochs_after_the_first_count_what_the_fit_spent_between_them_and_are_averaged(monkeypatch):
    # 0.5 s pass between the first epoch's end and the second's start (a pool stopping, a stall): the user's
    # training pays them, so the second epoch's time includes them, before its first batch.
    clock = run_epochs(monkeypatch, [(0.0, [0.2, 0.4, 0.6, 0.8], 1.0),
                                     (1.5, [1.7, 1.9, 2.1, 2.3], 2.5),
                                     (2.5, [2.9, 3.1, 3.3, 3.5], 3.7)])
    timing = clock.timing()
    assert timing.batches == 4 and timing.timed_epochs == 2
    assert timing.epoch_seconds == pytest.approx((1.5 + 1.2) / 2)  # 1.0 -> 2.5, and 2.5 -> 3.7
    assert timing.first_batch_seconds == pytest.approx((0.7 + 0.4) / 2)
    assert timing.epoch_seconds_cv == pytest.approx(0.3 / 2 ** 0.5 / 1.35)


def test_a_stall_counts_only_once_each_process_worker_gave_its_first_batch(monkeypatch):
    """A pool of 3 processes: the first 3 batches may wait on a worker's start, so the watch starts after them
    and their spacing does not raise the slowest batch the stall limit scales with."""
    said = []
    monkeypatch.setattr(common.heartbeat, "watch", lambda watched: said.append(("watch", watched)))
    monkeypatch.setattr(common.heartbeat, "step", lambda seconds: said.append(("step", round(seconds, 3))))
    readings = iter([0.0, 0.1, 4.0, 4.1, 4.2, 4.3, 4.4])
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(readings))
    clock = common.EpochClock(start=3)
    clock.on_epoch_begin(0)
    for step in range(5):
        clock.on_train_batch_begin(step)
        clock.on_train_batch_end(step)
    clock.on_epoch_end(0)
    assert said == [("watch", False), ("watch", True), ("step", 0.1), ("step", 0.1)]


def test_threads_and_inline_are_watched_from_the_first_batch():
    assert start_batches(LoaderConfig(8, False, 16)) == 1 and start_batches(LoaderConfig()) == 1
    assert start_batches(LoaderConfig(4, True, 10)) == 4
