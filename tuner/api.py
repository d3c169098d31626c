"""``recommend()``: from a dataset to an answer, in named stages: probe, search, race, assemble."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import pickle
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from probes import probe_machine
from probes.dataset import pickle_failure
from probes.profiles import DataKind, DatasetProfile, MachineProfile, ModelProfile, Spread
from probes.serde import to_dict
from probes.stats import bootstrap_ratio_interval, summarize
from tuner.analysis import advice
from tuner.analysis.predict import Prediction, best_predictions, ceiling, ceiling_with_measured, predict, search_bound
from tuner.engines import backend as backends
from tuner.errors import TuneLoaderError
from tuner.results import (KERAS_DEFAULTS, Ceiling, EngineComparison, EngineName, LoaderConfig, Provenance,
                           Recommendation, TrialResult, TrialStatus)
from tuner.search.race import FIT_EPOCHS, Interleaved, confirmed_best, interleave, race_rivals
from tuner.search.space import SearchSpace, starting_configs, warm_start
from tuner.search.stop_rules import RaceReserve
from tuner.search.study import (StudyOutcome, StudySettings, best_trial, default_study_name, other_machines,
                                record_answer, run_study)
from tuner.trial.parent import LOAD_TIMEOUT_SECONDS, MIN_WINDOW_BATCHES, TrialMeasurer
from tuner.trial.protocol import FileSource, PickledSource
from tuner.version import VERSION

TARGET_WINDOW_SECONDS = 1.0
# The race picks among the candidates after 3 rounds, then runs until decided: a 95% interval needs 6.
RACE_CHOICE_ROUNDS = 3
RACE_MAX_ROUNDS = 30
TF_DATA = LoaderConfig.tf_data()
MIN_WINDOW_TIMEOUT_SECONDS = 30.0
# The trial process holds TensorFlow, Keras and a small model before any data (docs/failures.md).
MIN_MEMORY_BUDGET_BYTES = 2**30


class Progress(Protocol):
    """What ``recommend()`` tells a caller while it works (the CLI draws it)."""

    def stage(self, text: str) -> None: ...

    def searching(self, trials: int, time_budget: float) -> None: ...

    def trial(self, result: TrialResult, measured: int, best: TrialResult | None) -> None: ...


class _Silent:
    def stage(self, text: str) -> None:
        pass

    def searching(self, trials: int, time_budget: float) -> None:
        pass

    def trial(self, result: TrialResult, measured: int, best: TrialResult | None) -> None:
        pass


@dataclass(frozen=True)
class Facts:
    """What the probes found, and what follows from it before any setting is timed."""

    machine: MachineProfile
    dataset: DatasetProfile
    model: ModelProfile
    dataset_name: str
    class_name: str
    engine: EngineName
    space: SearchSpace
    memory_budget_bytes: int
    started: float
    provenance: Provenance
    backend: str = backends.TENSORFLOW  # what fit ran on in the trial process
    notes: tuple[str, ...] = ()  # facts of the run the answer must carry (a backend other than the one asked for)

    @property
    def epoch_batches(self) -> int:
        """The user's epoch, or a window's length for data without one."""
        return self.dataset.batches_per_epoch or self.window_batches(KERAS_DEFAULTS)

    def window_batches(self, config: LoaderConfig) -> int:
        """Batches per timed window: about a second at ``config``'s predicted rate, at least 32, at most an
        epoch (shorter windows read too few batches for a steady rate)."""
        period = predict(config, self.machine, self.dataset, self.model, epoch_batches=1).batch_period_seconds
        batches = max(MIN_WINDOW_BATCHES, math.ceil(TARGET_WINDOW_SECONDS / period))
        return min(batches, self.dataset.batches_per_epoch) if self.dataset.batches_per_epoch else batches

    def fixed_cost(self, config: LoaderConfig) -> tuple[float, float]:
        """Per-epoch fixed cost of ``config`` inside and after the timed epoch, from the free-data probe
        (``epoch_model.with_fixed_cost``)."""
        prediction = predict(config, self.machine, self.dataset, self.model, epoch_batches=1)
        return prediction.fixed_seconds - prediction.epoch_end_seconds, prediction.epoch_end_seconds

    def predicted(self, config: LoaderConfig) -> float:
        """The analytic model's epoch throughput for ``config``."""
        return predict(config, self.machine, self.dataset, self.model, self.epoch_batches).epoch_batches_per_second

    def guesses(self) -> list[Prediction]:
        return best_predictions(self.machine, self.dataset, self.model, self.epoch_batches, self.space.grid(), None)

    def ceiling(self) -> Ceiling:
        return ceiling(self.machine, self.dataset, self.model, self.epoch_batches)


@dataclass(frozen=True)
class Evidence:
    """What the search and the race measured."""

    study: StudyOutcome
    best: TrialResult
    race: Interleaved
    candidates: list[LoaderConfig]


def recommend(
    dataset: Any,
    model: Any = None,
    *,
    dataset_name: str | None = None,
    model_name: str | None = None,
    trials: int = 24,
    time_budget: float = 120.0,
    max_memory: int | None = None,
    window_timeout: float | None = None,
    load_timeout: float = LOAD_TIMEOUT_SECONDS,
    quick: bool = False,
    seed: int = 0,
    storage: str | Callable[[str], str] | None = None,
    study_name: str | None = None,
    progress: Progress | None = None,
    engine: str | None = None,
    backend: str | None = None,
    native_threads: bool = True,
    allow_duplicated_data: bool = False,
    compare_keras3: bool = False,
) -> Recommendation:
    """Measures real Keras epochs and recommends ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    ``dataset`` is a ``keras.utils.PyDataset`` (with ``model``, a compiled
    Keras model, or None for a small default model) or the path of a Python
    file that defines one (``dataset_name``/``model_name`` choose among
    several). Trials run in a separate process so a hung one can be stopped;
    objects are handed over with cloudpickle. ``trials`` and ``time_budget``
    (seconds) bound the search; ``max_memory`` (bytes, default half the
    available RAM) makes settings above it infeasible. ``window_timeout``
    stops a timed epoch (default ten times its expected length), and
    ``load_timeout`` each step before the first trial: importing the file,
    making the dataset, the warm-up and the probes. ``quick`` answers from
    the probes and the analytic model alone (``measured`` is then False).
    ``storage`` is an Optuna storage URL (any RDB URL: SQLite, PostgreSQL,
    ...) for resumable, shareable studies, or a function of the study's
    name that returns one, called only once the dataset and model loaded
    and were probed (the CLI keeps an earlier study until then).
    ``study_name`` defaults to the file, dataset, class and a hash of the
    machine's fingerprint, so several machines' studies share one database;
    the answer notes the other machines' studies of the same data. One run
    tunes a study at a time: a trial an earlier run left running is
    recorded as failed.

    ``engine`` ("keras3" or "tf-keras") overrides what the dataset implies.
    ``backend`` ("tensorflow", "jax" or "torch") is the Keras 3 backend to
    time under; by default the one Keras would load here (``KERAS_BACKEND``,
    else keras.json). Under JAX processes are not tried (fork is unsafe).
    ``native_threads`` searches the BLAS/OpenMP threads each worker's data
    code may use, where the probe saw such pools at work (False: the three
    Keras knobs only).
    Processes are never tried for a plain generator, since each would run its
    own copy, unless ``allow_duplicated_data``. ``compare_keras3`` also tunes
    a tf-keras Sequence as a Keras 3 PyDataset and reports what migrating
    would gain.
    """
    check_limits(trials=trials, time_budget=time_budget, max_memory=max_memory, window_timeout=window_timeout,
                 load_timeout=load_timeout)
    progress = progress or _Silent()
    asked = backends.configured(backend)
    started, machine = time.monotonic(), probe_machine()
    budget = max_memory if max_memory is not None else machine.memory_usable_bytes // 2
    source = _source_for(dataset, model, dataset_name, model_name, engine)
    provenance = provenance_of(source)
    measurer = TrialMeasurer(source, memory_budget_bytes=budget, load_timeout=load_timeout, backend=asked.name)
    try:
        facts = _probe(measurer, machine, budget, started, provenance, allow_duplicated_data, progress, asked,
                       native_threads)
        if quick:
            return assemble(facts, None)
        configure_measurer(measurer, facts, window_timeout)
        limit = facts.ceiling()
        settings = _study_settings(facts, limit, trials, time_budget, seed, storage, study_name)
        deadline = time.monotonic() + time_budget  # the search and the race share the time budget
        study = _search(measurer, facts, settings, progress)
        evidence = _race(measurer, facts, study, settings, seed, progress, deadline)
    finally:
        measurer.close()
    answer = assemble(facts, evidence, limit=ceiling_with_measured(limit, study.trials),
                      allow_duplicated_data=allow_duplicated_data)
    record_answer(settings, study_attributes(answer), answer.config)
    answer = dataclasses.replace(answer, other_machines=other_machines(settings))
    if compare_keras3 and answer.legacy:
        answer = _with_keras3_comparison(answer, dataset, model, dataset_name, model_name, backend=backend,
                                         native_threads=native_threads, trials=trials,
                                         time_budget=time_budget, max_memory=max_memory, seed=seed, progress=progress,
                                         window_timeout=window_timeout, load_timeout=load_timeout)
    return answer


def study_attributes(answer: Recommendation) -> dict[str, str]:
    """What the stored study says about its outcome (``study.record_answer``)."""
    c = answer.confirmation
    claim = f"{c.speedup:.2f}x the defaults, {c.interval_text()}" if c and answer.config != KERAS_DEFAULTS else (
        "the defaults kept")
    return {"recommendation": answer.config.settings_text(), "speedup": claim, "machine": answer.machine.fingerprint,
            "provenance": json.dumps(to_dict(answer.provenance)) if answer.provenance else "",
            "packages": json.dumps(answer.machine.package_versions)}


def check_limits(*, trials: int, time_budget: float, max_memory: int | None, window_timeout: float | None,
                 load_timeout: float = LOAD_TIMEOUT_SECONDS) -> None:
    """Refuses a limit that cannot mean what it says, before anything starts (each names its CLI flag)."""
    problems = [
        (trials < 1, f"--trials (trials) must be at least 1. Received: {trials}"),
        (time_budget < 1, f"--time-budget (time_budget) must be at least 1 second. Received: {time_budget}"),
        (window_timeout is not None and not window_timeout > 0,
         f"--trial-timeout (window_timeout) must be a positive number of seconds. Received: {window_timeout}"),
        (not load_timeout > 0,
         f"--load-timeout (load_timeout) must be a positive number of seconds. Received: {load_timeout}"),
        (max_memory is not None and max_memory < MIN_MEMORY_BUDGET_BYTES,
         f"--max-memory (max_memory) must be at least {MIN_MEMORY_BUDGET_BYTES / 2**30:g} GiB: the trial process "
         f"needs about that for TensorFlow, Keras and a small model before any data. Received: {max_memory} bytes"),
    ]
    for failed, message in problems:
        if failed:
            raise TuneLoaderError(message)


def provenance_of(source: FileSource | PickledSource) -> Provenance:
    """This run's version, start time, command line and source (a file with its sha256, or an object)."""
    if isinstance(source, FileSource):
        where, digest = source.path, hashlib.sha256(Path(source.path).read_bytes()).hexdigest()
    else:
        where, digest = f"{source.label} (an object handed to recommend())", None
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Provenance(VERSION, started, shlex.join(sys.argv), where, digest)


def _probe(measurer: TrialMeasurer, machine: MachineProfile, budget: int, started: float, provenance: Provenance,
           allow_duplicated_data: bool, progress: Progress, asked: backends.BackendChoice,
           native_threads: bool = True) -> Facts:
    progress.stage(f"Starting Keras ({backends.label(asked.name)} backend) and loading your dataset")
    measurer.start()
    progress.stage("Probing the data code, the model step and Keras's pipeline")
    dataset, model = measurer.probe(machine.usable_cores)
    loaded = measurer.loaded
    space = SearchSpace.for_profiles(machine, dataset, allow_duplicated_data=allow_duplicated_data,
                                     backend=loaded.backend, search_native_threads=native_threads)
    return Facts(machine, dataset, model, loaded.dataset_name, loaded.class_name, loaded.engine, space, budget, started,
                 provenance, loaded.backend, tuple(filter(None, [backend_mismatch(asked, loaded.backend, loaded.engine)])))


def backend_mismatch(asked: backends.BackendChoice, ran: str, engine: EngineName) -> str | None:
    """A note when training ran on another backend than the one asked for: tf-keras knows only TensorFlow,
    and a user's file may set ``KERAS_BACKEND`` itself before importing Keras."""
    if ran == asked.name:
        return None
    if engine == EngineName.TF_KERAS:
        return (f"tf-keras trains only on TensorFlow, so the {asked.name} backend ({asked.source}) does not apply to "
                f"it; timed on TensorFlow. Pass --engine keras3 to time this Sequence as a Keras 3 PyDataset under "
                f"{backends.label(asked.name)}.")
    return (f"Keras loaded the {ran} backend in your file's process, not {asked.name} ({asked.source}): your file "
            f"sets the backend itself. Everything here was timed on {backends.label(ran)}.")


def configure_measurer(measurer: TrialMeasurer, facts: Facts, window_timeout: float | None) -> None:
    """Window sizes, fixed costs and timeouts from the probes. A window times out after ten times its
    inline duration (at least 30 s): generous for slow settings, short for a hang."""
    per_batch = max(facts.dataset.wall_seconds.maximum, facts.model.step_seconds.median)
    measurer.window_size, measurer.epoch_batches = facts.window_batches, facts.dataset.batches_per_epoch
    measurer.fixed_cost = facts.fixed_cost
    measurer.window_timeout = ((lambda batches: window_timeout) if window_timeout else
                               (lambda batches: max(MIN_WINDOW_TIMEOUT_SECONDS, 10 * batches * per_batch)))


def _study_settings(facts: Facts, limit: Ceiling, trials: int, time_budget: float, seed: int,
                    storage: str | Callable[[str], str] | None, study_name: str | None) -> StudySettings:
    stop_at, meaning = search_bound(limit, facts.dataset, facts.model, facts.epoch_batches,
                                    pools=facts.space.allows_pools)
    source = Path(facts.provenance.source).stem if facts.provenance.source_sha256 else "object"
    name = study_name or default_study_name(source, facts.dataset_name, facts.class_name, facts.machine)
    reserve = RaceReserve(time_budget, facts.epoch_batches, facts.predicted(KERAS_DEFAULTS), FIT_EPOCHS,
                          RACE_CHOICE_ROUNDS)
    return StudySettings(epoch_batches=facts.epoch_batches, ceiling_batches_per_second=stop_at,
                         ceiling_meaning=meaning, max_trials=trials, time_budget_seconds=time_budget, seed=seed,
                         storage=storage(name) if callable(storage) else storage, study_name=name,
                         race_reserve=reserve)


def _search(measurer: TrialMeasurer, facts: Facts, settings: StudySettings, progress: Progress) -> StudyOutcome:
    progress.stage(f"Searching: up to {settings.max_trials} trials or {settings.time_budget_seconds:.0f} s")
    progress.searching(settings.max_trials, settings.time_budget_seconds)
    measured: list[TrialResult] = []

    def on_trial(result: TrialResult, count: int) -> None:
        measured.append(result)
        progress.trial(result, count, best_trial(tuple(measured)))

    starts = starting_configs(facts.machine, facts.dataset, facts.space, warm_start(facts.guesses()), facts.predicted)
    outcome = run_study(measurer, facts.space, starts, settings, on_trial, predict=facts.predicted)
    if best_trial(outcome.trials) is None:
        raise TuneLoaderError(
            "Every trial failed, so there is nothing to recommend. "
            + "; ".join(f"{t.config.label()}: {t.reason}" for t in outcome.trials[:3])
        )
    return outcome


def _race(measurer: TrialMeasurer, facts: Facts, study: StudyOutcome, settings: StudySettings, seed: int,
          progress: Progress, deadline: float) -> Evidence:
    """Races the study's choice against its closest rivals, the defaults and tf.data (which needs batch i
    on demand, so not for a generator), interleaved: after the first rounds the race picks the answer among
    the candidates, then times it against the defaults until decided or ``deadline``."""
    best = best_trial(study.trials)
    candidates = [best.config] + race_rivals(study.trials, best, settings.ceiling)
    with_tf_data = facts.dataset.kind != DataKind.GENERATOR
    contenders = candidates + [KERAS_DEFAULTS] * (KERAS_DEFAULTS not in candidates) + [TF_DATA] * with_tf_data
    racing = "; ".join(config.label() for config in candidates)
    others = ["the defaults"] * (KERAS_DEFAULTS not in candidates) + ["a tf.data pipeline"] * with_tf_data
    if len(candidates) > 1:
        progress.stage(f"Racing the study's {len(candidates)} best settings ({racing}) against "
                       f"{' and '.join(others) or 'each other'}, interleaved: the answer is chosen among them after "
                       f"{RACE_CHOICE_ROUNDS} rounds, then raced until decided")
    else:
        progress.stage(f"Racing {racing} against {' and '.join(others)}, interleaved, until decided" if others
                       else f"Re-timing {racing}: nothing to race it against")
    choose = lambda so_far: confirmed_best(so_far, candidates, waiting=facts.dataset.waits, seed=seed)  # noqa: E731
    race = interleave(measurer, contenders, epoch_batches=facts.epoch_batches, choice_rounds=RACE_CHOICE_ROUNDS,
                      max_rounds=RACE_MAX_ROUNDS, deadline=deadline, choose=choose, challengers=[TF_DATA])
    return Evidence(study, _trial_for(study.trials, race.leader) or best, race, candidates)


def assemble(facts: Facts, evidence: Evidence | None, *, limit: Ceiling | None = None,
             allow_duplicated_data: bool = False) -> Recommendation:
    """The one place a ``Recommendation`` is built: from the race's evidence, or (``--quick``, no evidence)
    from the analytic model alone."""
    limit = limit or facts.ceiling()
    fields = _measured(facts, evidence, limit) if evidence else _predicted(facts, limit)
    return Recommendation(
        dataset_name=facts.dataset_name,
        engine=facts.engine,
        machine=facts.machine,
        dataset=facts.dataset,
        model=facts.model,
        epoch_batches=facts.epoch_batches,
        window_batches=facts.window_batches(KERAS_DEFAULTS),
        ceiling=limit,
        predicted_batches_per_second=facts.predicted(fields["config"]),
        predicted_default_batches_per_second=facts.predicted(KERAS_DEFAULTS),
        measured=evidence is not None,
        memory_budget_bytes=facts.memory_budget_bytes,
        tuning_seconds=time.monotonic() - facts.started,
        duplicated_data_allowed=allow_duplicated_data and facts.space.allow_processes,
        provenance=facts.provenance,
        backend=facts.backend,
        **(fields | {"warnings": facts.notes + tuple(fields["warnings"])}),
    )


def _measured(facts: Facts, evidence: Evidence, limit: Ceiling) -> dict[str, Any]:
    """The fields that come from the search and the race."""
    trials, best, race = evidence.study.trials, evidence.best, evidence.race
    chosen, confirmation, tf_data = race.verdict(best.config)
    default_trial = _trial_for(trials, KERAS_DEFAULTS)
    chosen_trial = best if chosen == best.config else default_trial
    claimed = race.shared_rounds([best.config, KERAS_DEFAULTS])  # the epochs the speed-up is computed from
    chosen_rate = _raced_rate(claimed, chosen, chosen_trial)
    default_peak = default_trial.peak_memory_bytes if default_trial else None
    warnings = advice.warn(
        chosen=chosen, chosen_trial=chosen_trial, trials=trials, dataset=facts.dataset,
        memory_budget_bytes=facts.memory_budget_bytes, space=facts.space, model=facts.model, engine=facts.engine,
        backend=facts.backend, chosen_epoch_seconds=facts.epoch_batches / chosen_rate.median if chosen_rate else None,
        race_failures=race.failures, confirmation=confirmation, race_load=race.load,
    )
    reasons = advice.explain(
        chosen=chosen, best=best, confirmation=confirmation, ceiling=limit, tf_data=tf_data, dataset=facts.dataset,
        model=facts.model, epoch_batches=facts.epoch_batches, engine=facts.engine, rewrite=_predicted_rewrite(facts),
        race=race.shared_rounds(evidence.candidates),
        threads_measured=advice.thread_gain(trials, race.shared_rounds(list(race.samples))),
        race_stopped_because=race.stopped_because,
    )
    return dict(
        config=chosen, best_tried=best.config, best_tried_batches_per_second=_raced_rate(claimed, best.config, best),
        default_batches_per_second=_raced_rate(claimed, KERAS_DEFAULTS, default_trial), confirmation=confirmation,
        peak_memory_bytes=race.peak_memory_bytes.get(chosen) or (chosen_trial and chosen_trial.peak_memory_bytes),
        default_peak_memory_bytes=race.peak_memory_bytes.get(KERAS_DEFAULTS) or default_peak,
        reasons=reasons, warnings=warnings, trials=trials, tf_data=tf_data,
        pruning_saved_seconds=evidence.study.pruning_saved_seconds,
        search_stopped_because=evidence.study.stopped_because, race_stopped_because=race.stopped_because,
        race_load=race.load, race_epochs={config.label(): epochs for config, epochs in race.samples.items()},
    )


def _predicted(facts: Facts, limit: Ceiling) -> dict[str, Any]:
    """The ``--quick`` fields: the analytic model's best guess, nothing timed."""
    config = facts.guesses()[0].config
    rate, default_rate = facts.predicted(config), facts.predicted(KERAS_DEFAULTS)
    reasons = (
        advice.data_nature(facts.dataset),
        f"Training is {limit.verdict}.",
        f"Predicted from the probes alone (no setting was timed): {config.label()} at {rate:.1f} batches/s, "
        f"{rate / default_rate:.2f}x the defaults' predicted {default_rate:.1f}. Run without --quick to measure "
        "and confirm.",
    )
    warnings = ("This is a prediction from the analytic model, not a measurement.",)
    warnings += tuple(filter(None, [advice.allocator_churn(facts.model)]))
    return dict(config=config, best_tried=config, best_tried_batches_per_second=None, default_batches_per_second=None,
                confirmation=None, peak_memory_bytes=None, default_peak_memory_bytes=None, reasons=reasons,
                warnings=warnings, trials=(), tf_data=None, pruning_saved_seconds=0.0)


def _with_keras3_comparison(answer: Recommendation, dataset, model, dataset_name, model_name, *, progress,
                            **settings) -> Recommendation:
    """Tunes the same Sequence as a Keras 3 PyDataset and records what migrating gains.

    The two runs are separate, not interleaved, so the ratio's interval
    (bootstrap over each run's race epochs) includes run-to-run noise.
    """
    if answer.dataset.kind == DataKind.GENERATOR:
        # Keep what was measured: say why there is no comparison instead of failing after the tuning.
        return dataclasses.replace(answer, warnings=answer.warnings + (
            "--compare-keras3 was skipped: a plain generator has no Keras 3 equivalent to time without a "
            "rewrite (batch i from __getitem__); the reasons give the analytic model's prediction for one.",
        ))
    progress.stage("Tuning the same Sequence as a Keras 3 PyDataset, for the migration comparison")
    other = recommend(dataset, model, dataset_name=dataset_name, model_name=model_name, engine=EngineName.KERAS3,
                      progress=progress, **settings)
    ratio = low = high = None
    legacy_samples, keras3_samples = _confirmed_samples(answer), _confirmed_samples(other)
    if legacy_samples and keras3_samples:
        ratio, low, high = bootstrap_ratio_interval(keras3_samples, legacy_samples, seed=settings["seed"])
    comparison = EngineComparison(
        engine=other.engine, config=other.config, batches_per_second=other.recommended_batches_per_second,
        model_description=other.model.description, ratio=ratio, ratio_low=low, ratio_high=high,
        tuning_seconds=other.tuning_seconds,
    )
    return dataclasses.replace(answer, keras3=comparison, reasons=answer.reasons + (advice.migration(comparison),))


def _predicted_rewrite(facts: Facts) -> tuple[LoaderConfig, float] | None:
    """For a plain generator: the analytic model's best setting and gain over the defaults had it been a
    PyDataset (batch i on demand: threads and processes without sharing or duplicating a generator)."""
    if facts.dataset.kind != DataKind.GENERATOR:
        return None
    as_dataset = dataclasses.replace(facts.dataset, kind=DataKind.PYDATASET, thread_safe=True)
    grid = SearchSpace(facts.space.max_workers, allow_processes=True).grid()
    top = best_predictions(facts.machine, as_dataset, facts.model, facts.epoch_batches, grid, count=1)[0]
    defaults = predict(KERAS_DEFAULTS, facts.machine, as_dataset, facts.model, facts.epoch_batches)
    return top.config, top.epoch_batches_per_second / defaults.epoch_batches_per_second


def _confirmed_samples(answer: Recommendation) -> tuple[float, ...]:
    """Race epochs of the recommended setting."""
    if answer.confirmation is not None:
        chosen_is_best = answer.config == answer.best_tried
        return answer.confirmation.best_samples if chosen_is_best else answer.confirmation.default_samples
    # The defaults were best: their epochs are the reference side of the tf.data comparison.
    return answer.tf_data.default_samples if answer.tf_data is not None else ()


def _source_for(dataset, model, dataset_name, model_name, engine) -> FileSource | PickledSource:
    if isinstance(dataset, (str, PathLike)):
        path = Path(dataset)
        if not path.is_file():
            raise TuneLoaderError(
                f"No such file: {path}. Expected a Python file that defines a dataset. Received: dataset={str(dataset)!r}"
            )
        if model is not None:
            raise TuneLoaderError(
                "With a file path, name the model inside the file (model_name=...), not as an object. "
                f"Received: model={type(model).__name__}"
            )
        return FileSource(str(path.resolve()), dataset_name, model_name, engine)
    import cloudpickle

    try:
        payload = cloudpickle.dumps((dataset, model))
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise TuneLoaderError(
            "recommend() times trials in a separate process (so a hung trial can be stopped) and hands the "
            f"dataset and model over with cloudpickle, which failed: {error}. Fix: pass the path of a file that "
            f"builds them instead (recommend('my_gen.py')). Received: dataset={type(dataset).__name__}"
        ) from error
    label = dataset_name or getattr(dataset, "__name__", None) or type(dataset).__name__
    return PickledSource(payload, label, pickle_failure(dataset), engine)


def _trial_for(trials: tuple[TrialResult, ...], config: LoaderConfig) -> TrialResult | None:
    return next((t for t in trials if t.config == config and t.status == TrialStatus.OK), None)


def _raced_rate(raced: dict[LoaderConfig, tuple[float, ...]], config: LoaderConfig,
                trial: TrialResult | None) -> Spread | None:
    """``config``'s epochs in the race (``raced``: the rounds that timed both the best setting and the
    defaults), else its trial's windows: the race's numbers are the ones the speed-up is computed from."""
    if samples := raced.get(config):
        return summarize(samples)
    return trial.epoch_batches_per_second if trial else None
