"""Robust statistics for noisy timings (the habits of hyperfine and asv).

Medians and the median absolute deviation (MAD) rather than means and
standard deviations: one stalled epoch on a busy machine must not move the
answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from probes.profiles import Spread


def _student_t():
    """SciPy's t distribution, imported on first use: the epoch model (which every process worker that
    unpickles a window imports) needs ``summarize`` only, and scipy.stats takes 0.45 s to import."""
    from scipy.stats import t

    return t


def summarize(values: Sequence[float]) -> Spread:
    """Median, MAD, min, max and count of ``values`` (which must be non-empty)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("summarize() needs at least one value. Received: values=[]")
    median = float(np.median(array))
    return Spread(
        median=median,
        mad=float(np.median(np.abs(array - median))),
        minimum=float(array.min()),
        maximum=float(array.max()),
        count=int(array.size),
    )


# hyperfine's threshold: 1.4826 turns the MAD into an estimate of the standard deviation, times 10 of them.
OUTLIER_THRESHOLD = 1.4826 * 10.0


def modified_z_scores(values: Sequence[float]) -> np.ndarray:
    """``(x - median) / MAD`` for each value, as hyperfine computes them (MAD 0 becomes the float epsilon,
    so any value off a constant sample scores huge)."""
    array = np.asarray(values, dtype=float)
    median = np.median(array)
    mad = float(np.median(np.abs(array - median)))
    return (array - median) / (mad if mad > 0 else np.finfo(float).eps)


def outlier_mask(values: Sequence[float], threshold: float = OUTLIER_THRESHOLD) -> list[bool]:
    """Marks the values hyperfine calls outliers: modified z-score above ``threshold`` in absolute value."""
    if len(values) == 0:
        return []
    return [bool(abs(score) > threshold) for score in modified_z_scores(values)]


def bootstrap_ratio_interval(numerator: Sequence[float], denominator: Sequence[float], confidence: float = 0.95,
                             resamples: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of medians with a percentile bootstrap interval.

    Returns ``(ratio, low, high)``. The two samples are resampled
    independently; interleaved measurement (A B A B ...) is what makes them
    comparable in the first place.
    """
    a = np.asarray(numerator, dtype=float)
    b = np.asarray(denominator, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError(
            "bootstrap_ratio_interval() needs samples on both sides. "
            f"Received: {a.size} numerator and {b.size} denominator values"
        )
    rng = np.random.default_rng(seed)
    ratios = _resampled_medians(a, rng, resamples) / _resampled_medians(b, rng, resamples)
    return _percentile_interval(float(np.median(a) / np.median(b)), ratios, confidence)


def paired_ratio_interval(numerator: Sequence[float], denominator: Sequence[float], confidence: float = 0.95,
                          resamples: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """Median of per-round ratios with a percentile bootstrap over rounds: ``(ratio, low, high)``.

    For long interleaved runs, where ``numerator[i]`` and ``denominator[i]``
    were timed in the same round: a machine that drifts between fast and
    slow phases moves every setting of a round together, and pairing removes
    that shared drift from the interval. With three rounds the interval is
    only the ratios' range, so the final race, which can settle after
    three, keeps the unpaired interval.
    """
    a = np.asarray(numerator, dtype=float)
    b = np.asarray(denominator, dtype=float)
    if a.size == 0 or a.size != b.size:
        raise ValueError(
            "paired_ratio_interval() needs one value per round on each side. "
            f"Received: {a.size} numerator and {b.size} denominator values"
        )
    ratios = a / b
    medians = _resampled_medians(ratios, np.random.default_rng(seed), resamples)
    return _percentile_interval(float(np.median(ratios)), medians, confidence)


def _resampled_medians(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples of ``values``."""
    return np.median(rng.choice(values, size=(resamples, values.size)), axis=1)


def _percentile_interval(point: float, draws: np.ndarray, confidence: float) -> tuple[float, float, float]:
    tail = (1.0 - confidence) / 2.0
    return point, float(np.quantile(draws, tail)), float(np.quantile(draws, 1.0 - tail))


@dataclass(frozen=True)
class RatioInterval:
    """The geometric mean of per-round ratios and a t interval around it (``low`` 0 and ``high`` inf when
    nothing bounds the noise yet); ``noise`` is the standard deviation of one round's log ratio it used, with
    ``df`` degrees of freedom."""

    ratio: float
    low: float
    high: float
    confidence: float
    rounds: int
    noise: float
    df: int = 0

    def probability_above(self, threshold: float = 1.0) -> float:
        """How likely the true ratio is above ``threshold``: the t distribution of the mean log ratio read as
        a posterior under a flat prior (0.5 when nothing bounds the noise yet)."""
        if self.df < 1 or self.noise <= 0.0:
            return 0.5
        standard_error = self.noise / math.sqrt(self.rounds)
        return float(_student_t().cdf((math.log(self.ratio) - math.log(threshold)) / standard_error, self.df))


def paired_log_interval(numerator: Sequence[float], denominator: Sequence[float], confidence: float = 0.95, *,
                        one_sided: bool = False, pooled_noise: float = 0.0, pooled_df: int = 0,
                        noise_floor: float = 0.0) -> RatioInterval:
    """Per-round ratios ``numerator[i] / denominator[i]`` of an interleaved race: their geometric mean and a
    Student t interval on the mean log ratio.

    Each round times both sides back to back, so its ratio cancels the
    machine's drift. Two or three rounds estimate their own spread poorly,
    so the spread used is the largest of this pair's own, ``pooled_noise``
    (what the race's other pairs show, with ``pooled_df`` degrees of
    freedom) and ``noise_floor``; the degrees of freedom are the larger of
    the two sources'. ``one_sided`` bounds both ends at ``confidence``
    (for "is it below?" questions) instead of splitting the rest.
    """
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.size == 0 or a.size != b.size:
        raise ValueError("paired_log_interval() needs one value per round on each side. "
                         f"Received: {a.size} numerator and {b.size} denominator values")
    logs = np.log(a / b)
    n, mean = logs.size, float(logs.mean())
    own = float(logs.std(ddof=1)) if n > 1 else 0.0
    noise, df = max(own, pooled_noise, noise_floor), max(n - 1, pooled_df)
    if df < 1:
        return RatioInterval(math.exp(mean), 0.0, math.inf, confidence, n, noise, df)
    half = float(_student_t().ppf(confidence if one_sided else (1.0 + confidence) / 2.0, df)) * noise / math.sqrt(n)
    return RatioInterval(math.exp(mean), math.exp(mean - half), math.exp(mean + half), confidence, n, noise, df)
