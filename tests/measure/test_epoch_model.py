import dataclasses

import pytest

from tuner.core import LoaderConfig, WindowTiming
from tuner.measure.epoch_model import drain_batches, epoch_throughput, window_timing, with_fixed_cost


def clock(startup: float, rate: float, batches: int, teardown: float = 0.0):
    ends = [startup + (i + 1) / rate for i in range(batches)]
    return 0.0, ends, ends[-1] + teardown


def test_window_timing_separates_startup_from_steady_rate():
    begin, ends, end = clock(startup=0.3, rate=100.0, batches=60, teardown=0.05)
    timing = window_timing(begin, ends, end)
    assert timing.steady_batches_per_second == pytest.approx(100.0)
    assert timing.fixed_seconds == pytest.approx(0.35)
    assert timing.first_batch_seconds == pytest.approx(0.31)


def test_first_batch_burst_does_not_inflate_the_rate():
    # A fresh pool of 8 workers delivers its first 8 batches at once.
    ends = [0.2] * 8 + [0.2 + (i + 1) / 50.0 for i in range(40)]
    timing = window_timing(0.0, ends, ends[-1])
    assert timing.steady_batches_per_second == pytest.approx(50.0)


def test_prediction_for_a_longer_epoch_uses_both_parts():
    begin, ends, end = clock(startup=0.5, rate=200.0, batches=40)
    timing = window_timing(begin, ends, end)
    # 1000 batches: 0.5 s start-up + 5 s of steady batches.
    assert timing.predicted_epoch_seconds(1000) == pytest.approx(5.5)
    assert epoch_throughput(timing, 1000) == pytest.approx(1000 / 5.5)


def test_window_timing_needs_a_batch():
    with pytest.raises(ValueError, match="at least one batch"):
        window_timing(0.0, [], 1.0)


def test_a_final_burst_does_not_fool_the_rate_when_the_fixed_cost_is_known():
    # Starved consumer: 60 batches trickle over 1.0 s, then 24 queued ones drain in 10 ms.
    ends = [0.2 + 1.0 * (i + 1) / 60 for i in range(60)] + [1.2 + 0.01 * (i + 1) / 24 for i in range(24)]
    naive = window_timing(0.0, ends, ends[-1])
    fixed = with_fixed_cost(naive, 0.2)
    # The burst shortens the mean spacing that the first batch is compared with: 0.205 s of start-up, not 0.2.
    assert fixed.fixed_seconds == pytest.approx(0.2, abs=0.01)
    assert fixed.steady_batches_per_second == pytest.approx(84 / 1.01, rel=0.01)
    assert naive.steady_batches_per_second > 1.5 * fixed.steady_batches_per_second


def test_a_start_up_longer_than_the_known_cost_is_read_from_the_first_batch():
    # numpy_augment's 16 processes: the probe extrapolated 0.15 s, the first batch came after 0.53 s.
    begin, ends, end = clock(startup=0.5, rate=30.0, batches=32)
    window = with_fixed_cost(window_timing(begin, ends, end), 0.15)
    assert window.fixed_seconds == pytest.approx(0.5)
    assert window.steady_batches_per_second == pytest.approx(30.0)
    assert window.predicted_epoch_seconds(120) == pytest.approx(0.5 + 120 / 30.0)
    # Taking the extrapolation at its word would have predicted that epoch 21% slower.
    trusting = with_fixed_cost(dataclasses.replace(window_timing(begin, ends, end), first_batch_seconds=None), 0.15)
    assert trusting.predicted_epoch_seconds(120) > 1.2 * window.predicted_epoch_seconds(120)


def test_a_known_fixed_cost_is_capped_at_half_the_epoch():
    window = WindowTiming(batches=84, epoch_seconds=1.21, steady_batches_per_second=400.0, fixed_seconds=0.0)
    assert with_fixed_cost(window, 5.0).fixed_seconds == pytest.approx(0.605)


def test_a_known_fixed_cost_is_capped_at_the_windows_first_batch():
    # The model-bound benchmark's 16 processes: 2.28 s extrapolated from the probe, first batch after 0.85 s.
    begin, ends, end = clock(startup=0.73, rate=8.0, batches=32)
    capped = with_fixed_cost(window_timing(begin, ends, end), 2.28)
    assert capped.fixed_seconds == pytest.approx(0.855)
    assert capped.steady_batches_per_second == pytest.approx(32 / (end - 0.855))
    # Trusting the extrapolation would have read a third more batches per second than the window ran.
    assert with_fixed_cost(dataclasses.replace(window_timing(begin, ends, end), first_batch_seconds=None),
                           2.28).steady_batches_per_second > 1.3 * capped.steady_batches_per_second


def test_a_cost_after_the_epoch_counts_per_epoch_but_leaves_the_rate_alone():
    window = WindowTiming(batches=50, epoch_seconds=1.2, steady_batches_per_second=50.0, fixed_seconds=0.2)
    plain, stalled = with_fixed_cost(window, 0.2), with_fixed_cost(window, 0.2, epoch_end_seconds=5.0)
    assert stalled.steady_batches_per_second == plain.steady_batches_per_second == pytest.approx(50.0)
    assert stalled.fixed_seconds == pytest.approx(5.2)
    # tf-keras's 5 s Sequence stall makes a 100-batch epoch 3x longer: 7.2 s instead of 2.2 s.
    assert epoch_throughput(stalled, 100) == pytest.approx(100 / 7.2)



def ramp_clock(ramp_batches: int, ramp_rate: float, rate: float, batches: int):
    """A fresh pool whose queue fills while the model waits: ``ramp_batches`` come at ``ramp_rate``, the
    rest at the steady ``rate``."""
    ends, now = [], 0.02
    for index in range(batches):
        now += 1.0 / (ramp_rate if index < ramp_batches else rate)
        ends.append(now)
    return 0.0, ends, ends[-1]


def test_a_ramp_over_many_batches_is_a_per_epoch_cost_read_from_the_epoch_s_middle():
    # numpy_augment's 2 threads: the first batches of every epoch come slowly, long after the first one.
    begin, ends, end = ramp_clock(ramp_batches=12, ramp_rate=40.0, rate=110.0, batches=60)
    timing = window_timing(begin, ends, end, drain=12)
    assert timing.steady_from_middle
    assert timing.steady_batches_per_second == pytest.approx(110.0)
    assert timing.predicted_epoch_seconds(60) == pytest.approx(end)
    # The probe's cost, capped at the first batch, would take the ramp for slow batches: a longer epoch
    # would be predicted slower than it runs. A middle rate is kept as it is.
    assert with_fixed_cost(timing, 0.16) == timing
    capped = with_fixed_cost(window_timing(begin, ends, end), 0.16)
    assert epoch_throughput(capped, 120) < 0.93 * epoch_throughput(timing, 120)


def test_a_final_burst_is_left_out_of_a_middle_rate():
    # Starved consumer: 60 batches trickle over 1.0 s, then the 24 a queue of 20 and 4 workers held drain.
    ends = [0.2 + 1.0 * (i + 1) / 60 for i in range(60)] + [1.2 + 0.01 * (i + 1) / 24 for i in range(24)]
    timing = window_timing(0.0, ends, ends[-1], drain=24)
    assert timing.steady_from_middle and timing.steady_batches_per_second == pytest.approx(60.0)


def test_too_few_batches_between_the_middle_and_the_drain_leave_the_rate_to_the_known_fixed_cost():
    begin, ends, end = clock(startup=0.2, rate=100.0, batches=40)
    timing = window_timing(begin, ends, end, drain=32 + 16)
    assert not timing.steady_from_middle
    assert timing.steady_batches_per_second == pytest.approx(100.0)
    assert with_fixed_cost(timing, 0.1).fixed_seconds == pytest.approx(0.2, abs=0.01)


def test_a_pool_drains_its_queue_and_workers_and_tf_data_has_no_known_drain():
    assert drain_batches(LoaderConfig(8, False, 16)) == 24
    assert drain_batches(LoaderConfig.tf_data()) is None
