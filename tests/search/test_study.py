"""The screen kept in an Optuna study, with the formula-driven FakeMeasurer: milliseconds, no Keras."""

import json

import optuna

from probes.serde import to_dict
from tests.fakes import FakeMeasurer
from tuner.core import KERAS_DEFAULTS, LoaderConfig, TrialStatus
from tuner.outcomes import ScreenStop
from tuner.search.candidates import candidates
from tuner.search.space import SearchSpace
from tuner.search.schedule import Schedule
from tuner.search.study import (ABANDONED, ANSWER_ATTR, CONFIRMED_ATTR, OBJECTIVE_NAME, StudySettings, record_answer, screen)

SPACE = SearchSpace(max_workers=8, allow_processes=True)
TODO = candidates(SPACE, LoaderConfig(2, False, 10), lambda c: float(c.effective_parallelism), limit=24)


def settings(**overrides):
    return StudySettings(**{"epoch_batches": 200, **overrides})


def test_every_candidate_is_timed_once_in_order_and_recorded_as_a_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    fake = FakeMeasurer()
    outcome = screen(fake, SPACE, TODO, settings(storage=storage), predict=lambda c: 1.0)
    assert [t.config for t in outcome.trials] == [config for _, config in TODO]
    assert [config for config, _ in fake.calls] == [config for _, config in TODO]
    assert all(epochs == 1 for epochs in fake.epochs_per_fit)  # one cheap window each
    assert outcome.stop == ScreenStop(len(TODO))
    study = optuna.load_study(study_name="tune-loader", storage=storage)
    assert [t.value for t in study.trials] == [t.epoch_batches_per_second.median for t in outcome.trials]
    assert study.metric_names == [OBJECTIVE_NAME] and outcome.trials[0].predicted_batches_per_second == 1.0


def test_a_setting_that_fails_is_recorded_with_its_reason_and_the_screen_goes_on():
    outcome = screen(FakeMeasurer(fail_when=lambda c: c.use_multiprocessing), SPACE, TODO, settings())
    failed = [t for t in outcome.trials if t.status == TrialStatus.FAILED]
    assert failed and all(t.config.use_multiprocessing and t.reason == "fake hang: timed out" for t in failed)
    assert len(outcome.trials) == len(TODO)


def test_the_screen_stops_in_time_for_the_race_and_says_why():
    # Windows of 2 s, a race fit of 1 s per finalist: 3 rounds of 5 fits leave no room after a few windows.
    fake = FakeMeasurer(window_seconds=2.0)
    schedule = Schedule.after_probes(20.0, 0.0, clock=fake.now)
    outcome = screen(fake, SPACE, TODO, settings(schedule=schedule, race_fit_seconds=lambda trial: 1.0))
    assert 2 <= len(outcome.trials) < len(TODO)
    assert outcome.stop == ScreenStop(len(TODO), out_of_time=len(TODO) - len(outcome.trials))


def test_an_interrupted_screen_resumes_from_its_storage_without_timing_a_setting_twice(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = screen(FakeMeasurer(), SPACE, TODO[:3], settings(storage=storage))
    fake = FakeMeasurer()
    second = screen(fake, SPACE, TODO, settings(storage=storage))
    assert second.resumed_trials == 3 and second.trials[:3] == first.trials
    assert [config for config, _ in fake.calls] == [config for _, config in TODO[3:]]
    assert KERAS_DEFAULTS not in {config for config, _ in fake.calls}


def test_a_trial_left_running_by_a_killed_run_is_recorded_failed_on_resume(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    screen(FakeMeasurer(), SPACE, TODO[:2], settings(storage=storage))
    killed = optuna.load_study(study_name="tune-loader", storage=storage)
    running = SPACE.suggest(killed.ask())  # asked and given its setting, then the run died
    resumed = screen(FakeMeasurer(), SPACE, TODO[:4], settings(storage=storage))
    abandoned = [t for t in resumed.trials if t.reason == ABANDONED]
    assert [(t.config, t.status) for t in abandoned] == [(running, TrialStatus.FAILED)]
    states = {t.state for t in optuna.load_study(study_name="tune-loader", storage=storage).trials}
    assert optuna.trial.TrialState.RUNNING not in states


def test_threads_the_data_cannot_run_are_recorded_infeasible_without_running():
    unsafe = SearchSpace(max_workers=8, allow_processes=False, threads_infeasible="not thread-safe: add a lock")
    todo = candidates(unsafe, LoaderConfig(2, False, 10), lambda c: 1.0, limit=24)
    fake = FakeMeasurer()
    outcome = screen(fake, unsafe, todo, settings())
    assert [(t.config, t.status) for t in outcome.trials] == [(KERAS_DEFAULTS, TrialStatus.OK),
                                                             (LoaderConfig(2, False, 10), TrialStatus.INFEASIBLE)]
    assert {config for config, _ in fake.calls} == {KERAS_DEFAULTS}


def test_the_stored_study_marks_the_answer_the_race_confirmed(tmp_path):
    stored = settings(storage=f"sqlite:///{tmp_path / 'study.db'}")
    outcome = screen(FakeMeasurer(), SPACE, TODO[:3], stored)
    answer = outcome.trials[1]
    record_answer(stored, {"recommendation": answer.config.as_kwargs()}, answer.config, SPACE)
    study = optuna.load_study(study_name="tune-loader", storage=stored.storage)
    assert study.user_attrs == {"recommendation": answer.config.as_kwargs(),
                                CONFIRMED_ATTR: f"{answer.config.label()}: trial {answer.number}",
                                ANSWER_ATTR: json.dumps(to_dict(answer.config))}  # what tuner.fit starts from


def test_persistent_workers_are_screened_over_two_epochs_so_their_once_per_fit_start_is_left_out():
    from tuner.engines.knobs import DATALOADER_KNOBS

    space = SearchSpace(max_workers=4, allow_processes=True, knobs=DATALOADER_KNOBS)
    todo = candidates(space, LoaderConfig(2, True, 4), lambda c: float(c.effective_parallelism), limit=24)
    fake = FakeMeasurer()
    screen(fake, space, todo, settings(), predict=lambda c: 1.0)
    assert {c.persistent_workers for c, _ in fake.calls} == {False, True}
    assert all(epochs == (2 if config.persistent_workers else 1)
               for (config, _), epochs in zip(fake.calls, fake.epochs_per_fit))


def test_more_workers_of_a_kind_already_far_below_are_not_screened():
    """Processes that oversubscribe the cores (whitened_windows at default BLAS threads): 2 ran at a fifth of
    the threads, so 4 and 8 could not reach the race even at linear scaling, and are not timed."""
    def rate(config):
        return 20.0 if config.use_multiprocessing else 100.0

    todo = [("keras defaults", KERAS_DEFAULTS), ("grid", LoaderConfig(2, False, 10)),
            ("grid", LoaderConfig(2, True, 10)), ("grid", LoaderConfig(4, True, 10)),
            ("grid", LoaderConfig(8, True, 10)), ("grid", LoaderConfig(4, False, 10))]
    fake = FakeMeasurer(rate_of=rate)
    outcome = screen(fake, SPACE, todo, settings())
    assert [config for config, _ in fake.calls] == [KERAS_DEFAULTS, LoaderConfig(2, False, 10),
                                                    LoaderConfig(2, True, 10), LoaderConfig(4, False, 10)]
    assert outcome.stop == ScreenStop(6, beyond_reach=2)
    # 2 processes at 45: 4 could reach 90 and are screened, at 35; 8 could reach only 70 from them.
    fake = FakeMeasurer(rate_of=lambda c: {2: 45.0, 4: 35.0}.get(c.workers, 1.0) if c.use_multiprocessing else 100.0)
    screen(fake, SPACE, todo, settings())
    assert LoaderConfig(4, True, 10) in [c for c, _ in fake.calls] and LoaderConfig(8, True, 10) not in [
        c for c, _ in fake.calls]
