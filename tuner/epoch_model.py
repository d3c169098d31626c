"""From timed windows to the user's real epoch time.

Keras builds a new worker pool at every epoch start, so an epoch costs a
fixed start-up and tear-down plus ``batches / steady rate``. Each timed
window gives both parts; the objective is the predicted time of an epoch of
the user's real length, not the rate of a short window.
"""

from __future__ import annotations

from collections.abc import Sequence

from probes.profiles import Spread
from probes.stats import summarize
from tuner.results import WindowTiming

MIN_BATCHES_FOR_SLOPE = 4


def window_timing(epoch_begin: float, batch_ends: Sequence[float], epoch_end: float) -> WindowTiming:
    """Splits one epoch's clock readings into steady rate and fixed cost.

    The steady rate comes from the later half of the batches: the first ones
    arrive in a burst when a fresh pool's workers all finish together, and
    would overstate the rate.
    """
    batches = len(batch_ends)
    epoch_seconds = epoch_end - epoch_begin
    if batches == 0:
        raise ValueError("window_timing() needs at least one batch. Received: batch_ends=[]")
    first_batch_seconds = batch_ends[0] - epoch_begin
    if batches < MIN_BATCHES_FOR_SLOPE:
        return WindowTiming(batches, epoch_seconds, batches / epoch_seconds, 0.0, first_batch_seconds)
    first = batches // 2
    span = batch_ends[-1] - batch_ends[first - 1]
    rate = (batches - first) / span if span > 0 else batches / epoch_seconds
    fixed = max(0.0, epoch_seconds - batches / rate)
    return WindowTiming(batches, epoch_seconds, rate, fixed, first_batch_seconds)


def with_fixed_cost(timing: WindowTiming, fixed_seconds: float, epoch_end_seconds: float = 0.0) -> WindowTiming:
    """Re-reads a window with a known per-epoch fixed cost: rate = batches / (epoch - fixed).

    The spacing of batch arrivals can lie. With pure-Python data code on
    threads and a long queue, the training loop starves for the GIL while the
    producers fill the queue, then drains it in a burst at the end: the later
    half of an 84-batch epoch arrived at 450 batches/s in an epoch that ran at
    70. The epoch's total time does not lie, so with the fixed cost known
    (Keras's pool start-up and tear-down, measured with free data) the rate
    follows from it.

    The known cost is an extrapolation for pools bigger than the probe's two
    workers, so the window's own first batch bounds it from both sides:

    - No start-up outlasts the first batch. The analytic model put 16
      processes on the model-bound benchmark at 2.28 s where their first
      batch arrived after 0.82 to 0.92 s; subtracted from a 4.6 s window, the
      2.28 s predicted 9.6 s epochs that took 14.3 to 14.9 s.
    - What the first batch took beyond the window's mean spacing of the
      others was start-up, whatever the extrapolation said. One session's
      probe put 16 processes on numpy_augment at 0.15 s (others' at 0.56
      and 1.0 s) where their first batch took 0.5 to 0.7 s, and windows of
      32 and 120 batches put the start-up at 0.4 to 0.6 s: read with
      0.15 s, 32-batch windows predicted 6.0 to 7.8 s for epochs of 5.1 to
      6.2 s.

    The fixed cost is also capped at half the epoch. ``epoch_end_seconds`` is
    a per-epoch cost outside the timed epoch (see ``PipelinePoint``): it does
    not touch the rate but is part of every epoch.
    """
    start_up = fixed_seconds
    if timing.first_batch_seconds is not None:
        start_up = min(max(start_up, _start_up_seen(timing)), timing.first_batch_seconds)
    fixed = min(start_up, timing.epoch_seconds / 2)
    rate = timing.batches / (timing.epoch_seconds - fixed)
    return WindowTiming(timing.batches, timing.epoch_seconds, rate, fixed + epoch_end_seconds, timing.first_batch_seconds)


def _start_up_seen(timing: WindowTiming) -> float:
    """The first batch's seconds beyond the mean spacing of the window's other batches."""
    if timing.batches < 2:
        return 0.0
    spacing = (timing.epoch_seconds - timing.first_batch_seconds) / (timing.batches - 1)
    return max(0.0, timing.first_batch_seconds - spacing)


def epoch_throughput(window: WindowTiming, epoch_batches: int) -> float:
    """Batches per second over a whole epoch of ``epoch_batches`` batches."""
    return epoch_batches / window.predicted_epoch_seconds(epoch_batches)


def epoch_throughputs(windows: Sequence[WindowTiming], epoch_batches: int) -> Spread:
    return summarize([epoch_throughput(w, epoch_batches) for w in windows])
