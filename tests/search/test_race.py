"""The final race with the formula-driven FakeMeasurer: milliseconds, no Keras."""

import time

import pytest

from tests import builders
from tests.fakes import FakeMeasurer
from tuner.results import KERAS_DEFAULTS, LoaderConfig, RaceLoad
from tuner.search.race import FIT_EPOCHS, RACE_WINDOW_OFFSET, STEADY_LOAD_ROUNDS, Interleaved, confirmed_best, interleave, race_rivals
from tuner.search.study import StudySettings, best_trial


def settings(**overrides):
    return StudySettings(**{"epoch_batches": 200, "max_trials": 20, "time_budget_seconds": 60, **overrides})


def test_the_fastest_trials_within_ten_percent_race_the_simplest():
    trials = (
        builders.trial(0, LoaderConfig(16, False, 32), 300.0),
        builders.trial(1, LoaderConfig(6, False, 10), 290.0),
        builders.trial(2, LoaderConfig(9, True, 16), 295.0),
        builders.trial(3, LoaderConfig(8, False, 10), 280.0),
        builders.trial(4, LoaderConfig(4, False, 10), 200.0),
    )
    chosen = best_trial(trials)
    assert chosen.config == LoaderConfig(6, False, 10)
    assert race_rivals(trials, chosen, settings().ceiling) == [LoaderConfig(16, False, 32), LoaderConfig(9, True, 16)]
    assert race_rivals(trials, chosen, settings().ceiling, margin=0.01) == [LoaderConfig(16, False, 32)]
    # At the free-data ceiling they are the model's own speed, equals: nothing to race.
    assert race_rivals(trials, chosen, settings(ceiling_batches_per_second=310.0).ceiling) == []
    assert race_rivals(trials, chosen, settings(ceiling_batches_per_second=330.0).ceiling) == [
        LoaderConfig(16, False, 32), LoaderConfig(9, True, 16)]

def test_the_race_keeps_the_simplest_unless_a_rival_is_clearly_faster():
    simple, rival = LoaderConfig(6, False, 10), LoaderConfig(16, False, 32)
    close = race({simple: (297.0, 300.0, 298.0), rival: (300.0, 302.0, 298.0)})
    assert confirmed_best(close, [simple, rival]) == simple
    apart = race({simple: (290.0, 292.0, 291.0), rival: (300.0, 302.0, 298.0)})  # 3% slower
    assert confirmed_best(apart, [simple, rival]) == rival
    assert confirmed_best(race({rival: (300.0,)}), [simple, rival]) == rival  # the simplest stopped: no samples

def test_for_waiting_code_the_race_keeps_the_most_batches_in_flight_it_cannot_tell_from_the_fastest():
    """The race's medians of a 60-round miss: 6 threads at 190.5 against 12 at 179.1 over three rounds, while
    over 60 rounds 12 threads read level with 6 and 6 read 1.098 of 5."""
    knee, plateau, processes = LoaderConfig(6, False, 10), LoaderConfig(12, False, 16), LoaderConfig(16, True, 32)
    level = race({knee: (190.5, 171.0, 201.0), plateau: (179.1, 185.0, 168.0), processes: (192.0, 180.0, 175.0)})
    assert confirmed_best(level, [knee, plateau, processes]) == knee  # the simplest within 1% of the fastest
    assert confirmed_best(level, [knee, plateau, processes], waiting=True) == plateau
    assert confirmed_best(level, [knee, processes], waiting=True) == knee  # threads before processes, which copy the data
    slower = race({knee: (190.5, 192.0, 191.0), plateau: (160.0, 158.0, 162.0)})  # 12 threads shown slower
    assert confirmed_best(slower, [knee, plateau], waiting=True) == knee

def test_the_race_compares_settings_over_the_rounds_that_timed_both():
    """The leader's later rounds, run after the others left, fell in a faster phase of the machine."""
    leader, rival = LoaderConfig(2, False, 10), LoaderConfig(4, False, 10)
    final = race({leader: (28.2, 30.4, 36.8, 38.9, 36.6), KERAS_DEFAULTS: (27.6, 30.4, 33.0),
                  rival: (29.0, 31.5, 34.0)})
    confirmation = final.compare(leader, KERAS_DEFAULTS)
    assert confirmation.best_samples == (28.2, 30.4, 36.8)
    assert confirmation.speedup == pytest.approx(28.2 / 27.6)  # the median of the per-round ratios
    assert confirmation.is_range and not confirmation.significant  # three rounds give a range, not a 95% interval
    assert confirmed_best(final, [leader, rival]) == rival  # 31.5 against 30.4; over all five the leader read 36.6


def test_three_rounds_are_a_range_however_far_apart_and_six_can_claim():
    fast = race({LoaderConfig(8, False, 16): (300.0, 310.0, 305.0), KERAS_DEFAULTS: (45.0, 44.0, 46.0)})
    three = fast.compare(LoaderConfig(8, False, 16), KERAS_DEFAULTS)
    assert three.speedup_low > 6 and three.is_range and not three.significant
    assert "the range of 3 rounds (too few for a 95% interval)" in three.interval_text()
    six = race({LoaderConfig(8, False, 16): (300.0, 310.0, 305.0) * 2, KERAS_DEFAULTS: (45.0, 44.0, 46.0) * 2})
    claim = six.compare(LoaderConfig(8, False, 16), KERAS_DEFAULTS)
    assert claim.significant and claim.confidence == pytest.approx(1 - 2 / 64)
    assert claim.interval_text().endswith("97% interval, 6 interleaved rounds")


def test_a_race_cut_short_chooses_a_setting_ahead_in_each_of_five_rounds_with_its_range():
    best = LoaderConfig(16, False, 16)
    five = race({best: (71.0, 70.5, 71.4, 70.9, 71.2), KERAS_DEFAULTS: (44.0, 44.5, 43.9, 44.2, 44.1)})
    chosen, confirmation, _ = five.verdict(best)
    assert chosen == best and confirmation.is_range and confirmation.ahead_in_every_round
    four = race({best: (71.0, 70.5, 71.4, 70.9), KERAS_DEFAULTS: (44.0, 44.5, 43.9, 44.2)})
    assert four.verdict(best)[0] == KERAS_DEFAULTS  # 2**-4 is not evidence enough
    mixed = race({best: (71.0, 43.0, 71.4, 70.9, 71.2), KERAS_DEFAULTS: (44.0, 44.5, 43.9, 44.2, 44.1)})
    assert mixed.verdict(best)[0] == KERAS_DEFAULTS  # behind once: the range decides nothing


def test_tf_data_is_judged_against_what_is_recommended():
    best, tf_data = LoaderConfig(2, False, 10), LoaderConfig.tf_data()
    defaults = (31.0, 30.0, 33.0, 29.0, 36.0, 34.0)
    final = race({best: (30.0, 36.0, 39.0, 31.0, 35.0, 38.0), KERAS_DEFAULTS: defaults,
                  tf_data: (35.0, 35.0, 40.0, 30.0, 38.0, 37.0)})
    chosen, confirmation, switch = final.verdict(best)
    assert chosen == KERAS_DEFAULTS and not confirmation.significant  # two rounds of six had the defaults ahead
    assert switch.significant and switch.default_samples == defaults  # level with best, above the defaults
    assert not final.compare(tf_data, best).significant

    clear = race({best: (40.0, 41.0, 42.0, 40.0, 41.0, 42.0), KERAS_DEFAULTS: defaults,
                  tf_data: (35.0, 35.0, 40.0, 30.0, 38.0, 37.0)})
    assert clear.verdict(best)[0] == best and not clear.verdict(best)[2].significant


def race(samples):
    return Interleaved(samples, {}, {})


def run_race(fake, configs, **kwargs):
    return interleave(fake, configs, **{"epoch_batches": 200, "choice_rounds": 3, "max_rounds": 12, **kwargs})


def test_the_race_claims_a_real_speedup_once_it_has_a_95_percent_interval():
    fake = FakeMeasurer(noise=0.05)
    best = LoaderConfig(8, False, 16)
    final = run_race(fake, [best, KERAS_DEFAULTS])
    confirmation = final.compare(best, KERAS_DEFAULTS)
    assert confirmation.significant and confirmation.speedup_low > 4
    assert len(confirmation.best_samples) >= 6  # no claim from fewer
    assert final.peak_memory_bytes[best] > 0 and final.peak_memory_bytes[KERAS_DEFAULTS] > 0
    # Interleaved: A B A B ..., and each an epoch timed after another of the same fit.
    assert [config for config, _ in fake.calls[:4]] == [best, KERAS_DEFAULTS] * 2
    assert set(fake.epochs_per_fit) == {FIT_EPOCHS} and FIT_EPOCHS > 1


def test_the_race_does_not_claim_a_speedup_between_equals():
    equal = LoaderConfig(1, False, 3)  # no pool: Keras runs it as it runs the defaults
    confirmation = run_race(FakeMeasurer(noise=0.1), [equal, KERAS_DEFAULTS], max_rounds=8).compare(equal, KERAS_DEFAULTS)
    assert not confirmation.significant
    assert confirmation.speedup_low <= 1.0 <= confirmation.speedup_high


def test_a_config_that_stops_in_the_race_is_dropped_with_its_reason():
    fake = FakeMeasurer(fail_when=lambda config: config.use_multiprocessing)
    processes = LoaderConfig(4, True, 8)
    final = run_race(fake, [processes, KERAS_DEFAULTS])
    assert final.failures == {processes: "fake hang: timed out"}
    assert final.compare(processes, KERAS_DEFAULTS) is None
    assert [c for c, _ in fake.calls].count(processes) == 1
    assert len(final.samples[KERAS_DEFAULTS]) == 1  # nothing left to race against


def test_the_race_ends_once_the_answer_against_the_defaults_is_decided():
    best, rival = LoaderConfig(8, False, 16), LoaderConfig(2, False, 10)
    final = run_race(FakeMeasurer(noise=0.02), [best, KERAS_DEFAULTS, rival])
    assert len(final.samples[rival]) == 3  # candidates other than the answer leave once it is chosen
    assert len(final.samples[best]) == 6  # 8x apart, 2% noise: six rounds decide it within +-10%
    assert final.compare(best, KERAS_DEFAULTS).significant
    assert final.stopped_because == "every comparison with the answer was decided"


def test_an_undecided_race_runs_until_its_rounds_or_its_time_run_out_and_says_which():
    # The model step caps two threads at 51.3 batches/s against the defaults' 50: 2.6% apart, 10% noise.
    close = LoaderConfig(2, False, 10)
    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.0195, noise=0.1)
    final = run_race(fake, [close, KERAS_DEFAULTS], max_rounds=10)
    assert len(final.samples[KERAS_DEFAULTS]) == 10 and final.stopped_because == "it ran the 10 rounds allowed"
    out_of_time = run_race(FakeMeasurer(batch_seconds=0.02, model_seconds=0.0195, noise=0.1), [close, KERAS_DEFAULTS],
                           deadline=time.monotonic() - 1)
    assert len(out_of_time.samples[close]) == 3  # the choice's rounds always run
    assert out_of_time.stopped_because == "it reached the time budget (--time-budget) undecided"


def test_the_defaults_race_the_setting_the_race_chose_not_the_studys_first_choice():
    """The study's choice settled against the defaults, the race then chose a faster rival: the claim must be
    about the rival, with as many rounds as the question needs."""
    first, rival = LoaderConfig(2, True, 10), LoaderConfig(4, True, 10)
    fake = FakeMeasurer(noise=0.02)
    final = run_race(fake, [first, rival, KERAS_DEFAULTS], choose=lambda so_far: rival)
    assert final.leader == rival
    assert len(final.samples[first]) == 3 and len(final.samples[rival]) >= 6
    assert final.verdict(rival)[0] == rival and final.verdict(rival)[1].significant


def test_more_rounds_go_only_to_a_question_that_can_still_be_answered_yes():
    best, ahead, behind = LoaderConfig(8, False, 16), LoaderConfig(9, False, 16), LoaderConfig(7, False, 16)

    def challenge(contender, **kwargs):
        return run_race(FakeMeasurer(noise=0.1), [best, KERAS_DEFAULTS, contender], max_rounds=8, **kwargs)

    # Neither the answer, the defaults nor a challenger: it leaves once the answer is chosen.
    assert len(challenge(ahead).samples[ahead]) == 3
    # A challenger behind the leader is no reason to switch; one ahead races on while undecided.
    assert len(challenge(behind, challengers=[behind]).samples[behind]) == 3
    challenger_ahead = challenge(ahead, challengers=[ahead])
    assert len(challenger_ahead.samples[ahead]) > 3
    assert challenger_ahead.compare(ahead, best).speedup > 1.0


def test_rounds_run_while_other_processes_take_the_cpu_are_dropped_and_run_again():
    best = LoaderConfig(8, False, 16)
    busy_round = RACE_WINDOW_OFFSET + 1  # the second round: another process took a whole core
    fake = FakeMeasurer(noise=0.02, busy_when=lambda config, window: 1.0 if window == busy_round else 0.05)
    final = run_race(fake, [best, KERAS_DEFAULTS])
    assert final.load == RaceLoad(dropped_rounds=1, loaded_rounds=0, peak_foreign_cores=1.0)
    assert len(final.samples[best]) == 6  # still six undisturbed rounds: the dropped one was run again
    assert [window for _, window in fake.calls].count(busy_round) == 2  # timed, then thrown away


def test_a_race_that_cannot_drop_any_more_rounds_says_its_claim_was_made_under_load():
    best = LoaderConfig(8, False, 16)
    always = FakeMeasurer(noise=0.02, busy_when=lambda config, window: 0.9)
    final = run_race(always, [best, KERAS_DEFAULTS], max_rounds=12)
    # Three loaded rounds in a row show a steady load: rerunning more would only lengthen the race.
    assert final.load.dropped_rounds == STEADY_LOAD_ROUNDS == 3
    assert final.load.loaded_rounds == len(final.samples[best]) >= 6
    confirmation = final.compare(best, KERAS_DEFAULTS)
    from tests import builders
    from tuner.analysis import advice
    from tuner.search.space import SearchSpace

    warnings = advice.warn(chosen=best, chosen_trial=None, trials=(), dataset=builders.dataset(),
                           memory_budget_bytes=None, space=SearchSpace(8, True), confirmation=confirmation,
                           race_load=final.load)
    warning = next(w for w in warnings if w.startswith("The machine was busy"))
    assert f"{final.load.loaded_rounds} of the race's rounds ran while other processes" in warning
    assert "up to 0.9 cores" in warning
    assert "made under load" in warning
