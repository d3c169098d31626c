"""The screen and the race with the formula-driven FakeMeasurer: milliseconds, no Keras."""

import time

import pytest

from tests.fakes import FakeMeasurer
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.outcomes import Departure, LeaveKind, RaceEnd, RaceStop
from tuner.search import decision
from tuner.search.candidates import candidates
from tuner.search.race import RACE_WINDOW_OFFSET, STEADY_LOAD_ROUNDS, RacePlan, run_race
from tuner.search.space import SearchSpace
from tuner.search.study import StudySettings, screen

TF_DATA = LoaderConfig.tf_data()
PLAN = lambda config: RacePlan(50, 3)  # noqa: E731


def race(fake, configs, **kwargs):
    return run_race(fake, configs, PLAN, epoch_batches=200, **kwargs)


def test_the_search_finds_the_best_setting_when_the_model_s_first_guess_is_wrong():
    """The model thinks processes win and threads plateau at 4; the data actually waits, so 16 threads are
    best and processes pay a start-up that grows with their number."""
    def truth(config):
        if not config.parallel:
            return 40.0
        in_flight = config.effective_parallelism
        return 40.0 * min(in_flight, 16) * (0.5 if config.use_multiprocessing else 1.0) / (1 + 0.01 * in_flight)

    def wrong_model(config):
        return 40.0 * (min(config.effective_parallelism, 4) * (2 if config.use_multiprocessing else 1))

    space = SearchSpace(max_workers=32, allow_processes=True)
    todo = candidates(space, LoaderConfig(2, True, 10), wrong_model, limit=24)
    assert todo[1][1].use_multiprocessing  # the model's favourite is a process pool
    fake = FakeMeasurer(rate_of=truth, noise=0.02)
    screened = screen(fake, space, todo, StudySettings(epoch_batches=200))
    raced = race(fake, decision.finalists(screened.trials, keep=[KERAS_DEFAULTS]), tf_data=TF_DATA)
    best = max((c for _, c in todo), key=truth)
    assert truth(raced.verdict.chosen) >= 0.97 * truth(best)
    assert raced.verdict.claim.significant and raced.stop.end == RaceEnd.SETTLED


def test_a_five_fold_gap_is_decided_in_a_few_rounds_and_the_defaults_then_leave():
    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.001, noise=0.02)
    raced = race(fake, [LoaderConfig(16, False, 32), KERAS_DEFAULTS])
    assert raced.left[KERAS_DEFAULTS].kind == LeaveKind.CLAIM_DECIDED and len(raced.samples[KERAS_DEFAULTS]) <= 3
    assert raced.verdict.chosen == LoaderConfig(16, False, 32)
    assert 12 < raced.verdict.claim.speedup < 16  # 16 batches in flight, less the pool's start-up per epoch
    assert raced.stop == RaceStop(RaceEnd.SETTLED, LoaderConfig(16, False, 32))


def test_near_equals_settle_on_the_simplest_and_clear_losers_leave_early():
    fake = FakeMeasurer(batch_seconds=0.015, model_seconds=0.005)  # 200 batches/s from 3 batches in flight on
    configs = [LoaderConfig(8, False, 10), LoaderConfig(4, False, 10), LoaderConfig(2, False, 10), KERAS_DEFAULTS]
    raced = race(fake, configs)
    assert raced.verdict.chosen == LoaderConfig(4, False, 10)
    assert raced.left[LoaderConfig(2, False, 10)].kind == LeaveKind.CLEARLY_SLOWER
    assert raced.left[LoaderConfig(8, False, 10)] == Departure(LeaveKind.SETTLED, LoaderConfig(4, False, 10),
                                                               raced.left[LoaderConfig(8, False, 10)].rounds)


def test_tf_data_far_below_after_one_round_leaves_at_once():
    fake = FakeMeasurer(rate_of=lambda c: 30.0 if c.is_tf_data else 100.0 * c.workers)
    raced = race(fake, [LoaderConfig(4, False, 10), KERAS_DEFAULTS], tf_data=TF_DATA)
    assert len(raced.samples[TF_DATA]) == 1 and len(raced.samples[KERAS_DEFAULTS]) >= 2
    assert raced.left[TF_DATA] == Departure(LeaveKind.FAR_BELOW, LoaderConfig(4, False, 10), 1)
    assert raced.verdict.tf_data is None


def test_tf_data_ahead_is_raced_until_decided_and_judged_against_the_answer():
    fake = FakeMeasurer(rate_of=lambda c: 600.0 if c.is_tf_data else 100.0 * c.workers)
    raced = race(fake, [LoaderConfig(4, False, 10), KERAS_DEFAULTS], tf_data=TF_DATA)
    assert raced.verdict.chosen == LoaderConfig(4, False, 10)
    assert raced.verdict.tf_data.significant and raced.verdict.tf_data.speedup == pytest.approx(1.5, rel=0.05)


def test_a_setting_that_stops_is_dropped_with_its_reason_and_the_race_goes_on():
    fake = FakeMeasurer(fail_when=lambda c: c.use_multiprocessing)
    raced = race(fake, [LoaderConfig(4, True, 10), LoaderConfig(4, False, 10), KERAS_DEFAULTS])
    assert raced.failures == {LoaderConfig(4, True, 10): "fake hang: timed out"}
    assert raced.verdict.chosen == LoaderConfig(4, False, 10)


def test_a_lone_setting_is_still_timed_as_the_race_times_it():
    fake = FakeMeasurer()
    raced = race(fake, [KERAS_DEFAULTS])
    assert len(raced.samples[KERAS_DEFAULTS]) == decision.FIRST_VERDICT_ROUND
    assert raced.verdict.chosen == KERAS_DEFAULTS and raced.verdict.claim is None
    assert fake.epochs_per_fit == [3, 3] and fake.batches_per_fit == [50, 50]  # the plan's fits
    assert [index for _, index in fake.calls] == [RACE_WINDOW_OFFSET, RACE_WINDOW_OFFSET + 1]


def test_an_undecided_race_stops_at_its_deadline_and_says_what_was_left_open():
    fake = FakeMeasurer(rate_of=lambda c: 100.0 if c.workers == 2 else 101.0, noise=0.2)
    raced = race(fake, [LoaderConfig(2, False, 10), LoaderConfig(4, False, 10), KERAS_DEFAULTS],
                 deadline=time.monotonic())
    assert raced.stop.end == RaceEnd.TIME_BUDGET and len(raced.samples[KERAS_DEFAULTS]) == decision.FIRST_VERDICT_ROUND
    assert raced.stop.questions  # what was left open
    capped = race(FakeMeasurer(rate_of=lambda c: 100.0, noise=0.3), [LoaderConfig(2, False, 10), KERAS_DEFAULTS],
                  max_rounds=3)
    assert capped.stop == RaceStop(RaceEnd.ROUNDS, rounds=3)


def test_rounds_run_while_other_processes_take_the_cpu_are_dropped_and_run_again():
    fake = FakeMeasurer(busy_when=lambda config, index: 1.0 if index == RACE_WINDOW_OFFSET + 1 else 0.0)
    raced = race(fake, [LoaderConfig(16, False, 32), KERAS_DEFAULTS])
    assert raced.load.dropped_rounds == 1 and raced.load.loaded_rounds == 0
    assert raced.load.peak_foreign_cores == 1.0


def test_a_loaded_round_past_the_deadline_is_kept_not_run_again():
    fake = FakeMeasurer(busy_when=lambda config, index: 1.0 if index == RACE_WINDOW_OFFSET + 1 else 0.0)
    raced = race(fake, [LoaderConfig(16, False, 32), KERAS_DEFAULTS], deadline=time.monotonic())
    assert raced.load.dropped_rounds == 0 and raced.load.loaded_rounds == 1
    assert len(raced.samples[KERAS_DEFAULTS]) == decision.FIRST_VERDICT_ROUND


def test_a_race_loaded_throughout_keeps_its_rounds_and_counts_them():
    fake = FakeMeasurer(busy_when=lambda config, index: 1.0)
    raced = race(fake, [LoaderConfig(16, False, 32), KERAS_DEFAULTS])
    assert raced.load.dropped_rounds == STEADY_LOAD_ROUNDS and raced.load.loaded_rounds >= 2
    assert raced.verdict.chosen == LoaderConfig(16, False, 32)


def test_a_stall_of_the_defaults_is_timed_again_at_once_and_a_second_one_is_not():
    """The defaults are every claim's baseline: one failure of theirs (a stall seen once) is rerun in the
    same round, so the claim keeps its baseline; a setting other than the defaults is not rerun."""
    stalls = {"left": 1}

    def stalls_once(config):
        if config == KERAS_DEFAULTS and stalls["left"]:
            stalls["left"] -= 1
            return True
        return config == LoaderConfig(8, False, 16)

    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.001, noise=0.02, fail_when=stalls_once)
    raced = race(fake, [LoaderConfig(4, False, 10), LoaderConfig(8, False, 16), KERAS_DEFAULTS])
    assert raced.rerun == {KERAS_DEFAULTS: "fake hang: timed out"} and KERAS_DEFAULTS not in raced.failures
    assert raced.samples[KERAS_DEFAULTS] and raced.verdict.claim is not None
    assert raced.failures == {LoaderConfig(8, False, 16): "fake hang: timed out"}
    always = race(FakeMeasurer(fail_when=lambda c: c == KERAS_DEFAULTS), [LoaderConfig(4, False, 10), KERAS_DEFAULTS])
    assert KERAS_DEFAULTS in always.failures and KERAS_DEFAULTS in always.rerun  # rerun once, then given up
