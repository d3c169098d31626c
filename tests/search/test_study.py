"""Study logic with the formula-driven FakeMeasurer: milliseconds, no Keras."""

import optuna
import pytest

from tests import builders
from tests.fakes import FakeMeasurer
from tuner.results import KERAS_DEFAULTS, LoaderConfig, TrialStatus
from tuner.search.space import SearchSpace, starting_configs
from tuner.search.study import (ABANDONED, CONFIRMED_ATTR, FALLBACK_ORIGIN, OBJECTIVE_NAME, StudySettings, best_trial,
                                next_climb, record_answer, run_study)

SPACE = SearchSpace(max_workers=8, allow_processes=True)
STARTS = starting_configs(builders.machine(), builders.dataset(), SPACE)


def settings(**overrides):
    return StudySettings(**{"epoch_batches": 200, "max_trials": 20, "time_budget_seconds": 60, **overrides})


def test_defaults_and_rule_of_thumb_are_measured_first():
    outcome = run_study(FakeMeasurer(), SPACE, STARTS, settings(max_trials=4))
    assert [t.config for t in outcome.trials[:2]] == [KERAS_DEFAULTS, LoaderConfig(2, False, 10)]
    assert [t.origin for t in outcome.trials[:2]] == ["keras defaults", "rule of thumb"]


def test_study_finds_a_config_near_the_formula_optimum():
    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.002)
    outcome = run_study(fake, SPACE, STARTS, settings(max_trials=20, patience=20))
    best = best_trial(outcome.trials)
    optimum = fake.rate(LoaderConfig(8, False, 64))
    assert best.epoch_batches_per_second.median >= 0.7 * optimum
    assert best.epoch_batches_per_second.median > 4 * fake.rate(KERAS_DEFAULTS)


def test_the_search_stops_when_patience_runs_out():
    # The model step caps every config with 10+ batches in flight at the same rate: nothing beats the first such.
    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.01)
    starts = STARTS + [("prediction", LoaderConfig(4, False, 10))]
    outcome = run_study(fake, SPACE, starts, settings(max_trials=20, patience=3))
    assert len(outcome.trials) == len(starts) + 3
    assert outcome.stopped_because.startswith("3 trials in a row after the starting ones did not beat the best")


def test_the_simplest_config_within_five_percent_of_the_fastest_wins():
    trials = (
        builders.trial(0, LoaderConfig(16, False, 32), 300.0),
        builders.trial(1, LoaderConfig(9, False, 16), 290.0),
        builders.trial(2, LoaderConfig(9, True, 16), 295.0),
        builders.trial(3, LoaderConfig(4, False, 10), 200.0),
    )
    assert best_trial(trials).config == LoaderConfig(9, False, 16)
    assert best_trial(trials, tolerance=0.0).config == LoaderConfig(16, False, 32)


def test_failed_trials_are_recorded_and_the_study_goes_on():
    fake = FakeMeasurer(fail_when=lambda config: config.use_multiprocessing)
    outcome = run_study(fake, SPACE, [("processes", LoaderConfig(4, True, 8))] + STARTS, settings(max_trials=8, patience=8))
    failed = [t for t in outcome.trials if t.status == "failed"]
    assert failed and all(t.config.use_multiprocessing for t in failed)
    assert failed[0].reason == "fake hang: timed out"
    assert len(outcome.trials) == 8
    assert best_trial(outcome.trials).status == "ok"


def test_clearly_losing_trials_are_pruned_and_the_saving_counted():
    outcome = run_study(FakeMeasurer(), SPACE, STARTS, settings(max_trials=20, patience=20))
    pruned = [t for t in outcome.trials if t.status == "pruned"]
    assert pruned
    assert all(len(t.windows) < 3 for t in pruned)
    assert outcome.pruning_saved_seconds > 0


def test_equivalent_configs_are_not_measured_twice():
    fake = FakeMeasurer()
    outcome = run_study(fake, SPACE, STARTS, settings(max_trials=20, patience=20))
    keys = [t.config.equivalence_key() for t in outcome.trials]
    assert len(keys) == len(set(keys))


def test_interrupted_study_resumes_from_its_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = run_study(FakeMeasurer(), SPACE, STARTS, settings(max_trials=3, storage=storage, patience=10))
    fake = FakeMeasurer()
    second = run_study(fake, SPACE, STARTS, settings(max_trials=6, storage=storage, patience=10))
    assert second.resumed_trials == 3
    assert second.trials[:3] == first.trials
    assert len(second.trials) == 6
    assert KERAS_DEFAULTS not in {config for config, _ in fake.calls}
    assert len(optuna.load_study(study_name="tune-loader", storage=storage).trials) >= 6


@pytest.mark.parametrize("picklable", [True, False])
def test_processes_are_searched_only_for_picklable_datasets(picklable):
    space = SearchSpace.for_profiles(builders.machine(2), builders.dataset(picklable=picklable))
    outcome = run_study(FakeMeasurer(), space, [], settings(max_trials=15, patience=15))
    used = {t.config.use_multiprocessing for t in outcome.trials}
    assert (True in used) == picklable
    assert all(1 <= t.config.workers <= space.max_workers and 1 <= t.config.max_queue_size <= 64 for t in outcome.trials)


def test_the_search_stops_at_the_ceiling():
    fake = FakeMeasurer()
    starts = [("defaults", KERAS_DEFAULTS), ("guess", LoaderConfig(8, False, 16))]  # 387 batches/s a 200-batch epoch
    outcome = run_study(fake, SPACE, starts, settings(max_trials=20, patience=20, ceiling_batches_per_second=400.0))
    assert len(outcome.trials) == 2
    assert outcome.stopped_because.startswith("the best trial reached 95% of the free-data ceiling, 400.0 batches/s")
    # Even when the first start already reaches it, every start is measured.
    reversed_starts = run_study(FakeMeasurer(), SPACE, starts[::-1],
                                settings(max_trials=20, patience=20, ceiling_batches_per_second=400.0))
    assert len(reversed_starts.trials) == 2
    uncapped = run_study(FakeMeasurer(), SPACE, starts, settings(max_trials=20, patience=20))
    assert len(uncapped.trials) > 2
    # A ceiling the probes put below what a trial then measured is not called unbeatable at its own value.
    low = run_study(FakeMeasurer(), SPACE, starts, settings(max_trials=20, patience=20, ceiling_batches_per_second=380.0))
    assert low.stopped_because.startswith("the best trial, 387.6 batches/s, measured above the free-data ceiling as "
                                          "the probes put it (380.0 batches/s)")


def test_a_trial_stops_after_two_windows_that_agree_and_takes_a_third_when_they_do_not():
    steady = run_study(FakeMeasurer(), SPACE, STARTS[:1], settings(max_trials=1))
    assert len(steady.trials[0].windows) == 2

    class Jumpy(FakeMeasurer):
        def rate(self, config):
            return super().rate(config) * (1.0, 1.2, 1.0)[len(self.calls) % 3]

    noisy = run_study(Jumpy(), SPACE, STARTS[:1], settings(max_trials=1))
    assert len(noisy.trials[0].windows) == 3


def test_the_outcome_says_which_limit_ended_the_search():
    by_trials = run_study(FakeMeasurer(), SPACE, STARTS, settings(max_trials=3, patience=20))
    assert len(by_trials.trials) == 3
    assert by_trials.stopped_because == "it measured the 3 trials allowed (--trials)"
    by_time = run_study(FakeMeasurer(), SPACE, STARTS, settings(time_budget_seconds=0.0))
    assert by_time.trials == ()
    assert by_time.stopped_because == "it used its time budget of 0 s (--time-budget)"
    # One worker, threads only: the queue changes nothing without a pool, so every proposal repeats.
    tiny = SearchSpace(max_workers=1, allow_processes=False)
    exhausted = run_study(FakeMeasurer(), tiny, [("defaults", KERAS_DEFAULTS)], settings(max_trials=20, patience=20))
    assert len(exhausted.trials) == 1
    assert exhausted.stopped_because.endswith("the space is exhausted")


def test_a_pool_that_beat_every_smaller_one_climbs_to_twice_its_batches_in_flight():
    measured = [builders.trial(0, LoaderConfig(4, False, 10), 140.0), builders.trial(1, LoaderConfig(8, False, 10), 190.0)]
    wide = SearchSpace(max_workers=32, allow_processes=True)
    assert next_climb(measured, wide) == LoaderConfig(16, False, 15)
    # Gaining under 5%, or not the biggest pool of its kind measured, or already at the space's edge: no climb.
    assert next_climb([measured[0], builders.trial(1, LoaderConfig(8, False, 10), 145.0)], wide) is None
    assert next_climb(measured + [builders.trial(2, LoaderConfig(6, False, 10), 200.0)], wide) is None
    assert next_climb(measured, SearchSpace(max_workers=8, allow_processes=True)) is None
    # Processes are not compared with threads.
    assert next_climb([measured[0], builders.trial(1, LoaderConfig(8, True, 10), 190.0)], wide) is None
    # Inline is the smallest pool of every kind: a first pool that beats the defaults climbs.
    first_pool = [builders.trial(0, KERAS_DEFAULTS, 30.0), builders.trial(1, LoaderConfig(5, False, 10), 140.0)]
    assert next_climb(first_pool, wide) == LoaderConfig(10, False, 10)
    assert next_climb([first_pool[0], builders.trial(1, LoaderConfig(5, False, 10), 31.0)], wide) is None


def test_no_climb_runs_while_a_start_waits_with_at_least_as_many_batches_in_flight():
    # 2 threads beat inline and would climb to 4, and 16 threads beat 2 and would climb to 32 threads,
    # queue 31; the starts already hold 16 threads and the headroom start, 32 threads with queue 32.
    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.001)
    starts = STARTS + [("prediction", LoaderConfig(16, False, 16)), ("headroom", LoaderConfig(32, False, 32))]
    outcome = run_study(fake, SearchSpace(max_workers=32, allow_processes=False), starts,
                        settings(max_trials=len(starts) + 1, patience=20))
    assert [t.origin for t in outcome.trials[: len(starts)]] == [origin for origin, _ in starts]
    assert "climb" not in [t.origin for t in outcome.trials]


def test_the_study_climbs_past_a_low_guess_while_doubling_pays():
    # Waiting code, 20 ms a batch, a 2 ms model: the knee is at 10 batches in flight; the guess stopped at 4.
    fake = FakeMeasurer(batch_seconds=0.02, model_seconds=0.002)
    starts = STARTS + [("prediction", LoaderConfig(4, False, 10))]
    outcome = run_study(fake, SearchSpace(max_workers=16, allow_processes=False), starts,
                        settings(max_trials=len(starts) + 3, patience=3))
    climbs = [t.config for t in outcome.trials if t.origin == "climb"]
    assert climbs[:2] == [LoaderConfig(8, False, 10), LoaderConfig(16, False, 15)]
    assert best_trial(outcome.trials).config.effective_parallelism >= 10


def test_a_trial_left_running_by_a_killed_run_is_recorded_failed_on_resume(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_study(FakeMeasurer(), SPACE, STARTS, settings(max_trials=2, storage=storage, patience=10))
    killed = optuna.load_study(study_name="tune-loader", storage=storage)
    running = SPACE.suggest(killed.ask())  # asked and given its setting, then the run died
    resumed = run_study(FakeMeasurer(), SPACE, STARTS, settings(max_trials=4, storage=storage, patience=10))
    abandoned = [t for t in resumed.trials if t.reason == ABANDONED]
    assert [(t.config, t.status) for t in abandoned] == [(running, TrialStatus.FAILED)]
    states = {t.state for t in optuna.load_study(study_name="tune-loader", storage=storage).trials}
    assert optuna.trial.TrialState.RUNNING not in states


def test_when_every_setting_tried_fails_the_defaults_are_timed_as_the_floor():
    # Code that breaks only inside a pool; the starts held no inline setting.
    fake = FakeMeasurer(fail_when=lambda config: config.parallel)
    starts = [("prediction", LoaderConfig(4, False, 10)), ("prediction", LoaderConfig(2, True, 10))]
    outcome = run_study(fake, SPACE, starts, settings(max_trials=3, patience=2))
    fallback = [t for t in outcome.trials if t.origin == FALLBACK_ORIGIN]
    assert [t.config for t in fallback] == [KERAS_DEFAULTS]
    assert best_trial(outcome.trials).config == KERAS_DEFAULTS
    assert sum(t.status == TrialStatus.FAILED for t in outcome.trials) >= 2


def test_the_stored_study_names_its_objective_and_marks_the_confirmed_answer(tmp_path):
    stored = settings(max_trials=3, storage=f"sqlite:///{tmp_path / 'study.db'}", patience=10)
    outcome = run_study(FakeMeasurer(), SPACE, STARTS, stored)
    answer = outcome.trials[1]  # the race may confirm a setting other than Optuna's best trial
    record_answer(stored, {"recommendation": answer.config.as_kwargs()}, answer.config)
    study = optuna.load_study(study_name="tune-loader", storage=stored.storage)
    assert study.metric_names == [OBJECTIVE_NAME]
    assert study.user_attrs == {"recommendation": answer.config.as_kwargs(),
                                CONFIRMED_ATTR: f"{answer.config.label()}: trial {answer.number}"}
