"""From timed windows to the user's real epoch time.

Keras builds a new worker pool at every epoch start, so an epoch costs a
fixed start-up and tear-down plus ``batches / steady rate``. Each timed
window gives both parts; the objective is the predicted time of an epoch of
the user's real length, not the rate of a short window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from probes.profiles import Spread
from probes.stats import summarize
from tuner.core import LoaderConfig, WindowTiming

MIN_BATCHES_FOR_SLOPE = 4


def drain_batches(config: LoaderConfig) -> int | None:
    """The batches that can arrive in a burst at a Keras pool's epoch end: the queue and what the workers
    hold, made ahead while the training loop waited (for the GIL, say) and drained once no more are asked
    for. None for tf.data, whose autotuned buffers have no known size."""
    return None if config.is_tf_data else config.max_queue_size + config.workers


def start_batches(config: LoaderConfig) -> int:
    """The batches of an epoch that may wait on its pool's start: the first from each process worker (a
    fresh copy of the training process can take seconds to make its first batch on a loaded machine), else
    the first. No stall is counted while they come, only a batch call running past the limit."""
    return config.workers if config.parallel and config.use_multiprocessing else 1


def window_timing(epoch_begin: float, batch_ends: Sequence[float], epoch_end: float,
                  drain: int | None = None) -> WindowTiming:
    """Splits one epoch's clock readings into steady rate and fixed cost.

    The steady rate is the slope of the batches from the epoch's middle to the
    ``drain`` batches before its end (``drain_batches``), where the steady
    state holds: the first batches arrive slowly while a fresh pool starts
    and its queue fills (a ramp that can last many batches, all of it a
    per-epoch cost), the last ones in a burst as the queue drains. Such a rate
    is marked ``steady_from_middle``. Without ``drain``, or with too few
    batches between, the slope runs to the end and the parent re-reads it
    with the probe's fixed cost (``with_fixed_cost``).
    """
    batches = len(batch_ends)
    epoch_seconds = epoch_end - epoch_begin
    if batches == 0:
        raise ValueError("window_timing() needs at least one batch. Received: batch_ends=[]")
    first_batch_seconds = batch_ends[0] - epoch_begin
    if batches < MIN_BATCHES_FOR_SLOPE:
        return WindowTiming(batches, epoch_seconds, batches / epoch_seconds, 0.0, first_batch_seconds)
    first = batches // 2
    middle = drain is not None and batches - drain - first >= MIN_BATCHES_FOR_SLOPE
    last = batches - drain if middle else batches
    span = batch_ends[last - 1] - batch_ends[first - 1]
    rate = (last - first) / span if span > 0 else batches / epoch_seconds
    # A drain faster than the steady rate makes this negative: the rate is kept, so a longer epoch's
    # extra batches come at the steady rate, and the drain's head start is not counted.
    fixed = max(0.0, epoch_seconds - batches / rate)
    return WindowTiming(batches, epoch_seconds, rate, fixed, first_batch_seconds, steady_from_middle=middle)


def with_fixed_cost(timing: WindowTiming, fixed_seconds: float, epoch_end_seconds: float = 0.0) -> WindowTiming:
    """Re-reads a window with a known per-epoch fixed cost: rate = batches / (epoch - fixed).

    The spacing of batch arrivals can lie: with pure-Python data code on
    threads and a long queue, the training loop starves for the GIL while
    the producers fill the queue, then drains it in a burst at the end. The
    epoch's total time does not lie, so with the fixed cost known (Keras's
    pool start-up and tear-down, measured with free data) the rate follows.
    That re-reading is for slopes that ran to the epoch's end: a rate read
    between the ramp and the drain (``steady_from_middle``) is kept.

    The known cost is an extrapolation for pools bigger than the probe's two
    workers, so the window's own first batch bounds it from both sides: no
    start-up outlasts the first batch, and what the first batch took beyond
    the mean spacing of the others was start-up. For a lone window the fixed
    cost is also capped at half the epoch; epochs timed after another in one
    ``fit`` are not capped, since what their first batch waited for (the
    previous epoch's tear-down, tf-keras's 5 s stall) was paid once per epoch
    and may well outlast the batches. ``epoch_end_seconds`` is a per-epoch cost
    outside the timed epoch (see ``PipelinePoint``): it does not touch the
    rate but is part of every epoch.
    """
    if timing.steady_from_middle:
        return dataclasses.replace(timing, fixed_seconds=timing.fixed_seconds + epoch_end_seconds)
    start_up = fixed_seconds
    if timing.first_batch_seconds is not None:
        start_up = min(max(start_up, _start_up_seen(timing)), timing.first_batch_seconds)
    fixed = start_up if timing.timed_epochs > 1 else min(start_up, timing.epoch_seconds / 2)
    rate = timing.batches / (timing.epoch_seconds - fixed)
    return dataclasses.replace(timing, steady_batches_per_second=rate, fixed_seconds=fixed + epoch_end_seconds)


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
