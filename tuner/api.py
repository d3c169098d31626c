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
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from probes import probe_machine
from probes.dataset import pickle_failure
from probes.profiles import DataKind, DatasetProfile, MachineProfile, ModelProfile, Spread
from probes.serde import to_dict
from probes.stats import bootstrap_ratio_interval, summarize
from tuner.analysis import advice, wording
from tuner.core import KERAS_DEFAULTS, Backend, EngineName, Label, LoaderConfig, TrialStatus
from tuner.engines import backend as backends
from tuner.engines import registry
from tuner.errors import TuneLoaderError
from tuner.measure.predict import Prediction, best_predictions, ceiling, ceiling_with_measured, predict
from tuner.outcomes import Interleaved
from tuner.options import Options
from tuner.results import Ceiling, EngineComparison, Provenance, Recommendation, TrialResult
from tuner.search import decision
from tuner.search.candidates import candidates
from tuner.search.race import RacePlan, run_race
from tuner.search.schedule import Schedule
from tuner.search.space import SearchSpace, rule_of_thumb
from tuner.search.study import (ScreenOutcome, StudySettings, default_study_name, other_machines, record_answer,
                                screen)
from tuner.trial.parent import TrialMeasurer
from tuner.trial.protocol import FileSource, PickledSource
from tuner.version import VERSION

# Screen windows: about half a second at the setting's predicted rate, at least 8 batches, at most an epoch.
SCREEN_WINDOW_SECONDS = 0.5
MIN_SCREEN_BATCHES = 8
# Race fits: windows of about 0.7 s (at least 16 batches, at most an epoch). A window shorter than the epoch
# runs in fits of two epochs, the second timed. A window that is the whole epoch runs in fits of enough
# epochs to span RACE_FIT_SECONDS (3 to 8 epochs, every one but the first timed). Inline under tf.data
# (TensorFlow) times whole epochs when one lasts at most INLINE_FIT_SECONDS, in fits of that long: some of
# its epochs wait for tf.data's autotuner until a tick that depends on the epoch's length, and some do not,
# so its mean needs whole epochs and more of them than a pool's (docs/keras-behaviours.md).
RACE_WINDOW_SECONDS = 0.7
MIN_RACE_BATCHES = 16
RACE_FIT_SECONDS = 0.8
INLINE_FIT_SECONDS = 3.0
FULL_EPOCH_FITS = (3, 8)
MODELLED_FIXED_SECONDS = 1.0
FIT_OVERHEAD_SECONDS = 0.3  # what a fit call costs beyond its epochs (the iterator, Keras's first batches)
TF_DATA = LoaderConfig.tf_data()
MIN_WINDOW_TIMEOUT_SECONDS = 30.0


class Progress(Protocol):
    """What ``recommend()`` tells a caller while it works (the CLI draws it)."""

    def stage(self, text: str) -> None: ...

    def searching(self, trials: int, time_budget: float, label: Label) -> None:
        """The screen starts: ``trials`` settings, named by ``label``, in ``time_budget`` seconds."""

    def trial(self, result: TrialResult, measured: int, best: TrialResult | None) -> None: ...

    def race_round(self, number: int, leader: str, racing: int) -> None: ...


class _Silent:
    def stage(self, text: str) -> None:
        pass

    def searching(self, trials: int, time_budget: float, label: Label) -> None:
        pass

    def trial(self, result: TrialResult, measured: int, best: TrialResult | None) -> None:
        pass

    def race_round(self, number: int, leader: str, racing: int) -> None:
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
    backend: Backend = Backend.TENSORFLOW  # what fit ran on in the trial process
    notes: tuple[str, ...] = ()  # facts of the run the answer must carry (a backend other than the one asked for)

    @property
    def epoch_batches(self) -> int:
        """The user's epoch, or a window's length for data without one."""
        return self.dataset.batches_per_epoch or self.window_batches(KERAS_DEFAULTS)

    def window_batches(self, config: LoaderConfig, rate: float | None = None, seconds: float = SCREEN_WINDOW_SECONDS,
                       least: int = MIN_SCREEN_BATCHES) -> int:
        """Batches for about ``seconds`` at ``rate`` (default: ``config``'s predicted rate), at least
        ``least``, at most an epoch."""
        rate = rate or 1.0 / predict(config, self.machine, self.dataset, self.model, epoch_batches=1).batch_period_seconds
        batches = max(least, math.ceil(seconds * rate))
        return min(batches, self.dataset.batches_per_epoch) if self.dataset.batches_per_epoch else batches

    def race_plan(self, config: LoaderConfig, screened: TrialResult | None = None) -> RacePlan:
        """How the race times ``config``, from its screen window (else the model's prediction): windows of
        about 0.7 s; a window that is the whole epoch in fits of several epochs, more for inline under
        tf.data, whose window is the whole epoch when that lasts at most ``INLINE_FIT_SECONDS``: its wait
        for the autotuner ends at a tick that depends on the epoch's length (docs/keras-behaviours.md),
        so a shorter epoch waits for another share of it. A setting whose epoch costs over
        ``MODELLED_FIXED_SECONDS`` beyond its batches (tf-keras's 5 s stall) is timed in lone windows
        with that cost added from the probe, as the screen does: two epochs of it would cost more than
        the whole race; unless the engine reads that cost from its fits itself (``fits_time_fixed_cost``:
        Grain's spawned workers)."""
        rate = screened.steady_batches_per_second if screened and screened.steady_batches_per_second else None
        rate = rate or self.predicted(config)
        batches = self.window_batches(config, rate, RACE_WINDOW_SECONDS, MIN_RACE_BATCHES)
        if (screened and screened.fixed_seconds and screened.fixed_seconds > MODELLED_FIXED_SECONDS
                and not config.persistent_workers and not self.space.knobs.fits_time_fixed_cost):
            return RacePlan(batches, 1)
        waits = (not config.parallel and not config.is_tf_data
                 and registry.inline_uses_tf_data(self.engine, self.backend))
        whole = self.dataset.batches_per_epoch
        if waits and whole and whole <= INLINE_FIT_SECONDS * rate:
            batches = whole
        if batches != whole:
            return RacePlan(batches, 2)
        seconds, (least, most) = INLINE_FIT_SECONDS if waits else RACE_FIT_SECONDS, FULL_EPOCH_FITS
        return RacePlan(batches, min(most, max(least, math.ceil(seconds * rate / batches) + 1)))

    def race_fit_seconds(self, screened: TrialResult) -> float:
        """What one race fit of a screened setting takes: the screen's estimate of the race's cost."""
        plan = self.race_plan(screened.config, screened)
        knobs = self.space.knobs
        lengths = knobs.race_lengths(plan.batches) if plan.epochs > 1 else (plan.batches,)
        overhead = FIT_OVERHEAD_SECONDS + knobs.fit_starts_a_pool * screened.fixed_seconds
        rate, fixed = screened.steady_batches_per_second, (plan.epochs > 1) * screened.fixed_seconds
        return sum(plan.epochs * (fixed + batches / rate) + overhead for batches in lengths)

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
    """What the screen and the race measured."""

    screen: ScreenOutcome
    race: Interleaved


def recommend(dataset: Any, model: Any = None, options: Options | None = None, *, progress: Progress | None = None,
              **overrides: Any) -> Recommendation:
    """Measures real Keras epochs and recommends ``workers``, ``use_multiprocessing``, ``max_queue_size``
    (and the BLAS/OpenMP threads per worker, where they matter).

    ``dataset`` is a ``keras.utils.PyDataset``, a tf-keras ``Sequence`` or a
    generator function (with ``model``, a compiled model, or None for a
    small default one), or the path of a Python file that defines them.
    ``options`` (``tuner.Options``; or its fields as keywords) says how to
    tune. Settings run in a separate process, so a hung one can be stopped;
    objects are handed over with cloudpickle.
    """
    options = Options.of(options, overrides)
    options.check()
    progress = progress or _Silent()
    asked = backends.configured(options.backend)
    started, machine = time.monotonic(), probe_machine()
    machine = dataclasses.replace(machine, start_method=options.start_method or machine.start_method)
    budget = options.max_memory if options.max_memory is not None else machine.memory_usable_bytes // 2
    source = _source_for(dataset, model, options)
    measurer = TrialMeasurer(source, memory_budget_bytes=budget, load_timeout=options.load_timeout,
                             backend=asked.name, trial_timeout=options.window_timeout,
                             start_method=machine.start_method)
    try:
        facts = _probe(measurer, machine, budget, started, provenance_of(source), options, progress, asked)
        if options.quick:
            return assemble(facts, None)
        configure_measurer(measurer, facts, options.window_timeout)
        settings = _study_settings(facts, options, Schedule.after_probes(options.time_budget,
                                                                         time.monotonic() - started))
        screened = _screen(measurer, facts, settings, options.trials, progress)
        race = _race(measurer, facts, screened, progress, settings.schedule)
    finally:
        measurer.close()
    answer = assemble(facts, Evidence(screened, race), allow_duplicated_data=options.allow_duplicated_data)
    record_answer(settings, study_attributes(answer), answer.config, facts.space)
    answer = dataclasses.replace(answer, other_machines=other_machines(settings))
    if options.compare_keras3 and registry.entry(answer.engine).migrates_to:
        answer = _with_keras3_comparison(answer, dataset, model, options, progress)
    return answer


def study_attributes(answer: Recommendation) -> dict[str, str]:
    """What the stored study says about its outcome (``study.record_answer``)."""
    c = answer.confirmation
    claim = f"{c.speedup:.2f}x the defaults, {c.interval_text()}" if c and answer.config != KERAS_DEFAULTS else (
        "the defaults kept")
    return {"recommendation": answer.settings_text(), "speedup": claim, "machine": answer.machine.fingerprint,
            "provenance": json.dumps(to_dict(answer.provenance)) if answer.provenance else "",
            "packages": json.dumps(answer.machine.package_versions),
            "race": json.dumps(answer.race_epochs or {}), "race_stopped_because": answer.race_stopped_because or ""}


def provenance_of(source: FileSource | PickledSource) -> Provenance:
    """This run's version, start time, command line and source (a file with its sha256, or an object)."""
    if isinstance(source, FileSource):
        where, digest = source.path, hashlib.sha256(Path(source.path).read_bytes()).hexdigest()
    else:
        where, digest = f"{source.label} (an object handed to recommend())", None
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Provenance(VERSION, started, shlex.join(sys.argv), where, digest)


def _probe(measurer: TrialMeasurer, machine: MachineProfile, budget: int, started: float, provenance: Provenance,
           options: Options, progress: Progress, asked: backends.BackendChoice) -> Facts:
    progress.stage(f"Starting Keras ({backends.label(asked.name)} backend) and loading your dataset")
    measurer.start()
    progress.stage("Probing the data code, the model step and Keras's pipeline")
    dataset, model = measurer.probe(machine.usable_cores)
    loaded = measurer.loaded
    knobs = registry.knob_set(loaded.engine, loaded.backend)
    # An engine whose pools start their own way (Grain's spawn) is judged by that way, whatever --start-method says
    machine = dataclasses.replace(machine, start_method=knobs.start_method or machine.start_method)
    space = SearchSpace.for_profiles(machine, dataset, allow_duplicated_data=options.allow_duplicated_data,
                                     backend=loaded.backend, search_native_threads=options.native_threads,
                                     knobs=knobs, model=model)
    return Facts(machine, dataset, model, loaded.dataset_name, loaded.class_name, loaded.engine, space, budget, started,
                 provenance, loaded.backend, tuple(filter(None, [backend_mismatch(asked, loaded.backend, loaded.engine)])))


def backend_mismatch(asked: backends.BackendChoice, ran: str, engine: EngineName) -> str | None:
    """A note when training ran on another backend than the one asked for: an engine that trains on one
    backend only (tf-keras), or a user's file that sets ``KERAS_BACKEND`` itself before importing Keras."""
    if ran == asked.name:
        return None
    entry = registry.entry(engine)
    if entry.only_backend:
        return (f"{entry.keras} trains only on {backends.label(entry.only_backend)}, so the {asked.name} backend "
                f"({asked.source}) does not apply to it; timed on {backends.label(entry.only_backend)}. Pass --engine "
                f"{entry.migrates_to} to time this data under {registry.entry(entry.migrates_to).keras} on "
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


def _study_settings(facts: Facts, options: Options, schedule: Schedule) -> StudySettings:
    source = Path(facts.provenance.source).stem if facts.provenance.source_sha256 else "object"
    name = options.study_name or default_study_name(source, facts.dataset_name, facts.class_name, facts.machine)
    storage = options.storage(name) if callable(options.storage) else options.storage
    return StudySettings(epoch_batches=facts.epoch_batches, schedule=schedule,
                         storage=storage, study_name=name, race_fit_seconds=facts.race_fit_seconds)


def _screen(measurer: TrialMeasurer, facts: Facts, settings: StudySettings, trials: int,
            progress: Progress) -> ScreenOutcome:
    """One cheap window of each candidate of the broad grid (``candidates``), the model's favourites first."""
    todo = candidates(facts.space, rule_of_thumb(facts.machine, facts.dataset, facts.space.knobs), facts.predicted,
                      trials)
    progress.stage(f"Screening {len(todo)} settings, one short epoch each ({settings.schedule.search_seconds:.0f} s of the "
                   "time budget left for the screen and the race)")
    progress.searching(len(todo), settings.schedule.search_seconds, facts.space.knobs.label)
    measured: list[TrialResult] = []

    def on_trial(result: TrialResult, count: int) -> None:
        measured.append(result)
        fastest = max((t for t in measured if t.epoch_batches_per_second), default=None,
                      key=lambda t: t.epoch_batches_per_second.median)
        progress.trial(result, count, fastest)

    outcome = screen(measurer, facts.space, todo, settings, on_trial, predict=facts.predicted)
    if not any(t.status == TrialStatus.OK for t in outcome.trials):
        raise TuneLoaderError("Every setting screened failed, the Keras defaults among them, so there is nothing "
                              "to recommend. " + "; ".join(f"{facts.space.knobs.label(t.config)}: {t.reason}"
                                                           for t in outcome.trials[:3]))
    return outcome


def _race(measurer: TrialMeasurer, facts: Facts, screened: ScreenOutcome, progress: Progress,
          schedule: Schedule) -> Interleaved:
    """Races the screen's finalists, the defaults and tf.data, interleaved, until ``decision`` has nothing
    left open or the schedule's deadline. As many finalists race as three rounds allow in the time left, and tf.data
    (which needs batch i on demand, so not for a generator) only where it could lead and three rounds with
    it still fit (``decision``): it gets the time the Keras settings leave."""
    timed = {t.config: t for t in screened.trials if t.steady_batches_per_second}
    feasible = facts.space.knobs.races_tf_data and facts.dataset.kind != DataKind.GENERATOR
    tf_data = TF_DATA if feasible and decision.races_tf_data(screened.trials) else None
    defaults, left = timed.get(KERAS_DEFAULTS), schedule.left()
    finals = decision.finalists(screened.trials, keep=[KERAS_DEFAULTS], fit_seconds=facts.race_fit_seconds,
                                seconds=left)
    round_seconds = sum(facts.race_fit_seconds(timed[config]) for config in finals if config in timed)
    tf_data_seconds = facts.race_fit_seconds(defaults) if tf_data and defaults else 0.0  # as long as inline's
    short = None
    if tf_data and not decision.tf_data_fits(round_seconds, tf_data_seconds, left):
        short, tf_data = (decision.RESERVE_ROUNDS * (round_seconds + tf_data_seconds), left), None
    others = " and a tf.data pipeline" * bool(tf_data)
    label = facts.space.knobs.label
    progress.stage(f"Racing {len(finals)} settings ({'; '.join(map(label, finals))}){others}, interleaved, "
                   "until no setting left can beat the leader by more than 3% and the claim is decided")
    race = run_race(measurer, finals, lambda config: facts.race_plan(config, timed.get(config)),
                    epoch_batches=facts.epoch_batches, tf_data=tf_data, deadline=schedule.deadline,
                    on_round=lambda rounds, leader, racing: progress.race_round(rounds, label(leader), racing))
    sat_out = feasible and not tf_data and not short
    return dataclasses.replace(race, tf_data_reach=decision.tf_data_reach(screened.trials) if sat_out else None,
                               tf_data_short=short)


def assemble(facts: Facts, evidence: Evidence | None, *, allow_duplicated_data: bool = False) -> Recommendation:
    """The one place a ``Recommendation`` is built: from the race's evidence, or (``--quick``, no evidence)
    from the analytic model alone."""
    trials = evidence.screen.trials if evidence else ()
    limit = ceiling_with_measured(facts.ceiling(), trials)
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
        knobs=facts.space.knobs.recorded(fields["config"], facts.machine.start_method),
        **(fields | {"warnings": facts.notes + tuple(fields["warnings"])}),
    )


def _measured(facts: Facts, evidence: Evidence, limit: Ceiling) -> dict[str, Any]:
    """The fields that come from the screen and the race."""
    trials, race = evidence.screen.trials, evidence.race
    verdict = race.verdict
    chosen, best = verdict.chosen, verdict.best or verdict.chosen
    chosen_trial = _trial_for(trials, chosen)
    chosen_rate = _raced_rate(race, chosen, chosen_trial)
    label = facts.space.knobs.label
    warnings = advice.warn(
        chosen=chosen, chosen_trial=chosen_trial, trials=trials, dataset=facts.dataset, label=label,
        memory_budget_bytes=facts.memory_budget_bytes, not_tried=facts.space.not_tried, model=facts.model, engine=facts.engine,
        backend=facts.backend, chosen_epoch_seconds=facts.epoch_batches / chosen_rate.median if chosen_rate else None,
        race_failures=race.failures, race_reruns=race.rerun, confirmation=verdict.claim, race_load=race.load,
        race_timed_whole_epochs=_race_timed_whole_epochs(facts, chosen, chosen_trial),
    )
    reasons = advice.explain(
        chosen=chosen, best=best, confirmation=verdict.claim, ceiling=limit, tf_data=verdict.tf_data,
        dataset=facts.dataset, model=facts.model, epoch_batches=facts.epoch_batches, label=label, engine=facts.engine,
        rewrite=_predicted_rewrite(facts), race=race,
        threads_measured=advice.thread_gain(trials, race.samples),
        every_pool_failed=_every_pool_failed(trials), how=verdict.decision,
        elapsed_seconds=time.monotonic() - facts.started,
    )
    start_cost = advice.start_method_cost(facts.dataset, facts.machine.usable_cores, chosen,
                                          chosen_rate.median if chosen_rate else None, trials, facts.epoch_batches,
                                          facts.space.knobs.pool_start, label)
    reasons += (start_cost,) if start_cost else ()
    default_trial = _trial_for(trials, KERAS_DEFAULTS)
    return dict(
        config=chosen, best_tried=best, best_tried_batches_per_second=_raced_rate(race, best, _trial_for(trials, best)),
        default_batches_per_second=_raced_rate(race, KERAS_DEFAULTS, default_trial), confirmation=verdict.claim,
        peak_memory_bytes=race.peak_memory_bytes.get(chosen) or (chosen_trial and chosen_trial.peak_memory_bytes),
        default_peak_memory_bytes=race.peak_memory_bytes.get(KERAS_DEFAULTS) or (
            default_trial and default_trial.peak_memory_bytes),
        reasons=reasons, warnings=warnings, trials=trials, tf_data=verdict.tf_data,
        search_stopped_because=wording.screen_stop(evidence.screen.stop),
        race_stopped_because=wording.race_stop(race.stop, label),
        race_settled=race.stop.settled, race_load=race.load,
        race_epochs={label(config): epochs for config, epochs in race.samples.items()},
        race_left={label(config): wording.departure(why, label) for config, why in race.left.items()}
        | {label(config): why for config, why in race.failures.items()},
        decision=verdict.decision,
    )


def _predicted(facts: Facts, limit: Ceiling) -> dict[str, Any]:
    """The ``--quick`` fields: the analytic model's best guess, nothing timed."""
    config = facts.guesses()[0].config
    rate, default_rate = facts.predicted(config), facts.predicted(KERAS_DEFAULTS)
    reasons = (
        advice.data_nature(facts.dataset),
        f"Training is {limit.verdict}.",
        f"Predicted from the probes alone (no setting was timed): {facts.space.knobs.label(config)} at {rate:.1f} batches/s, "
        f"{rate / default_rate:.2f}x the defaults' predicted {default_rate:.1f}. Run without --quick to measure "
        "and confirm.",
    )
    warnings = ("This is a prediction from the analytic model, not a measurement.",)
    warnings += tuple(filter(None, [advice.allocator_churn(facts.model)]))
    return dict(config=config, best_tried=config, best_tried_batches_per_second=None, default_batches_per_second=None,
                confirmation=None, peak_memory_bytes=None, default_peak_memory_bytes=None, reasons=reasons,
                warnings=warnings, trials=(), tf_data=None)


def _with_keras3_comparison(answer: Recommendation, dataset, model, options: Options,
                            progress: Progress) -> Recommendation:
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
    other = recommend(dataset, model, dataclasses.replace(options, engine=registry.entry(answer.engine).migrates_to,
                                                          compare_keras3=False),
                      progress=progress)
    ratio = low = high = None
    legacy_samples, keras3_samples = _confirmed_samples(answer), _confirmed_samples(other)
    if legacy_samples and keras3_samples:
        ratio, low, high = bootstrap_ratio_interval(keras3_samples, legacy_samples)
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
    return (answer.race_epochs or {}).get(registry.knob_set(answer.engine, answer.backend).label(answer.config), ())


def _source_for(dataset, model, options: Options) -> FileSource | PickledSource:
    dataset_name, model_name, engine = options.dataset_name, options.model_name, options.engine
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


def _every_pool_failed(trials: tuple[TrialResult, ...]) -> bool:
    """True when worker pools were run and none completed (data code that breaks or hangs only in a pool)."""
    pools = [t.status for t in trials if t.config.parallel]
    return TrialStatus.FAILED in pools and TrialStatus.OK not in pools


def _race_timed_whole_epochs(facts: Facts, config: LoaderConfig, screened: TrialResult | None) -> bool:
    """Whether the race timed ``config`` in fits of several whole epochs of the user's length."""
    plan = facts.race_plan(config, screened)
    return plan.epochs > 1 and plan.batches == facts.dataset.batches_per_epoch


def _raced_rate(race: Interleaved, config: LoaderConfig, trial: TrialResult | None) -> Spread | None:
    """``config``'s epochs in the race, else its screen window: the race's numbers are the ones the speed-up
    is computed from."""
    if samples := race.samples.get(config):
        return summarize(samples)
    return trial.epoch_batches_per_second if trial else None
