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
    if batches < MIN_BATCHES_FOR_SLOPE:
        return WindowTiming(batches, epoch_seconds, batches / epoch_seconds, 0.0)
    first = batches // 2
    span = batch_ends[-1] - batch_ends[first - 1]
    rate = (batches - first) / span if span > 0 else batches / epoch_seconds
    fixed = max(0.0, epoch_seconds - batches / rate)
    return WindowTiming(batches, epoch_seconds, rate, fixed)


def epoch_throughput(window: WindowTiming, epoch_batches: int) -> float:
    """Batches per second over a whole epoch of ``epoch_batches`` batches."""
    return epoch_batches / window.predicted_epoch_seconds(epoch_batches)


def epoch_throughputs(windows: Sequence[WindowTiming], epoch_batches: int) -> Spread:
    return summarize([epoch_throughput(w, epoch_batches) for w in windows])
