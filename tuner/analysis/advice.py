"""Plain-words reasons and warnings, each tied to a measurement."""

from __future__ import annotations

import math
import platform
import statistics

from probes.profiles import DataKind, DatasetProfile, ModelProfile
from probes.stats import outlier_mask
from tuner.analysis import wording
from tuner.core import KERAS_DEFAULTS, Backend, EngineName, Label, LoaderConfig, PoolKind, StopKind, TrialStatus
from tuner.engines import registry
from tuner.engines.knobs import PoolStart
from tuner.measure.predict import start_cost_seconds
from tuner.outcomes import Interleaved, PoolsNotTried
from tuner.results import (Ceiling, ChoiceBasis, Confirmation, Decision, EngineComparison, RaceLoad, TrialResult,
                           completed)
from tuner.search import decision

MEMORY_NEAR_BUDGET = 0.8
# A thread pool measured this far above inline shows the code releases the GIL, whatever the probe read.
PARTIAL_GIL_GAIN = 1.10
OUTLIER_MIN_EPOCHS = 5
# A model step with more kernel CPU and page faults than these is paying for fresh memory every step
# (docs/keras-behaviours.md, "TensorFlow's malloc setting"); with glibc's thresholds restored the same
# step stays well below both.
KERNEL_SHARE_WARNING = 0.25
PAGE_FAULTS_WARNING = 4000
# tf.data's autotuner optimizes 10 ms after an iterator starts and then at doubling periods; an inline
# epoch that waits for it ends at one of these (docs/keras-behaviours.md).
AUTOTUNE_TICKS_SECONDS = tuple(0.01 * (2**k - 1) for k in range(1, 30))
# Below this a batch costs less than handing it to a thread, so the thread test says nothing about the GIL.
THREAD_TEST_FLOOR_SECONDS = 0.001
# CPython 3.11 before 3.11.8 (and 3.12 before 3.12.2) kept the AST constructor's recursion depth in state
# that threads share; np.load parses every .npy header with ast.literal_eval, so threads calling it can fail.
AST_RACE = "AST constructor recursion depth mismatch"
# Under forkserver or spawn, the start cost is named as a loss when fork would gain at least this much.
FORK_GAIN_WORTH_SAYING = 1.05


def explain(
    *,
    chosen: LoaderConfig,
    best: LoaderConfig,
    confirmation: Confirmation | None,
    ceiling: Ceiling,
    tf_data: Confirmation | None,
    dataset: DatasetProfile,
    model: ModelProfile,
    epoch_batches: int,
    label: Label,
    engine: EngineName = EngineName.KERAS3,
    rewrite: tuple[LoaderConfig, float] | None = None,
    race: Interleaved | None = None,
    threads_measured: tuple[LoaderConfig, float] | None = None,
    every_pool_failed: bool = False,
    how: Decision | None = None,
    elapsed_seconds: float = 0.0,
) -> tuple[str, ...]:
    """Why this configuration: the data code's nature, the model, the evidence.

    ``best`` is the best setting other than the defaults (the one the claim
    compares with them); ``race`` holds what the race timed;
    ``threads_measured`` the best thread pool's measured gain over inline
    (``thread_gain``); ``every_pool_failed``: no worker pool tried ran;
    ``how`` the race's decision and ``elapsed_seconds`` the tune's time so far; ``label`` names a setting
    in its engine's words.
    """
    reasons = [data_nature(dataset, threads_measured), f"Training is {ceiling.verdict}."]
    if native := native_threads_text(dataset, chosen):
        reasons.insert(1, native)
    if race and len(race.samples) > 1:
        reasons.append(race_summary(race, chosen if chosen != KERAS_DEFAULTS else best, label))
    if registry.entry(engine).migrates_to:  # Keras 2 code: what its pools cost that Keras 3's do not
        reasons.append(legacy_costs(dataset, model, epoch_batches))
    if every_pool_failed:
        reasons.append("Every worker pool tried failed or hung (each reason is in the warnings), so the Keras "
                       "defaults, which ran, are the answer.")
    elif best == KERAS_DEFAULTS:
        reasons.append("The Keras defaults were the best configuration measured.")
    else:
        reasons.append(claim(chosen, best, confirmation, epoch_batches, label,
                             wording.race_stop(race.stop, label) if race else "", how, elapsed_seconds))
    if tf_data_reason := tf_data_said(tf_data, chosen, race, elapsed_seconds):
        reasons.append(tf_data_reason)
    if dataset.kind == DataKind.GENERATOR and confirmation is not None and not best.use_multiprocessing:
        reasons.append(
            "Keras 3 cannot run a plain generator in parallel: its fit() makes the batches inline, like the "
            f"defaults here. The best parallel setting measured {confirmation.speedup:.2f}x that "
            f"({confirmation.interval_text()}), the gain a keras.utils.PyDataset "
            "rewrite (batch i from __getitem__) can keep when you move to Keras 3."
        )
    if rewrite is not None:
        config, gain = rewrite
        reasons.append(
            f"As a PyDataset (batch i from __getitem__, which threads and processes can share without a lock or "
            f"duplicates), the analytic model predicts {gain:.2f}x the defaults with {config.label()}: a prediction "
            "from the probes, not a measurement."
        )
    return tuple(reasons)


def tf_data_said(tf_data: Confirmation | None, chosen: LoaderConfig, race: Interleaved | None,
                 elapsed_seconds: float) -> str | None:
    """tf.data against the answer when it raced; else why it sat out, if the race says."""
    if tf_data is not None:
        return tf_data_text(tf_data, chosen)
    if race and race.tf_data_reach is not None:
        return tf_data_sat_out_text(race.tf_data_reach)
    if race and race.tf_data_short is not None:
        return tf_data_short_text(*race.tf_data_short, elapsed_seconds)
    return None


def tf_data_text(tf_data: Confirmation, chosen: LoaderConfig) -> str:
    """tf.data against the recommended setting, side by side."""
    interval = tf_data.interval_text()
    if tf_data.significant:
        return (f"A tf.data pipeline over the same __getitem__ (map with AUTOTUNE, prefetch) ran {tf_data.speedup:.2f}x "
                f"the recommended setting ({chosen.label()}) {interval}: consider switching (code below).")
    return (f"A tf.data pipeline over the same __getitem__ ran {tf_data.speedup:.2f}x the recommended "
            f"setting ({chosen.label()}) {interval}: no reason to switch.")


def tf_data_sat_out_text(reach: float) -> str:
    """Why tf.data was not raced (``decision.races_tf_data``)."""
    return (f"A tf.data pipeline was not raced: it runs __getitem__ on threads of the training process, and the "
            f"fastest setting screened there (inline or threads) ran {reach:.2f}x the fastest screened: tf.data "
            f"would need {1 / reach:.1f}x over that setting to lead, and races only within "
            f"{decision.TF_DATA_MOST_GAIN:.1f}x.")


def tf_data_short_text(needed_seconds: float, left_seconds: float, elapsed_seconds: float) -> str:
    """Why tf.data was not raced for lack of time (``decision.tf_data_fits``), and the budget that races it."""
    budget = 10 * math.ceil((elapsed_seconds + needed_seconds - left_seconds) / 10)
    return (f"A tf.data pipeline was not raced: {decision.RESERVE_ROUNDS} race rounds with it would have taken "
            f"about {needed_seconds:.0f} s, and the screen left {left_seconds:.0f} s; "
            f"--time-budget {budget} would race it.")


def claim(chosen: LoaderConfig, best: LoaderConfig, confirmation: Confirmation | None, epoch_batches: int,
          label: Label, race_stopped_because: str, how: Decision | None = None, elapsed_seconds: float = 0.0) -> str:
    """What the race showed about the best setting against the defaults, why the answer is what it is
    (``how.basis``), how sure the claim is, and what would decide it."""
    basis = how.basis if how else None
    if confirmation is None and chosen != KERAS_DEFAULTS:  # the defaults failed in the race
        return (f"The defaults could not be timed in the race (see the warnings), so {label(chosen)}, the "
                "fastest setting that ran there, is recommended without a speed-up claimed over them.")
    if confirmation is None:
        return (f"The best configuration tried ({label(best)}) could not be confirmed against the defaults "
                "side by side (see the warnings): keep the defaults.")
    measured = f"{label(best)} ran {confirmation.speedup:.2f}x the defaults, {confirmation.interval_text()}"
    stopped = f"; the race stopped because {race_stopped_because}" if race_stopped_because else ""
    odds = (f", faster than them with probability {how.probability_faster:.0%}"
            if how and how.probability_faster is not None else "")
    to_decide = deciding_text(how, confirmation, elapsed_seconds) if how else ""
    guard = harm_guard_text(how, label) if how and how.guarded else ""
    if chosen == KERAS_DEFAULTS and basis == ChoiceBasis.HARM_GUARD:
        return f"{guard}{measured}{odds}: keep the defaults{stopped}.{to_decide}"
    if chosen == KERAS_DEFAULTS and confirmation.speedup_high <= 1.0 + decision.EQUIVALENT_WITHIN:
        return f"{guard}{measured}: no real gain over the defaults, so keep them (the simpler setting){stopped}."
    if chosen == KERAS_DEFAULTS:
        return (f"{guard}{measured}{odds}. That does not show a gain of {decision.MIN_EXPECTED_GAIN:.0%} or "
                f"more at {decision.MIN_PROBABILITY_FASTER:.0%} probability, so keep the defaults; the "
                f"answer is undecided, not equal{stopped}.{to_decide}")
    if basis == ChoiceBasis.LIKELIEST_FASTER:
        return (f"{guard}{measured}{odds} (epochs of {epoch_batches} batches): recommended as the fastest the "
                f"evidence shows, but the claim is not decided{stopped}.{to_decide}")
    width = "" if decision.decided(confirmation) else (
        f" The interval reaches +-{confirmation.half_width:.0%}, wider than the +-{decision.DECIDED_WITHIN:.0%} "
        f"the race aims for{stopped}.{to_decide}")
    return f"{guard}{measured} (epochs of {epoch_batches} batches).{width}"


def harm_guard_text(how: Decision, label: Label) -> str:
    """The faster-looking setting the harm guard set aside, and why."""
    return (f"{label(how.guarded)} looked faster, but its evidence allows a loss of more than "
            f"{1 - decision.HARM_FLOOR:.0%} against the defaults (its one-sided "
            f"{decision.HARM_CONFIDENCE:.0%} lower bound is under {decision.HARM_FLOOR:.2f}) for an "
            f"expected gain under {decision.LARGE_GAIN:.1f}x, so it is not recommended. ")


def deciding_text(how: Decision, confirmation: Confirmation, elapsed_seconds: float) -> str:
    """What would decide an undecided claim, after a space: the rounds the measured noise needs, and the
    --time-budget that buys them ("" once decided)."""
    if decision.decided(confirmation):
        return ""
    if how.rounds_to_decide is None:
        return (f" At the noise measured, more than {decision.MAX_ROUNDS} interleaved rounds would be needed to "
                "decide it: the difference is inside the run-to-run noise.")
    more = how.rounds_to_decide - len(confirmation.best_samples)
    if not how.round_seconds:
        return f" About {more} more interleaved rounds would decide it."
    budget = 10 * math.ceil((elapsed_seconds + more * how.round_seconds) / 10)
    return (f" About {more} more interleaved rounds of it and the defaults ({how.round_seconds:.1f} s each) "
            f"would decide it: --time-budget {budget}.")


def race_summary(race: Interleaved, winner: LoaderConfig, label: Label) -> str:
    """The race between the screen's finalists, and how it chose (``decision.choice``)."""
    ranked = sorted(race.samples.items(), key=lambda item: -statistics.fmean(item[1]))
    readings = "; ".join(
        f"{label(config)} {statistics.fmean(values):.1f} batches/s (n={len(values)}"
        + (", left early" if config in race.left else "") + ")" for config, values in ranked
    )
    rule = (f"{label(winner)} is the simplest within {decision.NEAR_LEADER:.0%} of the fastest of the settings "
            f"still racing at the end")
    ending = ("no setting left could beat it by more than "
              f"{decision.SETTLED_MARGIN:.0%}" if race.stop.settled else
              f"the race stopped because {wording.race_stop(race.stop, label)}")
    return (f"The screen's fastest settings were raced side by side, means of interleaved rounds: {readings}. "
            f"{rule}; {ending}.")


def legacy_costs(dataset: DatasetProfile, model: ModelProfile, epoch_batches: int) -> str:
    """What tf-keras's pools cost per epoch beyond inline, from the free-data probe."""
    inline, threads = model.pipeline_point(PoolKind.INLINE), model.pipeline_point(PoolKind.THREADS)
    extra = max(0.0, threads.fixed_seconds - inline.fixed_seconds) + threads.epoch_end_seconds
    epoch_seconds = epoch_batches / threads.steady_batches_per_second
    if dataset.kind == DataKind.GENERATOR:
        return (
            f"tf-keras with a generator starts its worker pool once per fit() call ({extra:.2f} s measured with "
            "free data) and never stops it: the pool outlives fit(), so long-running programs should exit or "
            "restart between fits."
        )
    return (
        f"tf-keras pays {extra:.1f} s per epoch once workers > 1 (measured with free data; "
        f"{threads.epoch_end_seconds:.1f} s of it after the epoch's last batch, where tf.data waits in its "
        "OrderedEnqueuer's queue.get(timeout=5) for a batch that never comes). At the free-data rate that is "
        f"{extra / (extra + epoch_seconds):.0%} of an epoch of {epoch_batches} batches, so the shorter the epoch, "
        "the less a pool can win; Keras 3's PyDataset has no such stall."
    )


def migration(comparison: EngineComparison) -> str:
    """What moving the Sequence to a Keras 3 PyDataset measured."""
    if comparison.ratio is None:
        return f"Under Keras 3 as a PyDataset, {comparison.config.label()} was recommended (no ratio: too few epochs)."
    return (
        f"The same code as a Keras 3 PyDataset, tuned separately ({comparison.config.label()}, "
        f"{comparison.model_description}), ran {comparison.ratio:.2f}x this tf-keras answer "
        f"[{comparison.ratio_low:.2f}, {comparison.ratio_high:.2f}] (two separate runs: the interval includes their "
        "run-to-run noise)."
    )


def thread_gain(trials: tuple[TrialResult, ...], race: dict[LoaderConfig, tuple[float, ...]]
                ) -> tuple[LoaderConfig, float] | None:
    """The best thread pool's throughput over inline, as measured: side by side in the race when it timed a
    pool and the defaults, else between the trials."""
    if KERAS_DEFAULTS in race:
        raced = [(config, statistics.median(epochs) / statistics.median(race[KERAS_DEFAULTS]))
                 for config, epochs in race.items() if config.kind == PoolKind.THREADS]
        if raced:
            return max(raced, key=lambda pair: pair[1])
    measured = completed(trials)
    inline = [t.epoch_batches_per_second.median for t in measured if t.config.kind == PoolKind.INLINE]
    pools = [t for t in measured if t.config.kind == PoolKind.THREADS]
    if not inline or not pools:
        return None
    best = max(pools, key=lambda t: t.epoch_batches_per_second.median)
    return best.config, best.epoch_batches_per_second.median / max(inline)


def native_threads_text(dataset: DatasetProfile, chosen: LoaderConfig) -> str | None:
    """Where the probe saw BLAS/OpenMP pools at work: what it measured, that the limit was searched, and what
    the chosen limit does and costs. Pools that sit idle (numpy loads OpenBLAS everywhere) go unmentioned;
    results.json keeps the probe's numbers."""
    native = dataset.native
    if native is None or not native.in_use:
        return None
    text = (f"Your data code runs on {', '.join(native.pools)}: a batch took {native.default_seconds * 1e3:.1f} ms "
            f"using {native.default_cpu_seconds / native.default_seconds:.1f} cores at {native.default_threads} "
            f"threads and {native.one_thread_seconds * 1e3:.1f} ms at one (median of {native.batches} each). Every "
            "worker shares or copies these pools, so BLAS/OpenMP threads per worker were searched as a fourth knob.")
    if chosen.native_threads is not None:
        text += (f" The answer limits them to {chosen.native_threads} per worker with threadpool_limits at the start "
                 "of every batch. Where batches are made in the training process (inline or threads) the limit stays "
                 "on there for other BLAS work too; TensorFlow's and XLA's own threads are separate pools, and "
                 "whatever it cost the model step is inside the measured epochs.")
    return text


def start_method_cost(dataset: DatasetProfile, usable_cores: int, chosen: LoaderConfig, chosen_rate: float | None,
                      trials: tuple[TrialResult, ...], epoch_batches: int, start: PoolStart, label: Label) -> str | None:
    """Under forkserver or spawn: what each process worker costs every epoch (``StartCost``) and, when the
    fastest process pool measured would beat the answer under fork, by about how much and the fixes
    (``start``: the engine's, ``KnobSet.pool_start``). The fork figure is an estimate: that pool's measured
    epochs less the start cost the probe measured."""
    cost = dataset.start_cost
    if cost is None:
        return None
    keras = f", importing Keras {cost.keras_seconds:.2f} s" if start.imports_keras else ""
    text = (f"Process pools start by {cost.method} here, {start.chosen_by}: {start.starter} fresh "
            f"workers every epoch, and each costs {cost.per_worker_seconds:.2f} s beyond a forked one (a fresh "
            f"interpreter {cost.interpreter_seconds:.2f} s{keras}; your dataset "
            f"pickled in {cost.pickle_seconds:.2f} s, {cost.pickle_bytes / 2**20:.1f} MiB, and unpickled in the "
            f"worker, importing your module, in {cost.import_seconds:.2f} s).")
    pools = [t for t in completed(trials) if t.config.use_multiprocessing and not t.config.persistent_workers
             and t.epoch_batches_per_second]
    if not pools or not chosen_rate:
        return text
    fastest = max(pools, key=lambda t: t.epoch_batches_per_second.median)
    epoch = epoch_batches / fastest.epoch_batches_per_second.median
    extra = ((cost.interpreter_seconds + cost.keras_seconds) * math.ceil(fastest.config.workers / usable_cores)
             + start_cost_seconds(cost, fastest.config.workers, usable_cores))
    under_fork = epoch_batches / max(epoch - extra, 0.05 * epoch)
    if under_fork <= FORK_GAIN_WORTH_SAYING * chosen_rate:
        return text
    return text + (f" Under fork, {label(fastest.config)} would run about {under_fork / chosen_rate:.2f}x the answer "
                   "(an estimate: its measured epochs less that start cost). Fixes: fewer, longer epochs (each pays "
                   f"the start once); {start.fixes}, where your platform and libraries allow it.")


def data_nature(dataset: DatasetProfile, threads_measured: tuple[LoaderConfig, float] | None = None) -> str:
    """What the data code is, from the probe's timings and thread test, corrected by what thread pools
    measured: a probe of a few batches can miss a partial GIL release that the trials show."""
    share = dataset.cpu_fraction
    batch_ms = dataset.wall_seconds.median * 1e3
    speedup = dataset.thread_speedup or 1.0
    if dataset.wall_seconds.median < THREAD_TEST_FLOOR_SECONDS:
        return (
            f"Your batches take {1e3 * batch_ms:.0f} µs: the data code costs next to nothing, too little for the "
            f"thread test to tell whether it holds the GIL ({dataset.threads_tried} threads read {speedup:.1f}x, "
            "mostly the threads' own overhead)."
        )
    if dataset.waits:
        return (
            f"Your batches take {batch_ms:.1f} ms and spend only {share:.0%} of it on the CPU: the code mostly waits "
            f"(I/O, sleep), so threads overlap the waits ({dataset.threads_tried} threads made them {speedup:.1f}x faster)."
        )
    if dataset.gil_bound and dataset.native and dataset.native.in_use:
        return (
            f"Your batches take {batch_ms:.1f} ms, and {dataset.threads_tried} threads made them only {speedup:.2f}x "
            "faster: not the GIL alone, since their native threads (BLAS/OpenMP) already use the cores, and more "
            "workers oversubscribe them unless each worker's pools are limited."
        )
    if dataset.gil_bound and threads_measured and threads_measured[1] >= PARTIAL_GIL_GAIN:
        config, gain = threads_measured
        return (
            f"Your batches take {batch_ms:.1f} ms, {share:.0%} of it computing. In the probe {dataset.threads_tried} "
            f"threads made them only {speedup:.2f}x faster, but {config.label()} ran {gain:.2f}x inline in the "
            "measurements: the code releases the GIL in part (image decoding and numpy do), so threads help."
        )
    if dataset.gil_bound:
        return (
            f"Your batches take {batch_ms:.1f} ms, {share:.0%} of it computing, and {dataset.threads_tried} threads "
            f"made them only {speedup:.1f}x faster: the code holds the GIL, so only processes run it in parallel."
        )
    return (
        f"Your batches take {batch_ms:.1f} ms, {share:.0%} of it computing, and {dataset.threads_tried} threads made "
        f"them {speedup:.1f}x faster: the work releases the GIL (numpy, I/O), so threads can share it."
    )


def warn(
    *,
    chosen: LoaderConfig,
    chosen_trial: TrialResult | None,
    trials: tuple[TrialResult, ...],
    dataset: DatasetProfile,
    memory_budget_bytes: int | None,
    label: Label,
    not_tried: PoolsNotTried = PoolsNotTried(),
    model: ModelProfile | None = None,
    engine: EngineName = EngineName.KERAS3,
    backend: Backend = Backend.TENSORFLOW,
    chosen_epoch_seconds: float | None = None,
    race_failures: dict[LoaderConfig, str] | None = None,
    race_reruns: dict[LoaderConfig, str] | None = None,
    confirmation: Confirmation | None = None,
    race_load: RaceLoad = RaceLoad(),
    race_timed_whole_epochs: bool = False,
) -> tuple[str, ...]:
    """Risks of the chosen settings and doubts about the measurements (``not_tried``: the pools the search
    left out, and why; ``race_failures``: the settings
    that stopped in the race, with why; ``race_reruns``: the failures timed again at once;
    ``confirmation``: the race epochs the claim rests on;
    ``race_timed_whole_epochs``: the race timed the chosen setting in fits of whole epochs of the user's
    length)."""
    wait = None if race_timed_whole_epochs else autotune_wait(chosen, engine, chosen_epoch_seconds, backend)
    warnings = [w for w in (snippet_fix(chosen, dataset), allocator_churn(model) if model else None, wait) if w]
    warnings += _setting_risks(chosen, dataset, not_tried)
    warnings += _stopped_settings(trials, not_tried, race_failures or {}, race_reruns or {}, label)
    if any(t.leftover_processes for t in trials):
        count = sum(t.leftover_processes for t in trials)
        warnings.append(f"{count} worker process(es) were still alive after their epoch ended; tune-loader killed them.")
    if chosen_trial and chosen_trial.peak_memory_bytes and memory_budget_bytes:
        share = chosen_trial.peak_memory_bytes / memory_budget_bytes
        if share > MEMORY_NEAR_BUDGET:
            warnings.append(f"The recommended settings used {share:.0%} of the memory budget at peak.")
    if load := busy_machine(race_load, confirmation):
        warnings.append(load)
    if confirmation and (outliers := _outlier_epochs(confirmation)):
        warnings.append(
            f"{outliers} of the race's epochs were statistical outliers (modified z-score above 14.8, as "
            "hyperfine flags them): another process may have competed for the CPU. Consider re-running on a "
            "quiet system."
        )
    return tuple(warnings)


def snippet_fix(chosen: LoaderConfig, dataset: DatasetProfile) -> str | None:
    """First among the warnings, since the code to paste depends on it: a PyDataset whose constructor
    cannot take the knobs."""
    if dataset.takes_knob_arguments is not False or chosen == KERAS_DEFAULTS:
        return None
    return (f"{dataset.class_name}.__init__ takes neither the three knobs nor **kwargs, so "
            f"{dataset.class_name}(..., workers={chosen.workers}, ...) raises TypeError: the code above sets them "
            "as attributes after building the dataset instead. To pass them as arguments, accept and forward "
            "them: def __init__(self, ..., **kwargs): super().__init__(**kwargs).")


def _setting_risks(chosen: LoaderConfig, dataset: DatasetProfile, not_tried: PoolsNotTried) -> list[str]:
    """What the chosen setting may change in the user's training, and what was not tried."""
    warnings = []
    generator = dataset.kind == DataKind.GENERATOR
    if chosen.use_multiprocessing and generator:
        warnings.append(
            f"DUPLICATED DATA: with {chosen.workers} processes, every worker runs its own copy of your generator, "
            f"so each batch reaches the model {chosen.workers} times per pass. You allowed this with "
            "--allow-duplicated-data; the throughput above counts duplicated batches."
        )
    if chosen.parallel and not generator:
        warnings.append(
            f"With {chosen.workers} workers, __getitem__ runs concurrently and not in index order. Batches still "
            "reach the model in order, but code that keeps state between calls (counters, caches, its own "
            "shuffling) may behave differently."
        )
    if chosen.use_multiprocessing and dataset.thread_safe is None:
        warnings.append(
            "Batches differ from call to call (random augmentation?) and the workers are forked processes: each "
            "starts with the same NumPy random state. Seed per worker or per index to avoid repeated augmentations."
        )
    if chosen.use_multiprocessing and not generator:
        warnings += fork_risks(dataset)
    if not_tried.processes:
        warnings.append(f"Processes were not tried: {not_tried.processes}.")
    if dataset.thread_safe is False and not generator and chosen.kind == PoolKind.THREADS:
        warnings.append(f"Threads returned different batches than inline calls: {dataset.thread_safety_note}.")
    return warnings


def fork_risks(dataset: DatasetProfile) -> list[str]:
    """What a forked worker inherits that it must not use (``probes.fork_safety``), with the fix, and a
    dataset that runs in processes only because fork does not pickle it."""
    warnings = []
    if dataset.fork_hazards:
        found = "; ".join(f"{hazard.kind} at {hazard.where}" for hazard in dataset.fork_hazards[:4])
        warnings.append(
            f"Every forked worker inherits what {dataset.class_name} holds, and some of it must not cross fork(): "
            f"{found}. SQLite says a connection must not be carried across fork(); sockets and files share their "
            "offsets with the parent; threads and CUDA contexts do not survive it. Fix: open these in the worker "
            "that uses them, lazily: keep the os.getpid() they were opened in and reopen when it differs.")
    if not dataset.picklable:
        warnings.append(
            f"{dataset.class_name} does not pickle ({dataset.pickle_error}); it runs in processes here because fork "
            "hands it to the workers without pickling. Under spawn or forkserver (macOS, Windows, and Linux from "
            "Python 3.14) the same setting fails: open such state lazily in each worker to keep it portable.")
    return warnings


def _stopped_settings(trials: tuple[TrialResult, ...], not_tried: PoolsNotTried, race_failures: dict[LoaderConfig, str],
                      race_reruns: dict[LoaderConfig, str], label: Label) -> list[str]:
    """Settings recorded as infeasible, or that failed in the search or the race, with their reasons."""
    warnings = []
    unsafe = [t for t in trials if t.stop_kind == StopKind.THREAD_UNSAFE]
    if unsafe:
        numbers = ", ".join(str(t.number) for t in unsafe)
        warnings.append(f"Thread pools (trials {numbers}) were recorded as infeasible, not timed: {not_tried.threads}.")
    stopped = [t for t in trials if t.status in (TrialStatus.FAILED, TrialStatus.INFEASIBLE) and t not in unsafe]
    for trial in stopped[:5]:
        warnings.append(f"Trial {trial.number} ({label(trial.config)}) {trial.status}: {trial.reason}")
    if len(stopped) > 5:
        warnings.append(f"... and {len(stopped) - 5} more trials failed or were infeasible (see the trials table).")
    for config, reason in race_failures.items():
        warnings.append(f"{label(config)} stopped during the race: {reason}")
    for config, reason in race_reruns.items():
        again = "failed again" if config in race_failures else "ran, and the race went on"
        warnings.append(f"{label(config)} stopped once during the race ({reason}) and was timed again at once, "
                        f"as the claim's baseline: it {again}.")
    if any(AST_RACE in reason for reason in [t.reason for t in stopped] + list(race_failures.values())):
        warnings.append(
            f"\"{AST_RACE}\" is a race in CPython's ast module, not a bug in your code: threads that call "
            "ast.literal_eval at once (np.load does, for every .npy header) can fail this way before Python 3.11.8 "
            f"and 3.12.2 (python/cpython#106905). You run Python {platform.python_version()}: upgrading removes it, "
            "and processes avoid it. The settings it stopped are recorded as failed."
        )
    return warnings


def busy_machine(load: RaceLoad, confirmation: Confirmation | None) -> str | None:
    """What other processes' CPU did to the race: rounds dropped and rerun, or a claim made under load."""
    if not load.dropped_rounds and not load.loaded_rounds:
        return None
    rounds = len(confirmation.best_samples) if confirmation else 0
    others = (f"other processes (or the hypervisor, as steal time) took up to {load.peak_foreign_cores:.1f} cores "
              "of CPU while tune-loader timed them")
    if not load.loaded_rounds:
        return (f"The machine was busy: {load.dropped_rounds} race round(s) were dropped and run again because "
                f"{others}. The claim rests on {rounds} rounds without that load.")
    return (f"The machine was busy: {load.loaded_rounds} of the race's rounds ran while {others}, and no more "
            f"could be dropped and run again ({load.dropped_rounds} were). The claim was made under load and may "
            "not hold on a quiet machine: re-run tune-loader when the machine is quiet.")


def _outlier_epochs(confirmation: Confirmation) -> int:
    """How many of the race's epochs, on either side of the claim, hyperfine's rule flags.

    A side needs ``OUTLIER_MIN_EPOCHS``: with three or four epochs the MAD is
    the gap between the two closest, and an epoch 3% off them scores over 100.
    """
    sides = (confirmation.best_samples, confirmation.default_samples)
    return sum(sum(outlier_mask(side)) for side in sides if len(side) >= OUTLIER_MIN_EPOCHS)


def autotune_wait(chosen: LoaderConfig, engine: EngineName, epoch_seconds: float | None,
                  backend: Backend = Backend.TENSORFLOW) -> str | None:
    """A warning for inline training whose epochs are longer than the race's windows: they can wait for
    tf.data's autotuner for longer than any window shows.

    Keras makes a new tf.data iterator every epoch, and deleting the last
    one sometimes blocks until the autotuner's next optimization, at
    doubling periods after the iterator began. Both engines' inline paths
    go through tf.data on TensorFlow; no pool does, and neither does JAX's
    or torch's inline path. Race fits of whole epochs contain the wait, so
    the caller asks only when the race timed shorter windows.
    """
    if chosen.parallel or not epoch_seconds or not registry.inline_uses_tf_data(engine, backend):
        return None
    keras = registry.entry(engine).keras
    latest = next(tick for tick in AUTOTUNE_TICKS_SECONDS if tick >= epoch_seconds)
    return (
        f"Without a pool, {keras} feeds your batches through tf.data with autotuning on, and an epoch can wait "
        "before its first batch until the previous epoch's autotuner next optimizes (5.1, 10.2, 20.5 s, ... after "
        f"that epoch began): an epoch of {epoch_seconds:.1f} s here may cost up to {latest:.1f} s. Your epochs "
        "are longer than the windows tune-loader timed, so its timings do not show that wait; a pool (workers=2 "
        "with threads) avoids it."
    )


def allocator_churn(model: ModelProfile) -> str | None:
    """A warning when the model step pays the kernel for fresh memory every step, which no loader setting fixes."""
    share, faults = model.kernel_cpu_share, model.page_faults_per_step
    if share is None or faults is None or share < KERNEL_SHARE_WARNING or faults < PAGE_FAULTS_WARNING:
        return None
    return (
        f"The model step spent {share:.0%} of its CPU time in the kernel, at {faults:,.0f} page faults per step "
        f"({model.step_seconds.count} steps of the model probe): memory goes back to the operating system and is "
        "taken again every step. TensorFlow's from_generator sets glibc's M_TRIM_THRESHOLD to 128 KiB, which does "
        "this to every tensor over 128 KiB. No loader setting changes it: see \"TensorFlow's malloc setting\" in "
        "docs/keras-behaviours.md in tune-loader's repository for a callback that restores the thresholds."
    )
