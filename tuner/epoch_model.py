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
    follows from it. The fixed cost is capped at half the epoch, and at the
    window's own first batch: no start-up outlasts it.

    That second cap matters where the known cost is an extrapolation. The
    analytic model scales the probe's process start-up per worker, and put
    16 processes on the model-bound benchmark at 2.28 s where their first
    batch arrived after 0.82 to 0.92 s. Subtracted from a 4.6 s window, the
    2.28 s made the rate 13.7 batches/s and the predicted epoch 9.6 s, and a
    real epoch took 14.3 to 14.9 s, slower than inline's 11.6 s, yet 16
    processes had beaten the defaults in every benchmark round-robin.

    Where a big pool is still ramping up after its first batch, the window
    is mostly ramp and its reading spreads: 16 processes' 32-batch windows
    on numpy_augment predicted 4.0 to 6.4 s for epochs of 4.8 to 6.0 s
    (120-batch windows: 5.3 to 5.7 s). The median of five came out +26%,
    -6% and +27% in three runs (benchmarks/epoch_prediction.py): predicted
    slower than it runs more often than not (README, "Epoch model against
    real whole epochs").

    ``epoch_end_seconds`` is a per-epoch cost outside the timed epoch (see
    ``PipelinePoint``): it does not touch the rate but is part of every epoch.
    """
    fixed = min(fixed_seconds, timing.epoch_seconds / 2)
    if timing.first_batch_seconds is not None:
        fixed = min(fixed, timing.first_batch_seconds)
    rate = timing.batches / (timing.epoch_seconds - fixed)
    return WindowTiming(timing.batches, timing.epoch_seconds, rate, fixed + epoch_end_seconds, timing.first_batch_seconds)


def epoch_throughput(window: WindowTiming, epoch_batches: int) -> float:
    """Batches per second over a whole epoch of ``epoch_batches`` batches."""
    return epoch_batches / window.predicted_epoch_seconds(epoch_batches)


def epoch_throughputs(windows: Sequence[WindowTiming], epoch_batches: int) -> Spread:
    return summarize([epoch_throughput(w, epoch_batches) for w in windows])
