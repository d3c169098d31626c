import math

import numpy as np
import pytest

from probes.stats import (OUTLIER_THRESHOLD, bootstrap_ratio_interval, modified_z_scores, outlier_mask,
                          paired_ratio_interval, summarize)


def test_summarize_reports_median_mad_and_count():
    spread = summarize([1.0, 2.0, 3.0, 100.0])
    assert spread.median == 2.5
    assert spread.mad == 1.0
    assert (spread.minimum, spread.maximum, spread.count) == (1.0, 100.0, 4)


def test_summarize_rejects_empty_input_with_a_clear_message():
    with pytest.raises(ValueError, match="Received: values=\\[\\]"):
        summarize([])


def test_modified_z_scores_are_deviations_from_the_median_over_the_unscaled_mad():
    # hyperfine's worked example: median 0.1, deviations 0.3, 0.1, 0.1, 3.9, MAD 0.2.
    assert modified_z_scores([-0.2, 0.0, 0.2, 4.0]) == pytest.approx([-1.5, -0.5, 0.5, 19.5])
    assert OUTLIER_THRESHOLD == pytest.approx(14.826)


def test_outlier_mask_follows_hyperfines_examples():
    assert outlier_mask([]) == [] and outlier_mask([50.0]) == [False]
    assert outlier_mask([1000.0, 0.0]) == [False, False]  # too few to tell
    assert outlier_mask([-0.2, 0.0, 0.2]) == [False] * 3  # low variance
    assert outlier_mask([-0.2, 0.0, 0.2, 4.0]) == [False, False, False, True]  # z = 19.5
    assert outlier_mask([-0.2, 0.0, 0.2, 2.0]) == [False] * 4  # z = 9.5, under 14.8


def test_outlier_mask_flags_any_departure_from_a_constant_sample():
    # MAD 0 gives no scale, so hyperfine divides by the float epsilon: a value off the constant is flagged.
    assert outlier_mask([5.0, 5.0, 5.0, 9.0]) == [False, False, False, True]
    assert outlier_mask([5.0, 5.0, 5.0]) == [False] * 3


def test_bootstrap_interval_excludes_one_for_a_real_speedup():
    rng = np.random.default_rng(1)
    fast, slow = rng.normal(300, 10, 5), rng.normal(100, 5, 5)
    ratio, low, high = bootstrap_ratio_interval(fast, slow)
    assert low > 1.0 and low <= ratio <= high
    assert ratio == pytest.approx(3.0, rel=0.15)


def test_bootstrap_interval_includes_one_for_equal_samples():
    rng = np.random.default_rng(2)
    a, b = rng.normal(100, 10, 5), rng.normal(100, 10, 5)
    _, low, high = bootstrap_ratio_interval(a, b)
    assert low < 1.0 < high


def test_paired_interval_sees_through_a_drift_both_settings_share_where_the_unpaired_one_cannot():
    rng = np.random.default_rng(3)
    phase = rng.uniform(0.6, 1.4, 30)  # the machine's slow phases, shared by both settings in a round
    faster = 105.0 * phase * rng.normal(1.0, 0.01, 30)
    slower = 100.0 * phase * rng.normal(1.0, 0.01, 30)
    _, unpaired_low, unpaired_high = bootstrap_ratio_interval(faster, slower)
    ratio, low, high = paired_ratio_interval(faster, slower)
    assert unpaired_low < 1.0 < unpaired_high
    assert 1.0 < low <= ratio <= high < 1.1
    assert ratio == pytest.approx(1.05, rel=0.01)


def test_paired_interval_needs_one_value_per_round_on_each_side():
    with pytest.raises(ValueError, match="Received: 3 numerator and 2 denominator values"):
        paired_ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0])


def test_the_paired_log_interval_is_a_t_interval_that_borrows_spread_when_its_own_rounds_are_few():
    from probes.stats import paired_log_interval

    # Rounds in step with a drifting machine: the ratio is exactly 1.5 each round, so its own spread is 0.
    drift = [1.0, 0.7, 1.3, 0.9]
    steady = paired_log_interval([150.0 * d for d in drift], [100.0 * d for d in drift])
    assert steady.ratio == pytest.approx(1.5) and steady.low == pytest.approx(1.5) and steady.noise == 0.0
    floored = paired_log_interval([150.0 * d for d in drift], [100.0 * d for d in drift], noise_floor=0.01)
    assert floored.low < 1.5 < floored.high and floored.high / floored.low == pytest.approx(
        math.exp(2 * 3.182 * 0.01 / 2), rel=1e-3)  # t(0.975, 3) = 3.182
    # Two rounds with 6 pooled degrees of freedom: t(0.975, 6) = 2.447 instead of t(0.975, 1) = 12.71.
    pooled = paired_log_interval([2.0, 2.1], [1.0, 1.0], pooled_noise=0.05, pooled_df=6)
    assert pooled.high / pooled.ratio == pytest.approx(math.exp(2.447 * 0.05 / math.sqrt(2)), rel=1e-3)
    alone = paired_log_interval([2.0, 2.1], [1.0, 1.0])
    assert alone.high / alone.ratio > pooled.high / pooled.ratio
    one_sided = paired_log_interval([2.0, 2.1], [1.0, 1.0], 0.95, one_sided=True, pooled_noise=0.05, pooled_df=6)
    assert one_sided.high < pooled.high  # 1.943 instead of 2.447
    assert paired_log_interval([2.0], [1.0]).high == math.inf  # one round bounds nothing
    with pytest.raises(ValueError, match="one value per round"):
        paired_log_interval([1.0, 2.0], [1.0])
