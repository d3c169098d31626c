"""The epoch clock both Keras engines mix into their callbacks, driven by hand: no Keras."""

import pytest

from tuner.engines import common


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
