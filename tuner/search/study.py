"""The Optuna study over the three knobs.

Failures are data: a trial that hangs, crashes or goes over the memory
budget is recorded with its reason and the study goes on. Each trial times
several windows and reports after each, so a pruner can stop clearly losing
settings early.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import statistics
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass

import optuna

from probes.profiles import MachineProfile, PoolKind
from probes.serde import from_dict, to_dict
from tuner.analysis.epoch_model import epoch_throughput, epoch_throughputs
from tuner.results import KERAS_DEFAULTS, LoaderConfig, TrialResult, TrialStatus, WindowTiming, completed
from tuner.search.measurer import Measurer, TrialStopped
from tuner.search.space import SearchSpace
from tuner.analysis.predict import FREE_DATA_CEILING
from tuner.search.stop_rules import (CeilingReached, Patience, RaceReserve, SearchState, StopRule, TimeBudget, TrialLimit,
                                     first_reason)

RESULT_ATTR = "tune_loader_result"
ORIGIN_ATTR = "origin"
CONFIRMED_ATTR = "confirmed_answer"
OBJECTIVE_NAME = "epoch batches/s"
MAX_REPEATS_PER_TRIAL = 5
NEAR_BEST = 0.05
ABANDONED = "its run was killed before the trial finished"
FALLBACK_ORIGIN = "keras defaults (every other setting failed)"
# A pool that beat every smaller one of its kind by this much has not reached its knee (``next_climb``).
CLIMB_GAIN = 0.05


@dataclass(frozen=True)
class StudySettings:
    """Bounds of the search and of each trial.

    A trial times up to ``windows_per_trial`` windows, but stops after
    ``min_windows_per_trial`` when they agree within ``window_agreement``.
    The search stops by the rules of ``stop_rules()``: ``max_trials``, the
    time budget, ``patience`` trials in a row without a gain above
    ``min_improvement``, or the best within ``ceiling_share`` of
    ``ceiling_batches_per_second`` (``ceiling_meaning`` names that bound).
    """

    epoch_batches: int
    windows_per_trial: int = 3
    min_windows_per_trial: int = 2
    window_agreement: float = 0.03
    max_trials: int = 24
    time_budget_seconds: float = 120.0
    patience: int = 2
    min_improvement: float = 0.02
    ceiling_batches_per_second: float | None = None
    ceiling_share: float = 0.95
    ceiling_meaning: str = FREE_DATA_CEILING
    seed: int = 0
    storage: str | None = None
    study_name: str = "tune-loader"
    race_reserve: RaceReserve | None = None  # stops the search in time for the race (api._study_settings)

    @property
    def ceiling(self) -> CeilingReached:
        return CeilingReached(self.ceiling_batches_per_second, self.ceiling_share, self.ceiling_meaning)

    def stop_rules(self) -> tuple[StopRule, ...]:
        reserve = (self.race_reserve,) if self.race_reserve else ()
        return (TrialLimit(self.max_trials), TimeBudget(self.time_budget_seconds), *reserve,
                Patience(self.patience, self.min_improvement), self.ceiling)


@dataclass(frozen=True)
class StudyOutcome:
    """The measured trials, and why the search ended (a sentence for the report)."""

    trials: tuple[TrialResult, ...]
    pruning_saved_seconds: float
    resumed_trials: int
    stopped_because: str


def _create_study(settings: StudySettings, starts: int) -> optuna.Study:
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=settings.storage,
        direction="maximize",
        # TPE samples at random for its first 10 trials by default; the
        # enqueued starts already cover that ground, so it models from them.
        sampler=optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=max(1, starts)),
        # A trial must be in the top quarter after each window to go on: the
        # answer is the simplest within 5% of the fastest, so a setting far
        # from the top after one window is unlikely to become it. With two or
        # three trials done the top quarter is close to the best first
        # window, so a setting level with the best can be stopped on one noisy
        # window; the climb and the race make up for that.
        pruner=optuna.pruners.PercentilePruner(25.0, n_startup_trials=starts, n_warmup_steps=0),
        load_if_exists=True,
    )
    with warnings.catch_warnings():  # experimental in Optuna since 3.2, unchanged through 5.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE_NAME])  # optuna-dashboard shows it instead of "Objective 0"
    return study


def default_study_name(source: str, dataset_name: str, class_name: str, machine: MachineProfile) -> str:
    """``tune-loader:FILE:DATASET:CLASS@MACHINE``: the same data on several machines gets one study each in a
    shared database, told apart by a hash of the machine's fingerprint (CPU, cores, RAM)."""
    machine_id = hashlib.sha256(machine.fingerprint.encode()).hexdigest()[:8]
    return f"tune-loader:{source}:{dataset_name}:{class_name}@{machine_id}"


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


def record_answer(settings: StudySettings, attributes: dict[str, str], answer: LoaderConfig) -> None:
    """Writes the outcome into the stored study for optuna-dashboard and later readers: ``attributes``
    (the recommendation, its speed-up, provenance) and ``confirmed_answer``, the numbers of the trials of
    the setting the race confirmed, which need not be Optuna's best trial (a finished trial's own
    attributes cannot change), as study user attributes."""
    if settings.storage is None:
        return
    study = optuna.load_study(study_name=settings.study_name, storage=settings.storage)
    for key, value in attributes.items():
        study.set_user_attr(key, value)
    confirmed = [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                 if SearchSpace.config_of(t.params).equivalence_key() == answer.equivalence_key()]
    study.set_user_attr(CONFIRMED_ATTR, f"{answer.label()}: trial {', '.join(map(str, confirmed))}"
                        if confirmed else f"{answer.label()}: timed only in the final race")


def run_study(
    measurer: Measurer,
    space: SearchSpace,
    starts: list[tuple[str, LoaderConfig]],
    settings: StudySettings,
    on_trial: Callable[[TrialResult, int], None] | None = None,
    predict: Callable[[LoaderConfig], float] | None = None,
) -> StudyOutcome:
    """Measures the starting settings, then lets TPE search until a stop rule ends it.

    ``on_trial(result, measured_so_far)`` is called after every measured
    trial; ``predict(config)``, when given, is stored beside each measurement
    so the analytic model's error stays visible.
    """
    study = _create_study(settings, len(starts))
    _fail_abandoned(study)
    results = _results_in(study)
    resumed = len(results)
    if not study.trials:
        for origin, config in starts:
            study.enqueue_trial(space.params(config), user_attrs={ORIGIN_ATTR: origin})
    known = {r.config.equivalence_key(): r for r in results}
    saved, repeats, began = 0.0, 0, time.monotonic()
    rules = settings.stop_rules()
    fallback_queued = False
    while True:
        if stopped_because := first_reason(rules, SearchState(results, len(starts), time.monotonic() - began)):
            if not results or completed(results) or fallback_queued or KERAS_DEFAULTS.equivalence_key() in known:
                break
            # Every setting timed failed (code that breaks only in a pool, say) and the defaults were not
            # among them: they passed the warm-up, so they are timed, and the answer is at worst what runs now.
            study.enqueue_trial(space.params(KERAS_DEFAULTS), user_attrs={ORIGIN_ATTR: FALLBACK_ORIGIN})
            fallback_queued = True
        trial = study.ask()
        config = space.suggest(trial)
        sampled_infeasible = ORIGIN_ATTR not in trial.user_attrs and bool(space.infeasible(config))
        if config.equivalence_key() in known or sampled_infeasible:
            # TPE re-proposes settings in a small discrete space (and without a
            # pool the queue size changes nothing): tell it the known answer. A
            # sampled setting the data cannot run (threads on a generator that
            # is not thread-safe) is no trial either: recorded, it would spend
            # the patience that should go to settings that can run.
            if sampled_infeasible:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                _tell(study, trial, known[config.equivalence_key()])
            repeats += 1
            if repeats > MAX_REPEATS_PER_TRIAL * settings.max_trials:
                stopped_because = "the sampler kept proposing settings already measured: the space is exhausted"
                break
            continue
        result, trial_saved = _measure_trial(measurer, space, trial, config, settings, predict)
        saved += trial_saved
        trial.set_user_attr(RESULT_ATTR, json.dumps(to_dict(result)))
        _tell(study, trial, result)
        results.append(result)
        known[config.equivalence_key()] = result
        climb = next_climb(results, space)
        if climb and not bigger_pool_planned(climb, [config for _, config in starts] + [r.config for r in results]):
            study.enqueue_trial(space.params(climb), user_attrs={ORIGIN_ATTR: "climb"})
        if on_trial:
            on_trial(result, len(results))
    return StudyOutcome(tuple(results), saved, resumed, stopped_because)


def _measure_trial(measurer, space, trial, config, settings, predict) -> tuple[TrialResult, float]:
    """Times ``config`` (or records why it cannot run), with the analytic model's prediction beside it."""
    origin = trial.user_attrs.get(ORIGIN_ATTR, "sampler")
    if reason := space.infeasible(config):
        return _result(trial.number, config, TrialStatus.INFEASIBLE, origin, [], settings, reason=reason), 0.0
    result, saved = _run_trial(measurer, trial, config, origin, settings)
    if predict:
        result = dataclasses.replace(result, predicted_batches_per_second=predict(config))
    return result, saved


def next_climb(results: list[TrialResult], space: SearchSpace) -> LoaderConfig | None:
    """Twice the batches in flight of the latest trial, when it is the biggest pool of its kind measured
    and beat every smaller one by ``CLIMB_GAIN``: the knee is further up.

    The analytic model's plateau is its weakest estimate, and its starting
    guesses follow it; doubling while it pays follows the measurement
    instead, one trial at a time. Inline (one batch in flight) is the
    smallest pool of every kind, so a first pool that beats the defaults
    climbs too.
    """
    latest = results[-1]
    if latest.status != TrialStatus.OK or not latest.config.parallel or not latest.epoch_batches_per_second:
        return None
    earlier = completed(results[:-1])
    same_kind = [r for r in earlier if r.config.kind == latest.config.kind]
    in_flight = latest.config.effective_parallelism
    smaller = [r for r in same_kind if r.config.effective_parallelism < in_flight]
    smaller += [r for r in earlier if r.config.kind == PoolKind.INLINE]
    if not smaller or any(r.config.effective_parallelism >= in_flight for r in same_kind):
        return None
    if latest.epoch_batches_per_second.median < (1 + CLIMB_GAIN) * max(r.epoch_batches_per_second.median for r in smaller):
        return None
    workers = min(2 * in_flight, space.max_workers)
    climb = LoaderConfig(workers, latest.config.use_multiprocessing,
                         min(max(latest.config.max_queue_size, workers - 1), space.max_queue_size),
                         latest.config.native_threads)
    return climb if climb.effective_parallelism > in_flight else None


def bigger_pool_planned(climb: LoaderConfig, planned: Collection[LoaderConfig]) -> bool:
    """True when a start or a measured trial already runs ``climb``'s kind of pool with at least as many
    batches in flight (32 threads with queue 31 or 32, say): that pool tells whether more pays, and the
    climb would learn nothing from it."""
    return any(config.parallel and config.kind == climb.kind
               and config.effective_parallelism >= climb.effective_parallelism for config in planned)


def _run_trial(measurer, trial, config, origin, settings) -> tuple[TrialResult, float]:
    """Times up to ``windows_per_trial`` windows, reporting to the pruner after each; returns the result
    and the seconds pruning saved."""
    windows, peak, leftovers, walls = [], 0, 0, []
    number = trial.number
    try:
        for index in range(settings.windows_per_trial):
            measurement = measurer.measure(config, index)
            windows.append(measurement.timing)
            peak = max(peak, measurement.peak_memory_bytes)
            leftovers += measurement.leftover_processes
            walls.append(measurement.wall_seconds)
            trial.report(epoch_throughputs(windows, settings.epoch_batches).median, index)
            if len(windows) >= settings.min_windows_per_trial and windows_agree(windows, settings):
                break
            if index < settings.windows_per_trial - 1 and trial.should_prune():
                remaining = settings.windows_per_trial - len(windows)
                reason = (f"stopped after {len(windows)} of {settings.windows_per_trial} windows: "
                          "not in the top quarter of earlier trials")
                return (_result(number, config, TrialStatus.PRUNED, origin, windows, settings, peak, leftovers,
                                walls, reason), remaining * sum(walls) / len(walls))
    except TrialStopped as stop:
        return _result(number, config, stop.status, origin, windows, settings, peak, leftovers, walls, stop.reason), 0.0
    return _result(number, config, TrialStatus.OK, origin, windows, settings, peak, leftovers, walls), 0.0


def windows_agree(windows: list[WindowTiming], settings: StudySettings) -> bool:
    """True when the windows' epoch throughputs lie within ``window_agreement`` of their mean."""
    rates = [epoch_throughput(w, settings.epoch_batches) for w in windows]
    return (max(rates) - min(rates)) <= settings.window_agreement * (sum(rates) / len(rates))


def _result(number, config, status, origin, windows, settings, peak=0, leftovers=0, walls=(), reason="") -> TrialResult:
    return TrialResult(
        number=number,
        config=config,
        status=status,
        origin=origin,
        windows=tuple(windows),
        epoch_batches_per_second=epoch_throughputs(windows, settings.epoch_batches) if windows else None,
        fixed_seconds=statistics.median([w.fixed_seconds for w in windows]) if windows else None,
        steady_batches_per_second=statistics.median([w.steady_batches_per_second for w in windows]) if windows else None,
        peak_memory_bytes=peak or None,
        reason=reason,
        wall_seconds=sum(walls),
        leftover_processes=leftovers,
    )


def _tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
    if result.status == TrialStatus.OK:
        study.tell(trial, result.epoch_batches_per_second.median)
    elif result.status == TrialStatus.PRUNED:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _fail_abandoned(study: optuna.Study) -> None:
    """Records the trials a killed run left running as failed, with that reason.

    One run tunes a study at a time (the CLI locks its folder), so a
    trial still running when a run starts belongs to a run that is gone.
    Left running, Optuna would carry it along forever.
    """
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        params = frozen.params
        if {"workers", "use_multiprocessing", "max_queue_size"} <= set(params):
            result = TrialResult(frozen.number, SearchSpace.config_of(params), TrialStatus.FAILED,
                                 frozen.user_attrs.get(ORIGIN_ATTR, "sampler"), reason=ABANDONED)
            # Optuna has no public setter for another run's trial; its own fail_stale_trials uses the storage.
            study._storage.set_trial_user_attr(frozen._trial_id, RESULT_ATTR, json.dumps(to_dict(result)))
        study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)


def _results_in(study: optuna.Study) -> list[TrialResult]:
    """Trials measured by an earlier, interrupted run of the same study."""
    return [
        from_dict(TrialResult, json.loads(t.user_attrs[RESULT_ATTR]))
        for t in study.get_trials(deepcopy=False)
        if RESULT_ATTR in t.user_attrs
    ]


def best_trial(trials: tuple[TrialResult, ...], tolerance: float = NEAR_BEST) -> TrialResult | None:
    """The simplest completed trial within ``tolerance`` of the fastest one.

    Trials this close are within the machine's run-to-run noise, and the
    fastest among equals changes from run to run; the simplest costs the
    least. The final race then checks the choice against the fastest trials.
    """
    measured = completed(trials)
    if not measured:
        return None
    fastest = max(t.epoch_batches_per_second.median for t in measured)
    near = [t for t in measured if t.epoch_batches_per_second.median >= fastest * (1.0 - tolerance)]
    return min(near, key=lambda t: t.config.simplicity)
