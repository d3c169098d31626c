"""The final race with the formula-driven FakeMeasurer: milliseconds, no Keras."""

import pytest

from tests import builders
from tests.fakes import FakeMeasurer
from tuner.results import KERAS_DEFAULTS, LoaderConfig
from tuner.search.race import Interleaved, confirmed_best, interleave, race_rivals
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
    assert confirmation.speedup == pytest.approx(30.4 / 30.4) and not confirmation.significant
    assert confirmed_best(final, [leader, rival]) == rival  # 31.5 against 30.4; over all five the leader read 36.6

def test_tf_data_is_judged_against_what_is_recommended():
    best, tf_data = LoaderConfig(2, False, 10), LoaderConfig.tf_data()
    final = race({best: (30.0, 36.0, 39.0), KERAS_DEFAULTS: (28.0, 30.0, 33.0), tf_data: (35.0, 37.0, 40.0)})
    chosen, confirmation, switch = final.verdict(best)
    assert chosen == KERAS_DEFAULTS and not confirmation.significant  # 36 over 30, but the epochs overlap
    assert switch.significant and switch.default_samples == (28.0, 30.0, 33.0)  # level with best, above the defaults
    assert not final.compare(tf_data, best).significant

    clear = race({best: (40.0, 41.0, 42.0), KERAS_DEFAULTS: (28.0, 30.0, 33.0), tf_data: (35.0, 37.0, 40.0)})
    assert clear.verdict(best)[0] == best and not clear.verdict(best)[2].significant

def race(samples):
    return Interleaved(samples, {}, {})

def test_confirmation_claims_a_real_speedup():
    fake = FakeMeasurer(noise=0.05)
    best = LoaderConfig(8, False, 16)
    final = interleave(fake, [best, KERAS_DEFAULTS], epoch_batches=200, min_rounds=5, max_rounds=5)
    confirmation = final.compare(best, KERAS_DEFAULTS)
    assert confirmation.significant
    assert confirmation.speedup_low > 4
    assert final.peak_memory_bytes[best] > 0 and final.peak_memory_bytes[KERAS_DEFAULTS] > 0
    # Interleaved: A B A B ...
    assert [config for config, _ in fake.calls[:4]] == [best, KERAS_DEFAULTS] * 2

def test_confirmation_does_not_claim_a_speedup_between_equals():
    fake = FakeMeasurer(noise=0.1)
    equal = LoaderConfig(1, False, 3)
    confirmation = interleave(fake, [equal, KERAS_DEFAULTS], epoch_batches=200, min_rounds=5, max_rounds=5).compare(equal, KERAS_DEFAULTS)
    assert not confirmation.significant
    assert confirmation.speedup_low <= 1.0 <= confirmation.speedup_high

def test_a_config_that_stops_in_the_final_rounds_is_dropped_with_its_reason():
    fake = FakeMeasurer(fail_when=lambda config: config.use_multiprocessing)
    processes = LoaderConfig(4, True, 8)
    final = interleave(fake, [processes, KERAS_DEFAULTS], epoch_batches=200, min_rounds=3, max_rounds=3)
    assert final.failures == {processes: "fake hang: timed out"}
    assert final.compare(processes, KERAS_DEFAULTS) is None
    assert [c for c, _ in fake.calls].count(processes) == 1
    assert len(final.samples[KERAS_DEFAULTS]) == 1  # nothing left to race against

def test_the_race_stops_once_every_contender_is_settled():
    fake = FakeMeasurer(noise=0.02)
    best = LoaderConfig(8, False, 16)
    final = interleave(fake, [best, KERAS_DEFAULTS, LoaderConfig(2, False, 10)], epoch_batches=200,
                       min_rounds=3, max_rounds=8)
    assert len(final.samples[best]) == 3  # 8x and 2x apart: three rounds settle both
    assert final.compare(best, KERAS_DEFAULTS).significant

def test_the_race_goes_on_while_the_leader_may_yet_prove_it_beats_a_close_contender():
    fake = FakeMeasurer(noise=0.1)
    best, close = LoaderConfig(8, False, 16), LoaderConfig(7, False, 16)  # 400 and 350 batches/s, 10% noise
    final = interleave(fake, [best, KERAS_DEFAULTS, close], epoch_batches=200, min_rounds=3, max_rounds=6)
    assert len(final.samples[KERAS_DEFAULTS]) == 3  # settled and left the race
    assert len(final.samples[close]) == 6

def test_more_rounds_go_only_to_a_question_that_can_still_be_answered_yes():
    best, ahead, behind = LoaderConfig(8, False, 16), LoaderConfig(9, False, 16), LoaderConfig(7, False, 16)

    def race(contender, **kwargs):
        return interleave(FakeMeasurer(noise=0.1), [best, KERAS_DEFAULTS, contender], epoch_batches=200,
                          min_rounds=3, max_rounds=6, **kwargs)

    # Ahead of the leader: the leader has no speed-up over it to prove.
    assert len(race(ahead).samples[ahead]) == 3
    # A challenger behind the leader is no reason to switch; one ahead races on until its interval settles.
    assert len(race(behind, challengers=[behind]).samples[behind]) == 3
    challenger_ahead = race(ahead, challengers=[ahead])
    assert len(challenger_ahead.samples[ahead]) == 4
    assert challenger_ahead.compare(ahead, best).speedup_low > 1.0

def test_a_brief_rival_leaves_after_the_minimum_rounds_even_when_too_close_to_call():
    fake = FakeMeasurer(noise=0.1)
    best, rival = LoaderConfig(8, False, 16), LoaderConfig(8, False, 15)
    final = interleave(fake, [best, rival, KERAS_DEFAULTS], epoch_batches=200, min_rounds=3, max_rounds=6,
                       brief=[rival])
    assert len(final.samples[rival]) == 3 and len(final.samples[KERAS_DEFAULTS]) == 3
    assert len(final.samples[best]) == 3  # nothing left to race against
