"""Robust statistics for noisy timings (the habits of hyperfine and asv).

Medians and the median absolute deviation (MAD) rather than means and
standard deviations: one stalled epoch on a busy machine must not move the
answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probes.profiles import Spread


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


def outlier_mask(values: Sequence[float], threshold: float = 14.0) -> list[bool]:
    """Marks values whose modified z-score ``0.6745 (x - median) / MAD`` exceeds ``threshold``.

    The rule and threshold hyperfine uses; with MAD == 0 no value is an
    outlier, since the data gives no scale to judge by.
    """
    array = np.asarray(values, dtype=float)
    if array.size < 3:
        return [False] * int(array.size)
    median = np.median(array)
    mad = np.median(np.abs(array - median))
    if mad == 0:
        return [False] * int(array.size)
    return [bool(v) for v in 0.6745 * np.abs(array - median) / mad > threshold]


def bootstrap_ratio_interval(
    numerator: Sequence[float],
    denominator: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float, float]:
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


def paired_ratio_interval(
    numerator: Sequence[float],
    denominator: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Median of per-round ratios with a percentile bootstrap over rounds: ``(ratio, low, high)``.

    For long interleaved runs, where ``numerator[i]`` and ``denominator[i]``
    were timed in the same round. This machine drifts slowly between fast
    and slow phases that every setting shares: over 30 rounds of io_bound,
    settings correlated 0.6 to 0.8 from round to round, and the same setting
    timed twice read 0.94 [0.81, 1.15] of itself with
    ``bootstrap_ratio_interval`` and 0.975 [0.894, 1.024] paired. With
    three rounds the interval is only the ratios' range, so the
    confirmation race, which settles after three, keeps the unpaired
    interval.
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
