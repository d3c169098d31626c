"""The screen, kept in an Optuna study: every candidate timed once, cheaply, and recorded as a trial.

Failures are data: a setting that hangs, crashes or goes over the memory budget is recorded with its reason
and the screen goes on. The study is the ledger a run can resume from and optuna-dashboard can read: each
screened setting is one trial, its value the epoch throughput the screen measured. The search itself is
the broad candidate set (``candidates.py``) and the race (``race.py``): a best-arm identification, not a
sampler's walk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import optuna

from probes.profiles import MachineProfile
from probes.serde import from_dict, to_dict
from tuner.core import KERAS_DEFAULTS, LoaderConfig, StopKind, TrialOrigin, TrialStatus
from tuner.measure.epoch_model import epoch_throughputs
from tuner.outcomes import ScreenStop
from tuner.results import TrialResult, completed
from tuner.search import decision
from tuner.search.measurer import Measurer, TrialStopped
from tuner.search.schedule import Schedule
from tuner.search.space import SearchSpace

RESULT_ATTR = "tune_loader_result"
ORIGIN_ATTR = "origin"
CONFIRMED_ATTR = "confirmed_answer"
ANSWER_ATTR = "answer_config"  # the answer as a LoaderConfig's JSON, for tuner.fit to start from
OBJECTIVE_NAME = "epoch batches/s"
ABANDONED = "its run was killed before the trial finished"


@dataclass(frozen=True)
class StudySettings:
    """Where the screen is kept and what bounds it: the time it shares with the race (``schedule``), and the
    race's cost, which the screen leaves room for (``race_fit_seconds``: one race fit of a setting, from its
    screen trial)."""

    epoch_batches: int
    schedule: Schedule = Schedule.unbounded()
    storage: str | None = None
    study_name: str = "tune-loader"
    race_fit_seconds: Callable[[TrialResult], float] | None = None


@dataclass(frozen=True)
class ScreenOutcome:
    """The screened settings (an earlier run's first, when resumed) and why the screen ended."""

    trials: tuple[TrialResult, ...]
    resumed_trials: int
    stop: ScreenStop


def _open_study(settings: StudySettings) -> optuna.Study:
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(study_name=settings.study_name, storage=settings.storage, direction="maximize",
                                load_if_exists=True)
    with warnings.catch_warnings():  # experimental in Optuna since 3.2, unchanged through 5.1
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE_NAME])  # optuna-dashboard shows it instead of "Objective 0"
    return study


def default_study_name(source: str, dataset_name: str, class_name: str, machine: MachineProfile) -> str:
    """``tune-loader:FILE:DATASET:CLASS@MACHINE``: the same data on several machines gets one study each in a
    shared database, told apart by a hash of the machine's fingerprint (CPU, cores, RAM)."""
    return f"tune-loader:{source}:{dataset_name}:{class_name}@{machine_key(machine)}"


def machine_key(machine: MachineProfile) -> str:
    """A short hash of the machine's fingerprint (CPU, cores, RAM): what tells its studies apart."""
    return hashlib.sha256(machine.fingerprint.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class StoredAnswer:
    """What an earlier run on this machine answered for the same dataset class: its study, its answer and the
    settings it screened or raced (``TrialResult``s, each with its throughput)."""

    study_name: str
    answer: LoaderConfig
    trials: tuple[TrialResult, ...]


def stored_answer(storages: Sequence[str], class_name: str, machine: MachineProfile) -> StoredAnswer | None:
    """The most recent study in ``storages`` for ``class_name`` on this machine that recorded an answer (a
    CLI run's or an earlier ``tuner.fit``'s), or None."""
    suffix = f":{class_name}@{machine_key(machine)}"
    found = []
    for storage in storages:
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            if summary.study_name.endswith(suffix) and ANSWER_ATTR in summary.user_attrs:
                found.append((summary.datetime_start or 0, storage, summary.study_name,
                              summary.user_attrs[ANSWER_ATTR]))
    if not found:
        return None
    _, storage, name, answer = max(found, key=lambda item: str(item[0]))
    study = optuna.load_study(study_name=name, storage=storage)
    return StoredAnswer(name, from_dict(LoaderConfig, json.loads(answer)), tuple(_results_in(study)))


def record_trials(settings: StudySettings, results: Sequence[TrialResult], space: SearchSpace,
                  attributes: dict[str, str]) -> None:
    """Adds ``results`` (measured elsewhere: ``tuner.fit``'s epochs) to the study as finished trials, and
    ``attributes`` to the study."""
    if settings.storage is None:
        return
    study = _open_study(settings)
    for result in results:
        study.enqueue_trial(space.params(result.config), user_attrs={ORIGIN_ATTR: result.origin})
        trial = study.ask()
        space.suggest(trial)  # the enqueued values, recorded with their distributions
        _record(study, trial, replace(result, number=trial.number))
    for key, value in attributes.items():
        study.set_user_attr(key, value)


def other_machines(settings: StudySettings) -> tuple[str, ...]:
    """What the same data's studies from other machines in this storage recommended, one line each."""
    if settings.storage is None or "@" not in settings.study_name:
        return ()
    prefix = settings.study_name.rpartition("@")[0] + "@"
    return tuple(
        f"On another machine ({study.user_attrs.get('machine', 'unknown')}), study {study.study_name} "
        f"recommended {study.user_attrs.get('recommendation', 'nothing yet')}"
        + (f": {study.user_attrs['speedup']}" if "speedup" in study.user_attrs else "") + "."
        for study in optuna.get_all_study_summaries(settings.storage, include_best_trial=False)
        if study.study_name.startswith(prefix) and study.study_name != settings.study_name
    )


def record_answer(settings: StudySettings, attributes: dict[str, str], answer: LoaderConfig,
                  space: SearchSpace) -> None:
    """Writes the outcome into the stored study for optuna-dashboard and later readers: ``attributes``
    (the recommendation, its speed-up, provenance, the race) and ``confirmed_answer``, the trials that
    screened the setting the race chose, which need not be the study's best trial (the screen's single
    windows rank settings; the race decides)."""
    if settings.storage is None:
        return
    study = optuna.load_study(study_name=settings.study_name, storage=settings.storage)
    for key, value in attributes.items():
        study.set_user_attr(key, value)
    confirmed = [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                 if (config := space.config_of(t.params)) and config.equivalence_key() == answer.equivalence_key()]
    study.set_user_attr(ANSWER_ATTR, json.dumps(to_dict(answer)))
    study.set_user_attr(CONFIRMED_ATTR, f"{answer.label()}: trial {', '.join(map(str, confirmed))}"
                        if confirmed else f"{answer.label()}: timed only in the race")


def screen(measurer: Measurer, space: SearchSpace, candidates: Sequence[tuple[TrialOrigin, LoaderConfig]],
           settings: StudySettings, on_trial: Callable[[TrialResult, int], None] | None = None,
           predict: Callable[[LoaderConfig], float] | None = None) -> ScreenOutcome:
    """Times one window of each candidate in order, recording each as a trial.

    A setting an earlier run of the same study screened is not timed again.
    After the first two, the screen stops when what is left of the time
    (``settings.schedule``) would no longer fit the race's reserve with the
    next window. ``on_trial(result, screened_so_far)`` follows every trial;
    ``predict(config)`` is stored beside each measurement, so the analytic
    model's error stays visible.
    """
    study = _open_study(settings)
    _fail_abandoned(study, space)
    results = _results_in(study)
    resumed = len(results)
    known = {r.config.equivalence_key() for r in results}
    todo = [(origin, config) for origin, config in candidates if config.equivalence_key() not in known]
    beyond_reach = 0
    for index, (origin, config) in enumerate(todo):
        if index >= 2 and _out_of_time(results, settings):
            return ScreenOutcome(tuple(results), resumed, ScreenStop(len(candidates), len(todo) - index, beyond_reach))
        if decision.cannot_reach_race(config, results):
            beyond_reach += 1
            continue
        trial, result = _screen_one(measurer, space, study, origin, config, settings.epoch_batches)
        if predict and result.status == TrialStatus.OK:
            result = replace(result, predicted_batches_per_second=predict(config))
        _record(study, trial, result)
        results.append(result)
        if on_trial:
            on_trial(result, len(results))
    return ScreenOutcome(tuple(results), resumed, ScreenStop(len(candidates), beyond_reach=beyond_reach))


def _out_of_time(results: list[TrialResult], settings: StudySettings) -> bool:
    """True when the next window would eat into the race's share of the time left: the race of the
    finalists so far, as the screen timed them (``Schedule.race_reserve``), plus a window as long as the
    longest so far."""
    fit, timed, left = settings.race_fit_seconds, {t.config: t for t in completed(results)}, settings.schedule.left()
    if fit is None or not timed:
        return left <= 0
    race = [fit(timed[config]) for config in decision.finalists(results, keep=[KERAS_DEFAULTS])]
    window = max(t.wall_seconds for t in results)
    return window + settings.schedule.race_reserve(race) > left


def _screen_one(measurer: Measurer, space: SearchSpace, study: optuna.Study, origin: TrialOrigin, config: LoaderConfig,
                epoch_batches: int) -> tuple[optuna.Trial, TrialResult]:
    """One window of ``config`` as an Optuna trial (or why it cannot run)."""
    study.enqueue_trial(space.params(config), user_attrs={ORIGIN_ATTR: origin})
    trial = study.ask()
    space.suggest(trial)  # the enqueued values, recorded with their distributions for the dashboard
    if reason := space.infeasible(config):
        return trial, TrialResult(trial.number, config, TrialStatus.INFEASIBLE, origin, reason=reason,
                                  stop_kind=StopKind.THREAD_UNSAFE)
    began = time.monotonic()
    try:
        # persistent workers start once per fit: their second epoch is what a long training runs
        measurement = measurer.measure(config, 0, epochs=2 if config.persistent_workers else 1)
    except TrialStopped as stop:
        return trial, TrialResult(trial.number, config, stop.status, origin, reason=stop.reason, stop_kind=stop.kind,
                                  wall_seconds=time.monotonic() - began)
    timing = measurement.timing
    return trial, TrialResult(trial.number, config, TrialStatus.OK, origin, windows=(timing,),
                       epoch_batches_per_second=epoch_throughputs([timing], epoch_batches),
                       fixed_seconds=timing.fixed_seconds, steady_batches_per_second=timing.steady_batches_per_second,
                       peak_memory_bytes=measurement.peak_memory_bytes or None, wall_seconds=measurement.wall_seconds,
                       leftover_processes=measurement.leftover_processes)


def _record(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
    """Stores ``result`` in its trial and ends the trial: complete with its throughput, or failed."""
    trial.set_user_attr(RESULT_ATTR, json.dumps(to_dict(result)))
    if result.status == TrialStatus.OK:
        study.tell(trial, result.epoch_batches_per_second.median)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _fail_abandoned(study: optuna.Study, space: SearchSpace) -> None:
    """Records the trials a killed run left running as failed, with that reason.

    One run tunes a study at a time (the CLI locks its folder), so a
    trial still running when a run starts belongs to a run that is gone.
    Left running, Optuna would carry it along forever.
    """
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if (config := space.config_of(frozen.params)) is not None:
            result = TrialResult(frozen.number, config, TrialStatus.FAILED,
                                 TrialOrigin(frozen.user_attrs.get(ORIGIN_ATTR, TrialOrigin.GRID)), reason=ABANDONED)
            # Optuna has no public setter for another run's trial; its own fail_stale_trials uses the storage.
            study._storage.set_trial_user_attr(frozen._trial_id, RESULT_ATTR, json.dumps(to_dict(result)))
        study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)


def _results_in(study: optuna.Study) -> list[TrialResult]:
    """Trials screened by an earlier, interrupted run of the same study."""
    return [
        from_dict(TrialResult, json.loads(t.user_attrs[RESULT_ATTR]))
        for t in study.get_trials(deepcopy=False)
        if RESULT_ATTR in t.user_attrs
    ]
