"""The race's rules (tuner/search/decision.py) on hand-made rounds: no Keras, no measurer."""

import math

import pytest

from probes.stats import paired_log_interval
from tests import builders
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.results import ChoiceBasis, Confirmation
from tuner.search import decision

TWO, FOUR, EIGHT = LoaderConfig(2, False, 10), LoaderConfig(4, False, 10), LoaderConfig(8, False, 16)


def test_the_fastest_few_within_the_margin_reach_the_race_with_the_defaults():
    screened = [builders.trial(0, KERAS_DEFAULTS, 45.0), builders.trial(1, TWO, 100.0),
                builders.trial(2, FOUR, 190.0), builders.trial(3, EIGHT, 200.0),
                builders.trial(4, LoaderConfig(16, False, 32), 205.0), builders.trial(5, LoaderConfig(32, False, 64), 199.0),
                builders.trial(6, LoaderConfig(2, True, 10), 170.0), builders.trial(7, LoaderConfig(4, True, 10), 0.0, "failed")]
    finals = decision.finalists(screened, keep=[KERAS_DEFAULTS])
    # 4 threads, the simplest within the screen's noise of the threads' best, and the only process pool race;
    # 32 threads, 3% under 16, loses on the cap.
    assert finals == [LoaderConfig(16, False, 32), EIGHT, FOUR, LoaderConfig(2, True, 10), KERAS_DEFAULTS]
    assert len(finals) == decision.FINALISTS + 1
    assert decision.finalists(screened[:2], keep=[KERAS_DEFAULTS]) == [TWO, KERAS_DEFAULTS]  # 45 is 55% below


def test_where_epochs_are_long_the_slowest_finalists_give_way_so_three_rounds_fit():
    screened = [builders.trial(0, KERAS_DEFAULTS, 50.0), builders.trial(1, TWO, 90.0),
                builders.trial(2, FOUR, 100.0), builders.trial(3, EIGHT, 95.0)]
    every = [FOUR, EIGHT, TWO, KERAS_DEFAULTS]  # by the screen; the defaults, 50% below, for the claim
    assert decision.finalists(screened, keep=[KERAS_DEFAULTS]) == every

    def fit(trial):  # a race fit: the defaults' whole epochs cost 6 s, a pool's windows 2 s
        return 6.0 if trial.config == KERAS_DEFAULTS else 2.0

    roomy = decision.finalists(screened, keep=[KERAS_DEFAULTS], fit_seconds=fit, seconds=60.0)
    assert roomy == every  # 3 x (6 + 3 x 2) = 36 s fits in 60
    tight = decision.finalists(screened, keep=[KERAS_DEFAULTS], fit_seconds=fit, seconds=30.0)
    assert tight == [FOUR, TWO, KERAS_DEFAULTS]  # 3 x (6 + 2 x 2) = 30 s; 2 threads, 10% under 4, stays
    # However little time is left, a thread pool races: the simplest within the screen's noise of the fastest.
    assert decision.finalists(screened, keep=[KERAS_DEFAULTS], fit_seconds=fit, seconds=1.0) == [TWO, KERAS_DEFAULTS]
    apart = [screened[0], builders.trial(1, TWO, 70.0)] + screened[2:]  # 2 threads 30% under 4: not noise
    assert decision.finalists(apart, keep=[KERAS_DEFAULTS], fit_seconds=fit, seconds=1.0) == [FOUR, KERAS_DEFAULTS]
    inline_first = [builders.trial(0, KERAS_DEFAULTS, 105.0)] + apart[1:]  # the defaults screened fastest
    assert decision.finalists(inline_first, keep=[KERAS_DEFAULTS], fit_seconds=fit, seconds=1.0) == [
        KERAS_DEFAULTS, FOUR]  # still raced against a pool
    processes = LoaderConfig(2, True, 10)
    mixed = apart + [builders.trial(4, processes, 85.0)]  # the slowest screened, the only process pool
    assert decision.finalists(mixed, keep=[KERAS_DEFAULTS], fit_seconds=fit, seconds=1.0) == [
        FOUR, processes, KERAS_DEFAULTS]  # one of each kind races


def test_tf_data_races_only_where_a_setting_in_the_training_process_comes_near_the_best():
    processes = LoaderConfig(2, True, 10)
    gil_bound = [builders.trial(0, KERAS_DEFAULTS, 40.0), builders.trial(1, TWO, 20.0),
                 builders.trial(2, processes, 80.0)]
    assert decision.tf_data_reach(gil_bound) == pytest.approx(0.5)  # inline at 40, the best at 80
    assert not decision.races_tf_data(gil_bound)  # tf.data would need 2x over inline
    near = gil_bound[:1] + [builders.trial(1, TWO, 60.0), gil_bound[2]]
    assert decision.races_tf_data(near)  # threads at 0.75 of the processes: 1.33x would lead
    assert decision.races_tf_data([builders.trial(0, KERAS_DEFAULTS, 40.0)])


def test_a_comparison_borrows_the_spread_other_pairs_show_and_the_epochs_inside_the_fits():
    rounds = {TWO: (100.0, 101.0), FOUR: (110.0, 111.1), EIGHT: (120.0, 100.0), KERAS_DEFAULTS: (50.0, 50.5)}
    alone = decision.compare(rounds, FOUR, TWO)  # two rounds in step: its own spread is ~0, the floor is 1%
    pooled = decision.pooled_noise(rounds, TWO, list(rounds))
    assert pooled.df == 3 and pooled.pooled > 0.05  # three pairs of two rounds; 8 threads disagree by 20%
    borrowed = decision.compare(rounds, FOUR, TWO, pooled)
    assert borrowed.speedup == pytest.approx(1.1, rel=1e-3)
    assert borrowed.speedup_high - borrowed.speedup_low > 2 * (alone.speedup_high - alone.speedup_low)
    # A setting whose fits' own epochs varied by 30% (an inline epoch that waits, one that does not).
    shaky = decision.Noise(within={KERAS_DEFAULTS: 0.3**2 / 3})
    assert shaky.floor(KERAS_DEFAULTS, TWO) == pytest.approx(0.3 / math.sqrt(3))
    assert decision.Noise().floor(TWO, FOUR) == decision.NOISE_FLOOR
    assert decision.compare({TWO: (1.0,), FOUR: (1.0,)}, TWO, FOUR) is None  # one round judges nothing


def test_clearly_slower_leaves_and_near_equals_stay_until_they_cannot_beat_the_leader_by_three_percent():
    steady = decision.Noise(0.01, 10)
    rounds = {TWO: (100.0, 100.0, 100.0), FOUR: (90.0, 90.5, 89.5), EIGHT: (99.0, 101.0, 99.5)}
    assert decision.clearly_slower(rounds, FOUR, TWO, steady)
    assert not decision.clearly_slower(rounds, EIGHT, TWO, steady)
    assert not decision.could_beat(rounds, EIGHT, TWO, steady)  # level, and 1% noise bounds it below +3%
    assert decision.could_beat(rounds, EIGHT, TWO, decision.Noise(0.05, 10))  # 5% noise does not
    assert decision.far_below({TWO: (100.0,), LoaderConfig.tf_data(): (50.0,)}, LoaderConfig.tf_data(), TWO)


def test_a_claim_is_decided_when_its_interval_excludes_one_within_ten_percent_or_holds_it_within_five():
    def claim(low, high):
        return Confirmation((1.0,), (1.0,), math.sqrt(low * high), low, high, 0.9)

    assert decision.decided(claim(4.6, 5.4)) and decision.decided(claim(0.97, 1.03))
    assert not decision.decided(claim(1.02, 1.4)) and not decision.decided(claim(0.9, 1.1))
    assert not decision.decided(None)


def test_the_answer_is_the_simplest_within_one_percent_of_the_fastest():
    rounds = {EIGHT: (200.0, 202.0), FOUR: (199.0, 200.0), TWO: (150.0, 151.0)}
    assert decision.choice(rounds, [EIGHT, FOUR, TWO]) == FOUR
    assert decision.choice({EIGHT: (200.0, 202.0), FOUR: (190.0, 192.0)}, [EIGHT, FOUR]) == EIGHT
    assert decision.choice(rounds, []) is None


def test_the_verdict_keeps_the_defaults_unless_the_best_is_faster_and_names_the_best_pool_either_way():
    fast = {EIGHT: (300.0, 310.0, 305.0), KERAS_DEFAULTS: (50.0, 51.0, 50.5)}
    win = decision.verdict(fast, [EIGHT, KERAS_DEFAULTS])
    assert win.chosen == win.best == EIGHT and win.claim.speedup == pytest.approx(6.0, rel=0.02)
    level = {TWO: (51.0, 49.0, 50.5), KERAS_DEFAULTS: (50.0, 50.0, 50.0)}
    kept = decision.verdict(level, [TWO, KERAS_DEFAULTS])
    assert kept.chosen == KERAS_DEFAULTS and kept.best == TWO and not kept.claim.significant
    # The pools left the race clearly slower: the claim still names the best of them.
    slow = decision.verdict({TWO: (30.0, 31.0), KERAS_DEFAULTS: (50.0, 50.0, 50.0)}, [KERAS_DEFAULTS])
    assert slow.chosen == KERAS_DEFAULTS and slow.best == TWO and slow.claim.speedup < 1
    # Defaults that failed in the race leave nothing to keep instead.
    assert decision.verdict({EIGHT: (300.0, 300.0)}, [EIGHT]).chosen == EIGHT


def test_an_undecided_race_whose_leader_leads_by_half_recommends_it_and_says_what_would_decide_it():
    """Two rounds at a 1.5x lead: the interval holds 1, but the leader is faster with high probability and
    allows no material loss, so it is the answer; the claim stays undecided, with the rounds to decide it."""
    rounds = {FOUR: (150.0, 160.0), KERAS_DEFAULTS: (100.0, 100.0)}
    noisy = decision.Noise(0.3, 3)  # what the other pairs of a short race showed
    result = decision.verdict(rounds, [FOUR, KERAS_DEFAULTS], pooled=noisy,
                              round_seconds={FOUR: 1.5, KERAS_DEFAULTS: 2.5})
    assert result.chosen == result.best == FOUR
    assert result.claim.speedup_low < 1.0 and not decision.decided(result.claim)
    assert result.decision.basis == ChoiceBasis.LIKELIEST_FASTER
    assert result.decision.probability_faster > decision.MIN_PROBABILITY_FASTER
    assert result.decision.rounds_to_decide > 2 and result.decision.round_seconds == pytest.approx(4.0)


def test_a_leader_whose_evidence_allows_a_twenty_percent_loss_is_set_aside_for_a_safe_pool_or_the_defaults():
    shaky = decision.Noise(0.03, 6, within={EIGHT: 0.35**2})  # its fits' own epochs swung by 35%
    rounds = {EIGHT: (130.0, 125.0, 135.0), TWO: (112.0, 111.0, 113.0), KERAS_DEFAULTS: (100.0, 99.0, 101.0)}
    bound = decision.compare(rounds, EIGHT, KERAS_DEFAULTS, shaky, confidence=decision.HARM_CONFIDENCE, one_sided=True)
    assert bound.speedup_low < 0.9 and bound.speedup < decision.LARGE_GAIN
    safe = decision.verdict(rounds, [EIGHT, TWO, KERAS_DEFAULTS], pooled=shaky)
    assert safe.chosen == safe.best == TWO and safe.decision.guarded == EIGHT
    assert safe.decision.basis == ChoiceBasis.DECIDED_FASTER
    alone = decision.verdict({c: v for c, v in rounds.items() if c != TWO}, [EIGHT, KERAS_DEFAULTS], pooled=shaky)
    assert alone.chosen == KERAS_DEFAULTS and alone.best == EIGHT
    assert alone.decision.basis == ChoiceBasis.HARM_GUARD and alone.decision.guarded == EIGHT


def test_a_tie_keeps_the_defaults_as_the_simpler_setting():
    rounds = {FOUR: (100.5, 99.0, 101.0), KERAS_DEFAULTS: (100.0, 100.0, 100.0)}
    tie = decision.verdict(rounds, [FOUR, KERAS_DEFAULTS], pooled=decision.Noise(0.02, 4))
    assert tie.chosen == KERAS_DEFAULTS and tie.best == FOUR
    assert tie.decision.basis == ChoiceBasis.DEFAULTS_AS_FAST
    assert 0.3 < tie.decision.probability_faster < 0.7


def test_a_small_likely_gain_is_not_worth_a_pool_and_a_gap_inside_the_noise_has_no_round_count():
    rounds = {TWO: (101.5, 101.0, 101.5), KERAS_DEFAULTS: (100.0, 100.0, 100.0)}
    small = decision.verdict(rounds, [TWO, KERAS_DEFAULTS], pooled=decision.Noise(0.002, 4))
    assert small.decision.probability_faster > 0.95 and small.chosen == KERAS_DEFAULTS  # 1.3% < MIN_EXPECTED_GAIN
    wide = paired_log_interval((103.0, 101.0), (100.0, 100.0), pooled_noise=0.5, pooled_df=4)
    assert decision.rounds_to_decide(wide) is None  # a 2% gap under 50% noise needs hundreds of rounds
    clear = paired_log_interval((150.0, 160.0), (100.0, 100.0), decision.CLAIM_CONFIDENCE, pooled_noise=0.3,
                                pooled_df=4)
    needed = decision.rounds_to_decide(clear)
    more = paired_log_interval((155.0,) * needed, (100.0,) * needed, decision.CLAIM_CONFIDENCE, pooled_noise=0.3,
                               pooled_df=needed - 1)
    assert decision.decided(Confirmation((), (), more.ratio, more.low, more.high, more.confidence))


def test_tf_data_races_only_where_three_rounds_with_it_fit_in_the_time_left():
    assert decision.tf_data_fits(round_seconds=6.0, tf_data_seconds=2.0, seconds=24.0)
    assert not decision.tf_data_fits(round_seconds=6.3, tf_data_seconds=2.1, seconds=22.0)  # log_lines


def test_the_simplest_pool_of_a_kind_races_from_below_the_fastest_few_when_its_window_is_within_the_noise():
    """volume_patches: one window put 2 threads 13% under 8 threads, fifth of the screen; the grid's best."""
    screened = [builders.trial(0, KERAS_DEFAULTS, 71.5), builders.trial(1, TWO, 57.9), builders.trial(2, FOUR, 62.9),
                builders.trial(3, LoaderConfig(8, False, 10), 60.0), builders.trial(4, EIGHT, 66.9)]
    finals = decision.finalists(screened, keep=[KERAS_DEFAULTS])
    assert TWO in finals and KERAS_DEFAULTS in finals and len(finals) == decision.FINALISTS
    assert LoaderConfig(8, False, 10) not in finals  # the slowest of the rest gives its place
