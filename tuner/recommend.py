"""``recommend()``: probes, study and confirmation, from a dataset to an answer."""

from __future__ import annotations

import dataclasses
import math
import pickle
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from probes import probe_machine
from probes.dataset import pickle_failure
from probes.profiles import DatasetProfile, ModelProfile, Spread
from probes.stats import bootstrap_ratio_interval, summarize
from tuner import advice
from tuner.errors import TuneLoaderError
from tuner.results import KERAS_DEFAULTS, Ceiling, EngineComparison, LoaderConfig, Recommendation, TrialResult
from tuner.runner import FileSource, PickledSource
from tuner.space import SearchSpace, starting_configs
from tuner.predict import Prediction, attainable, best_predictions, ceiling, ceiling_with_measured, predict
from tuner.study import (FREE_DATA_CEILING, StudySettings, best_trial, confirmed_best, interleave, race_rivals,
                         run_study)
from tuner.workload import MIN_WINDOW_BATCHES, RunnerMeasurer

TARGET_WINDOW_SECONDS = 1.0
CONFIRMATION_MIN_ROUNDS = 3
CONFIRMATION_MAX_ROUNDS = 6
TF_DATA = LoaderConfig.tf_data()
MIN_WINDOW_TIMEOUT_SECONDS = 30.0
WARM_START_MARGIN = 0.10
ATTAINABLE = ("the most any allowed setting can reach (each pool at the fastest free-data rate plus its "
              "epoch-end stall; inline with the data code's own time)")


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
    quick: bool = False,
    seed: int = 0,
    storage: str | None = None,
    progress: Progress | None = None,
    engine: str | None = None,
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
    available RAM) makes configurations above it infeasible. ``quick`` skips
    the search and answers from the probes and the analytic model alone
    (``measured`` is then False). ``storage`` is an Optuna storage URL for
    resumable studies; by default nothing is written.

    ``engine`` ("keras3" or "tf-keras") overrides what the dataset implies: a
    PyDataset runs under Keras 3, a tf-keras Sequence or a plain generator
    under tf-keras (``fit_generator``). Processes are never tried for a plain
    generator, since each would run its own copy and duplicate the data,
    unless ``allow_duplicated_data``. ``compare_keras3`` also tunes a tf-keras
    Sequence as a Keras 3 PyDataset and reports what migrating would gain.
    """
    progress = progress or _Silent()
    started = time.monotonic()
    machine = probe_machine()
    budget = max_memory if max_memory is not None else machine.memory_usable_bytes // 2
    source = _source_for(dataset, model, dataset_name, model_name, engine)
    measurer = RunnerMeasurer(source, memory_budget_bytes=budget)
    try:
        progress.stage("Starting TensorFlow and loading your dataset")
        measurer.start()
        progress.stage("Probing the data code, the model step and Keras's pipeline")
        dataset_profile, model_profile = measurer.probe(machine.usable_cores)
        window_size = window_sizer(machine, dataset_profile, model_profile)
        window = window_size(KERAS_DEFAULTS)
        epoch = dataset_profile.batches_per_epoch or window
        space = SearchSpace.for_profiles(machine, dataset_profile, allow_duplicated_data=allow_duplicated_data)
        guesses = best_predictions(
            machine, dataset_profile, model_profile, epoch, space.max_workers, space.allow_processes,
            allow_threads=not space.threads_infeasible, count=None,
        )

        def predicted(config) -> float:
            return predict(config, machine, dataset_profile, model_profile, epoch).epoch_batches_per_second

        facts = dict(machine=machine, dataset=dataset_profile, model=model_profile, epoch_batches=epoch,
                     window_batches=window, predicted=predicted, memory_budget_bytes=budget, started=started,
                     dataset_name=measurer.loaded["dataset_name"], engine=measurer.loaded["engine"])
        if quick:
            return _predicted_answer(guesses[0].config, **facts)
        measurer.window_size, measurer.epoch_batches = window_size, dataset_profile.batches_per_epoch
        measurer.fixed_cost = fixed_coster(machine, dataset_profile, model_profile)
        measurer.window_timeout = (lambda batches: window_timeout) if window_timeout else window_timer(dataset_profile, model_profile)
        limit = ceiling(machine, dataset_profile, model_profile, epoch)
        stop_at, stop_meaning = search_ceiling(limit, dataset_profile, model_profile, epoch, space)
        settings = StudySettings(
            epoch_batches=epoch,
            ceiling_batches_per_second=stop_at,
            ceiling_meaning=stop_meaning,
            max_trials=trials,
            time_budget_seconds=time_budget,
            seed=seed,
            storage=storage,
            study_name=f"tune-loader:{measurer.loaded['dataset_name']}:{measurer.loaded['class_name']}",
        )
        progress.stage(f"Searching: up to {trials} trials or {time_budget:.0f} s")
        progress.searching(trials, time_budget)
        measured_so_far: list[TrialResult] = []

        def on_trial(result: TrialResult, count: int) -> None:
            measured_so_far.append(result)
            progress.trial(result, count, best_trial(tuple(measured_so_far)))

        starts = starting_configs(machine, dataset_profile, warm_start(guesses), predicted)
        outcome = run_study(measurer, space, starts, settings, on_trial, predict=predicted)
        best = best_trial(outcome.trials)
        if best is None:
            raise TuneLoaderError(
                "Every trial failed, so there is nothing to recommend. "
                + "; ".join(f"{t.config.label()}: {t.reason}" for t in outcome.trials[:3])
            )
        with_tf_data = dataset_profile.kind != "generator"  # tf.data's parallel map needs batch i on demand
        candidates = [best.config] + race_rivals(outcome.trials, best, settings)
        contenders = candidates + ([KERAS_DEFAULTS] if KERAS_DEFAULTS not in candidates else [])
        contenders += [TF_DATA] if with_tf_data else []
        others = [f"its {len(candidates) - 1} closest rival(s)"] if len(candidates) > 1 else []
        others += ["the defaults"] if KERAS_DEFAULTS not in candidates else []
        others += ["a tf.data pipeline"] if with_tf_data else []
        progress.stage(f"Confirming {best.config.label()} against {', '.join(others)}, interleaved" if others
                       else f"Re-timing {best.config.label()}: nothing to race it against")
        final = interleave(measurer, contenders, epoch_batches=epoch, min_rounds=CONFIRMATION_MIN_ROUNDS,
                           max_rounds=CONFIRMATION_MAX_ROUNDS, seed=seed, brief=candidates[1:],
                           challengers=[TF_DATA])
        chosen_in_race = confirmed_best(final, candidates, waiting=dataset_profile.waits, seed=seed)
        best = _trial_for(outcome.trials, chosen_in_race) or best
    finally:
        measurer.close()
    limit = ceiling_with_measured(limit, outcome.trials)
    chosen, confirmation, tf_data = final.verdict(best.config, seed)
    chosen_trial = best if chosen == best.config else _trial_for(outcome.trials, KERAS_DEFAULTS)
    default_trial = _trial_for(outcome.trials, KERAS_DEFAULTS)
    raced = final.shared_rounds([best.config, KERAS_DEFAULTS])  # the epochs the speed-up is computed from
    chosen_rate = _raced_rate(raced, chosen, chosen_trial)
    warnings = advice.warn(
        chosen=chosen,
        chosen_trial=chosen_trial,
        trials=outcome.trials,
        dataset=dataset_profile,
        memory_budget_bytes=budget,
        epoch_batches=epoch,
        space=space,
        model=model_profile,
        engine=measurer.loaded["engine"],
        chosen_epoch_seconds=epoch / chosen_rate.median if chosen_rate else None,
        race_failures=final.failures,
    )
    answer = Recommendation(
        config=chosen,
        dataset_name=measurer.loaded["dataset_name"],
        engine=measurer.loaded["engine"],
        machine=machine,
        dataset=dataset_profile,
        model=model_profile,
        epoch_batches=epoch,
        window_batches=window,
        best_tried=best.config,
        best_tried_batches_per_second=_raced_rate(raced, best.config, best),
        default_batches_per_second=_raced_rate(raced, KERAS_DEFAULTS, default_trial),
        confirmation=confirmation,
        peak_memory_bytes=final.peak_memory_bytes.get(chosen) or (chosen_trial and chosen_trial.peak_memory_bytes),
        default_peak_memory_bytes=final.peak_memory_bytes.get(KERAS_DEFAULTS) or _default_peak(outcome.trials),
        reasons=advice.explain(
            chosen=chosen,
            best=best,
            confirmation=confirmation,
            ceiling=limit,
            tf_data=tf_data,
            dataset=dataset_profile,
            model=model_profile,
            epoch_batches=epoch,
            engine=measurer.loaded["engine"],
            rewrite=_predicted_rewrite(machine, dataset_profile, model_profile, epoch, space.max_workers),
            race=final.shared_rounds(candidates),
        ),
        warnings=warnings,
        trials=outcome.trials,
        ceiling=limit,
        tf_data=tf_data,
        predicted_batches_per_second=predicted(chosen),
        predicted_default_batches_per_second=predicted(KERAS_DEFAULTS),
        measured=True,
        memory_budget_bytes=budget,
        tuning_seconds=time.monotonic() - started,
        pruning_saved_seconds=outcome.pruning_saved_seconds,
        search_stopped_because=outcome.stopped_because,
        duplicated_data_allowed=allow_duplicated_data and space.allow_processes,
    )
    if compare_keras3 and answer.legacy:
        answer = _with_keras3_comparison(answer, dataset, model, dataset_name, model_name, trials=trials,
                                         time_budget=time_budget, max_memory=max_memory, seed=seed, progress=progress)
    return answer


def _with_keras3_comparison(answer: Recommendation, dataset, model, dataset_name, model_name, *, progress,
                            **settings) -> Recommendation:
    """Tunes the same Sequence as a Keras 3 PyDataset and records what migrating gains.

    The two runs are separate, not interleaved, so the ratio's interval
    (bootstrap over each run's confirmation epochs) includes run-to-run noise.
    """
    if answer.dataset.kind == "generator":
        # Keep what was measured: say why there is no comparison instead of failing after the tuning.
        return dataclasses.replace(answer, warnings=answer.warnings + (
            "--compare-keras3 was skipped: a plain generator has no Keras 3 equivalent to time without a "
            "rewrite (batch i from __getitem__); the reasons give the analytic model's prediction for one.",
        ))
    progress.stage("Tuning the same Sequence as a Keras 3 PyDataset, for the migration comparison")
    other = recommend(dataset, model, dataset_name=dataset_name, model_name=model_name, engine="keras3",
                      progress=progress, **settings)
    ratio = low = high = None
    legacy_samples, keras3_samples = _confirmed_samples(answer), _confirmed_samples(other)
    if legacy_samples and keras3_samples:
        ratio, low, high = bootstrap_ratio_interval(keras3_samples, legacy_samples, seed=settings["seed"])
    comparison = EngineComparison(
        engine=other.engine,
        config=other.config,
        batches_per_second=other.recommended_batches_per_second,
        model_description=other.model.description,
        ratio=ratio,
        ratio_low=low,
        ratio_high=high,
        tuning_seconds=other.tuning_seconds,
    )
    return dataclasses.replace(answer, keras3=comparison, reasons=answer.reasons + (advice.migration(comparison),))


def _predicted_rewrite(machine, dataset: DatasetProfile, model: ModelProfile, epoch: int, max_workers: int):
    """For a plain generator: the analytic model's best setting and gain over the defaults had it been a
    PyDataset (batch i on demand: threads and processes without sharing or duplicating a generator)."""
    if dataset.kind != "generator":
        return None
    as_dataset = dataclasses.replace(dataset, kind="pydataset", thread_safe=True)
    top = best_predictions(machine, as_dataset, model, epoch, max_workers, allow_processes=True, count=1)[0]
    defaults = predict(KERAS_DEFAULTS, machine, as_dataset, model, epoch).epoch_batches_per_second
    return top.config, top.epoch_batches_per_second / defaults


def _confirmed_samples(answer: Recommendation) -> tuple[float, ...]:
    """Epoch throughputs of the recommended setting from the interleaved confirmation."""
    if answer.confirmation is not None:
        chosen_is_best = answer.config == answer.best_tried
        return answer.confirmation.best_samples if chosen_is_best else answer.confirmation.default_samples
    # The defaults were best: their epochs are the reference side of the tf.data comparison.
    return answer.tf_data.default_samples if answer.tf_data is not None else ()


def _predicted_answer(config, *, machine, dataset, model, epoch_batches, window_batches, predicted,
                      memory_budget_bytes, started, dataset_name, engine) -> Recommendation:
    """The ``--quick`` answer: probes and the analytic model only, no epoch timed per configuration."""
    speedup = predicted(config) / predicted(KERAS_DEFAULTS)
    limit = ceiling(machine, dataset, model, epoch_batches)
    return Recommendation(
        config=config,
        dataset_name=dataset_name,
        engine=engine,
        machine=machine,
        dataset=dataset,
        model=model,
        epoch_batches=epoch_batches,
        window_batches=window_batches,
        best_tried=config,
        best_tried_batches_per_second=None,
        default_batches_per_second=None,
        confirmation=None,
        peak_memory_bytes=None,
        default_peak_memory_bytes=None,
        reasons=(
            advice.data_nature(dataset),
            f"Training is {limit.verdict}.",
            f"Predicted from the probes alone (no configuration was timed): {config.label()} at "
            f"{predicted(config):.1f} batches/s, {speedup:.2f}x the defaults' predicted {predicted(KERAS_DEFAULTS):.1f}. "
            "Run without --quick to measure and confirm.",
        ),
        warnings=("This is a prediction from the analytic model, not a measurement.",)
        + tuple(filter(None, [advice.allocator_churn(model)])),
        trials=(),
        ceiling=limit,
        tf_data=None,
        predicted_batches_per_second=predicted(config),
        predicted_default_batches_per_second=predicted(KERAS_DEFAULTS),
        measured=False,
        memory_budget_bytes=memory_budget_bytes,
        tuning_seconds=time.monotonic() - started,
        pruning_saved_seconds=0.0,
    )


def warm_start(guesses: list[Prediction]) -> tuple[LoaderConfig, ...]:
    """The analytic model's best guess, a headroom guess above it, and the best of the other pool kind
    when it predicts within 10%.

    A second guess of the same kind is mostly a queue variant of the first
    (9 threads, queue 8 or 16) and taught the study little for a trial's
    cost; a close call between threads and processes is where the model is
    unsure and a measurement decides. So is the height of the plateau: the
    best guess is the fewest workers that reach the predicted cap, and on
    io_bound the model capped 8 threads at 259 batches/s where 9 threads
    measured 318, so a run whose study never went past 6 threads chose them.
    The headroom guess (twice the batches in flight, same kind, when the
    model puts it on the plateau) measures above the knee. Twice the
    batches in flight, not the workers: Keras keeps at most
    ``max_queue_size + 1`` in flight, and 18 threads with queue 8 measured
    like 9 threads with queue 8 (315 batches/s) where 20 threads with queue
    16 measured 380.
    """
    first = guesses[0]
    starts = [first.config]
    in_flight = first.config.effective_parallelism
    headroom = [g for g in guesses if g.config.use_multiprocessing == first.config.use_multiprocessing
                and in_flight < g.config.effective_parallelism <= 2 * in_flight
                and g.epoch_batches_per_second >= first.epoch_batches_per_second * (1 - WARM_START_MARGIN)]
    if in_flight > 1 and headroom:
        starts.append(min(headroom, key=lambda g: (-g.config.effective_parallelism, g.config.workers,
                                                   abs(math.log(g.config.max_queue_size / 10)))).config)
    rival = next((g for g in guesses[1:] if g.config.use_multiprocessing != first.config.use_multiprocessing), None)
    if rival is not None and rival.epoch_batches_per_second >= (1 - WARM_START_MARGIN) * first.epoch_batches_per_second:
        starts.append(rival.config)
    return tuple(starts)


def search_ceiling(limit: Ceiling, dataset: DatasetProfile, model: ModelProfile, epoch: int,
                   space: SearchSpace) -> tuple[float, str]:
    """What the search stops near, and its name for the reason it gives: the free-data ceiling, or what
    any setting the space allows can reach (``predict.attainable``) where that is lower."""
    pools = space.allow_processes or not space.threads_infeasible
    reachable = attainable(dataset, model, epoch, pools=pools)
    if reachable >= limit.batches_per_second or math.isclose(reachable, limit.batches_per_second):
        return limit.batches_per_second, FREE_DATA_CEILING
    return reachable, ATTAINABLE


def window_sizer(machine, dataset: DatasetProfile, model: ModelProfile) -> Callable[[LoaderConfig], int]:
    """Batches per timed window for each configuration: about 1 s at its predicted rate.

    Sizing every window from the inline rate gave fast settings windows of a
    quarter second whose later half, the steady-rate estimate, spanned 60 ms:
    one setting read 260 and then 410 batches/s. At least 32 batches, at most
    one epoch.
    """

    def size(config: LoaderConfig) -> int:
        period = predict(config, machine, dataset, model, epoch_batches=1).batch_period_seconds  # any length
        batches = max(MIN_WINDOW_BATCHES, math.ceil(TARGET_WINDOW_SECONDS / period))
        return min(batches, dataset.batches_per_epoch) if dataset.batches_per_epoch else batches

    return size


def fixed_coster(machine, dataset: DatasetProfile, model: ModelProfile) -> Callable[[LoaderConfig], tuple[float, float]]:
    """Per-epoch fixed cost of each configuration inside and after the timed epoch, from the free-data
    pipeline probe (see ``with_fixed_cost``)."""

    def cost(config: LoaderConfig) -> tuple[float, float]:
        prediction = predict(config, machine, dataset, model, epoch_batches=1)
        return prediction.fixed_seconds - prediction.epoch_end_seconds, prediction.epoch_end_seconds

    return cost


def window_timer(dataset: DatasetProfile, model: ModelProfile) -> Callable[[int], float]:
    """Ten times a window's inline duration: generous for slow settings, short for a hang."""
    per_batch = max(dataset.wall_seconds.maximum, model.step_seconds.median)
    return lambda batches: max(MIN_WINDOW_TIMEOUT_SECONDS, 10 * batches * per_batch)


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


def _trial_for(trials: tuple[TrialResult, ...], config) -> TrialResult | None:
    return next((t for t in trials if t.config == config and t.status == "ok"), None)


def _raced_rate(raced: dict[LoaderConfig, tuple[float, ...]], config: LoaderConfig,
                trial: TrialResult | None) -> Spread | None:
    """``config``'s epochs in the confirmation race (``raced``: the rounds that timed both the best
    setting and the defaults), else its trial's windows.

    The race's numbers are the ones the speed-up is computed from: the
    trial's read 313 batches/s for a setting the race timed at 359 beside a
    speed-up of 8.15x, and 313 over the defaults is not 8.15x.
    """
    if samples := raced.get(config):
        return summarize(samples)
    return trial.epoch_batches_per_second if trial else None


def _default_peak(trials: tuple[TrialResult, ...]) -> int | None:
    trial = _trial_for(trials, KERAS_DEFAULTS)
    return trial.peak_memory_bytes if trial else None
