"""The Optuna study over the three knobs, and the interleaved confirmation.

Failures are data: a trial that hangs, crashes or goes over the memory
budget is recorded with its reason and the study goes on. Each trial times
several windows and reports after each, so a pruner can stop clearly losing
configurations early.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

import optuna

from probes.serde import from_dict, to_dict
from probes.stats import bootstrap_ratio_interval
from tuner.epoch_model import epoch_throughput, epoch_throughputs
from tuner.isolation import TrialStopped
from tuner.results import KERAS_DEFAULTS, Confirmation, LoaderConfig, TrialResult, WindowTiming
from tuner.space import SearchSpace

RESULT_ATTR = "tune_loader_result"
ORIGIN_ATTR = "origin"
MAX_REPEATS_PER_TRIAL = 5
CONFIDENCE = 0.95
NEAR_BEST = 0.05
CONFIRMED_NEAR_BEST = 0.01
RIVALS = 2
RIVAL_MARGIN = 0.10
# A pool that beat every smaller one of its kind by this much has not reached its knee (``next_climb``).
CLIMB_GAIN = 0.05
FREE_DATA_CEILING = "the free-data ceiling"


@dataclass(frozen=True)
class Measurement:
    """One timed window as the study sees it."""

    timing: WindowTiming
    peak_memory_bytes: int
    leftover_processes: int
    wall_seconds: float


class Measurer(Protocol):
    """Runs one window of ``config``; raises ``TrialStopped`` when it cannot."""

    def measure(self, config: LoaderConfig, window_index: int) -> Measurement: ...


@dataclass(frozen=True)
class StudySettings:
    """Bounds of the search and of each trial.

    A trial times up to ``windows_per_trial`` windows, but stops after
    ``min_windows_per_trial`` when they agree within ``window_agreement``
    (a third adds little to two readings 3% apart, and costs a second).
    The search stops at ``max_trials`` measured trials, at the
    time budget, when ``patience`` trials in a row (after the starting
    ones) did not beat the best by more than ``min_improvement``, or when the
    best is within ``ceiling_share`` of ``ceiling_batches_per_second`` (what
    no setting can beat, so searching on is waste; ``ceiling_meaning`` says
    what it is in the reason the search gives for stopping).

    Patience 2, not 3: in the 51 runs kept in ``benchmarks/results`` (six
    workloads, two machines), a third trial without gain never found a
    better setting; each cost 0.9 to 2.0 s, mostly a sampler's pruned
    window, of runs of 20 to 40 s.
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


@dataclass(frozen=True)
class StudyOutcome:
    """The measured trials, and why the search ended (a sentence for the report: without it, a run that
    stopped after 3 of 4 trials could not say which rule fired)."""

    trials: tuple[TrialResult, ...]
    pruning_saved_seconds: float
    resumed_trials: int
    stopped_because: str


def run_study(
    measurer: Measurer,
    space: SearchSpace,
    starts: list[tuple[str, LoaderConfig]],
    settings: StudySettings,
    on_trial: Callable[[TrialResult, int], None] | None = None,
    predict: Callable[[LoaderConfig], float] | None = None,
) -> StudyOutcome:
    """Measures the starting configs, then lets TPE search until trials, time, patience or the ceiling end it
    (``StudyOutcome.stopped_because`` says which).

    ``on_trial(result, measured_so_far)`` is called after every measured
    trial; ``predict(config)``, when given, is stored beside each measurement
    so the analytic model's error stays visible.
    """
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=settings.storage,
        direction="maximize",
        # TPE samples at random for its first 10 trials by default; the
        # enqueued starts already cover that ground, so it models from them.
        sampler=optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=max(1, len(starts))),
        # A trial must be in the top quarter after each window to go on: the
        # answer is the simplest within 5% of the fastest, so a setting that
        # is not near the top after one window is unlikely to become it.
        # With two or three trials done the top quarter is close to the best
        # first window, so a setting level with the best can be stopped on one
        # noisy window: at 155bca1 two of three io_bound runs pruned a climb to 32
        # threads that read 459 and 486 batches/s beside 26 threads' 457 and
        # 479. On that plateau it changed nothing (all three answered 26
        # threads); kept as a rival it would have cost about 4 s of 21.
        pruner=optuna.pruners.PercentilePruner(25.0, n_startup_trials=len(starts), n_warmup_steps=0),
        load_if_exists=True,
    )
    results = _results_in(study)
    resumed = len(results)
    if not study.trials:
        for origin, config in starts:
            study.enqueue_trial(SearchSpace.params(config), user_attrs={ORIGIN_ATTR: origin})
    known = {r.config.equivalence_key(): r for r in results}
    saved = 0.0
    began = time.monotonic()
    repeats = 0
    while not (stopped_because := _stop_reason(results, len(starts), settings, time.monotonic() - began)):
        trial = study.ask()
        config = space.suggest(trial)
        if config.equivalence_key() in known:
            # TPE re-proposes configurations in a small discrete space (and
            # without a pool the queue size changes nothing): the answer is
            # already measured, so tell it again instead of re-timing.
            _tell(study, trial, known[config.equivalence_key()])
            repeats += 1
            if repeats > MAX_REPEATS_PER_TRIAL * settings.max_trials:
                stopped_because = "the sampler kept proposing settings already measured: the space is exhausted"
                break
            continue
        origin = trial.user_attrs.get(ORIGIN_ATTR, "sampler")
        if reason := space.infeasible(config):
            result, trial_saved = _result(trial.number, config, "infeasible", origin, [], settings, 0, 0, [], reason), 0.0
        else:
            result, trial_saved = _run_trial(measurer, trial, config, origin, settings)
        if predict and result.status != "infeasible":
            result = dataclasses.replace(result, predicted_batches_per_second=predict(config))
        saved += trial_saved
        trial.set_user_attr(RESULT_ATTR, json.dumps(to_dict(result)))
        _tell(study, trial, result)
        results.append(result)
        known[config.equivalence_key()] = result
        climb = next_climb(results, space)
        if climb and not same_pool_planned(climb, [config for _, config in starts] + [r.config for r in results]):
            study.enqueue_trial(SearchSpace.params(climb), user_attrs={ORIGIN_ATTR: "climb"})
        if on_trial:
            on_trial(result, len(results))
    return StudyOutcome(tuple(results), saved, resumed, stopped_because)


def next_climb(results: list[TrialResult], space: SearchSpace) -> LoaderConfig | None:
    """Twice the batches in flight of the latest trial, when it is the biggest pool of its kind measured
    and beat every smaller one by ``CLIMB_GAIN``: the knee is further up.

    The analytic model's plateau is its weakest estimate, and its starting
    guesses follow it. On io_bound a model probe that read the step at
    2.5 ms instead of 1.7 ms put the plateau at 4 threads; the headroom
    guess, 8 threads, measured 10% above them and stayed the answer through
    three trials that were no better. In a full benchmark the answer, 7
    threads, read 0.85 to 0.92 of 16 threads in four rounds of five, and
    three runs of the stability check answered 6, 8 and 10 threads, 17%
    apart. Doubling while it pays follows the measurement instead, one
    trial at a time.
    """
    latest = results[-1]
    if latest.status != "ok" or not latest.config.parallel or not latest.epoch_batches_per_second:
        return None
    same_kind = [r for r in results[:-1] if r.status == "ok" and r.epoch_batches_per_second and r.config.parallel
                 and r.config.use_multiprocessing == latest.config.use_multiprocessing]
    in_flight = latest.config.effective_parallelism
    smaller = [r for r in same_kind if r.config.effective_parallelism < in_flight]
    if not smaller or any(r.config.effective_parallelism >= in_flight for r in same_kind):
        return None
    if latest.epoch_batches_per_second.median < (1 + CLIMB_GAIN) * max(r.epoch_batches_per_second.median for r in smaller):
        return None
    workers = min(2 * in_flight, space.max_workers)
    climb = LoaderConfig(workers, latest.config.use_multiprocessing,
                         min(max(latest.config.max_queue_size, workers - 1), space.max_queue_size))
    return climb if climb.effective_parallelism > in_flight else None


def same_pool_planned(climb: LoaderConfig, planned: Collection[LoaderConfig]) -> bool:
    """True when a start or a measured trial already runs ``climb``'s kind of pool with as many batches
    in flight: the climb would measure that again.

    On legacy_sequence 16 threads climbed to "32 threads, queue 31" while
    the headroom start "32 threads, queue 32" still waited its turn; both
    were timed, and raced, for one setting twice (about 4 s of 34).
    """
    return any(config.parallel and config.use_multiprocessing == climb.use_multiprocessing
               and config.effective_parallelism == climb.effective_parallelism for config in planned)


def _stop_reason(results: list[TrialResult], starts: int, settings: StudySettings, elapsed: float) -> str | None:
    """Why the search should stop now, as a sentence for the report, or None to go on."""
    if len(results) >= settings.max_trials:
        return f"it measured the {settings.max_trials} trials allowed (--trials)"
    if elapsed >= settings.time_budget_seconds:
        return f"it used its time budget of {settings.time_budget_seconds:.0f} s (--time-budget)"
    if _out_of_patience(results, starts, settings):
        return (f"{settings.patience} trials in a row after the starting ones did not beat the best by more "
                f"than {settings.min_improvement:.0%}")
    if len(results) >= starts and reached_ceiling(results, settings):
        best, limit = _best_rate(results), settings.ceiling_batches_per_second
        if best > limit:  # the probes read low (model_bound's free-data probe: 7.4 to 8.7 batches/s)
            return (f"the best trial, {best:.1f} batches/s, measured above {settings.ceiling_meaning} as the "
                    f"probes put it ({limit:.1f} batches/s): no setting can beat it by more than the probes' noise")
        return (f"the best trial reached {settings.ceiling_share:.0%} of {settings.ceiling_meaning}, "
                f"{limit:.1f} batches/s, which no setting can beat")
    return None


def _out_of_patience(results: list[TrialResult], starts: int, settings: StudySettings) -> bool:
    """True when the last ``patience`` trials after the starting ones brought no real gain."""
    if len(results) < starts + settings.patience:
        return False
    before = _best_rate(results[: -settings.patience])
    return _best_rate(results) <= before * (1.0 + settings.min_improvement)


def reached_ceiling(trials: Collection[TrialResult], settings: StudySettings) -> bool:
    """True when the best trial is within ``ceiling_share`` of the ceiling: no Keras setting can beat it by
    more than the probe's noise, so neither searching on nor racing rivals can gain.

    The ceiling comes from Keras fed with free data by 1 to 2 workers
    (``predict.ceiling``, or ``predict.attainable`` where that is lower:
    ``recommend.search_ceiling``), a noisy probe of its own (7.4 to 8.7
    batches/s in three probes of model_bound), so the starts (rule of
    thumb, the model's guesses) always run before it can stop the search
    (``_stop_reason``).
    """
    if not settings.ceiling_batches_per_second:
        return False
    return _best_rate(trials) >= settings.ceiling_share * settings.ceiling_batches_per_second


def _best_rate(trials: Collection[TrialResult]) -> float:
    rates = [t.epoch_batches_per_second.median for t in trials if t.status == "ok" and t.epoch_batches_per_second]
    return max(rates, default=0.0)


def _run_trial(measurer, trial, config, origin, settings) -> tuple[TrialResult, float]:
    windows, peak, leftovers, walls = [], 0, 0, []
    number = trial.number
    try:
        for index in range(settings.windows_per_trial):
            measurement = measurer.measure(config, index)
            windows.append(measurement.timing)
            peak = max(peak, measurement.peak_memory_bytes)
            leftovers += measurement.leftover_processes
            walls.append(measurement.wall_seconds)
            spread = epoch_throughputs(windows, settings.epoch_batches)
            trial.report(spread.median, index)
            if len(windows) >= settings.min_windows_per_trial and windows_agree(windows, settings):
                break
            if index < settings.windows_per_trial - 1 and trial.should_prune():
                remaining = settings.windows_per_trial - len(windows)
                return (
                    _result(number, config, "pruned", origin, windows, settings, peak, leftovers, walls,
                            reason=f"stopped after {len(windows)} of {settings.windows_per_trial} windows: "
                            "not in the top quarter of earlier trials"),
                    remaining * sum(walls) / len(walls),
                )
    except TrialStopped as stop:
        return _result(number, config, stop.status, origin, windows, settings, peak, leftovers, walls, reason=stop.reason), 0.0
    return _result(number, config, "ok", origin, windows, settings, peak, leftovers, walls), 0.0


def windows_agree(windows: list[WindowTiming], settings: StudySettings) -> bool:
    """True when the windows' epoch throughputs lie within ``window_agreement`` of their mean."""
    rates = [epoch_throughput(w, settings.epoch_batches) for w in windows]
    return (max(rates) - min(rates)) <= settings.window_agreement * (sum(rates) / len(rates))


def _result(number, config, status, origin, windows, settings, peak, leftovers, walls, reason="") -> TrialResult:
    spread = epoch_throughputs(windows, settings.epoch_batches) if windows else None
    return TrialResult(
        number=number,
        config=config,
        status=status,
        origin=origin,
        windows=tuple(windows),
        epoch_batches_per_second=spread,
        fixed_seconds=_median([w.fixed_seconds for w in windows]),
        steady_batches_per_second=_median([w.steady_batches_per_second for w in windows]),
        peak_memory_bytes=peak or None,
        reason=reason,
        wall_seconds=sum(walls),
        leftover_processes=leftovers,
    )


def _tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
    if result.status == "ok":
        study.tell(trial, result.epoch_batches_per_second.median)
    elif result.status == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _results_in(study: optuna.Study) -> list[TrialResult]:
    """Trials measured by an earlier, interrupted run of the same study."""
    return [
        from_dict(TrialResult, json.loads(t.user_attrs[RESULT_ATTR]))
        for t in study.get_trials(deepcopy=False)
        if RESULT_ATTR in t.user_attrs
    ]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def simplicity(config: LoaderConfig) -> tuple:
    """Sort key, simplest first: fewest workers, threads before processes, the queue nearest Keras's 10.

    A queue of 1 or 2 leaves no slack for uneven batches: 4 processes with
    queue 1 measured 26% slower side by side.
    """
    return config.workers, config.use_multiprocessing, abs(math.log(config.max_queue_size / 10))


def best_trial(trials: tuple[TrialResult, ...], tolerance: float = NEAR_BEST) -> TrialResult | None:
    """The simplest completed trial within ``tolerance`` of the fastest one.

    Trials this close are within this machine's noise (the same setting
    measured 6% apart in back-to-back runs), and picking the fastest among
    equals made repeated runs answer 10, 19 or 21 threads for the same
    I/O-bound data; the simplest of them costs the least memory and
    contention. The confirmation race then checks the choice against the
    fastest trials (``race_rivals``, ``confirmed_best``).
    """
    completed = _completed(trials)
    if not completed:
        return None
    fastest = max(t.epoch_batches_per_second.median for t in completed)
    near = [t for t in completed if t.epoch_batches_per_second.median >= fastest * (1.0 - tolerance)]
    return min(near, key=lambda t: simplicity(t.config))


def race_rivals(trials: tuple[TrialResult, ...], chosen: TrialResult, settings: StudySettings,
                count: int = RIVALS, margin: float = RIVAL_MARGIN) -> list[LoaderConfig]:
    """The fastest other trials within ``margin`` of the fastest: the settings the confirmation races
    against the study's choice; an empty list once the best trial reached the ceiling.

    Two or three windows per trial leave the study's ranking of near-equal
    settings to chance (io_bound: the choice, 6 threads, measured 0.82 of the
    grid's best side by side); more interleaved epochs settle it. At the
    ceiling there is nothing to settle: every setting near the best runs at
    what Keras's own pipeline allows (the model's speed, or a pool's
    epoch-end stall), and racing two of them cost model_bound 25 s of 130
    (4-second epochs) to choose among equals. tf.data still races the
    choice there (``recommend``): it replaces the Keras data path the
    ceiling was measured through, so the ceiling does not bound it.
    """
    completed = sorted(_completed(trials), key=lambda t: -t.epoch_batches_per_second.median)
    if not completed or reached_ceiling(trials, settings):
        return []
    floor = (1.0 - margin) * completed[0].epoch_batches_per_second.median
    return [t.config for t in completed if t.config != chosen.config
            and t.epoch_batches_per_second.median >= floor][:count]


def confirmed_best(race: Interleaved, candidates: list[LoaderConfig], *, waiting: bool = False,
                   tolerance: float = CONFIRMED_NEAR_BEST, seed: int = 0) -> LoaderConfig:
    """The race's choice among ``candidates``, from the rounds every one of them ran.

    By default, the simplest candidate whose median is within ``tolerance``
    of the fastest's. Close to the fastest, not merely near it: the
    candidates sit around the knee of the throughput curve, where a worker
    more or less moves throughput most, and "the simplest within 3%" took
    the slow side of it: three io_bound runs answered 8, 7 and 20 threads,
    which measured 9% apart side by side.

    For data code that ``waits`` (``DatasetProfile.waits``), the candidate
    with the most batches in flight among those the race cannot tell from
    the fastest (their 95% interval against it includes 1), threads before
    processes. There the knee moves with the machine's phase, and three
    rounds see one phase: in two 60-round stability checks runs answered 5
    or 6 threads off races that read them level with 10 or 12 threads (194
    against 191; 190 against 179), and over 60 rounds 6 threads read 1.098
    of 5, 12 threads 1.012 of 6. A waiting thread above the knee costs
    little (a queue slot of memory; at the top, 28 threads read 1.025 of 52
    over 60 rounds); one short of it costs up to a tenth of the throughput
    whenever the machine runs faster (14 threads: 0.937 of 16).
    """
    rounds = race.shared_rounds(candidates)
    if not rounds:  # every candidate stopped
        return candidates[0]
    medians = {config: _median(list(epochs)) for config, epochs in rounds.items()}
    fastest = max(medians, key=medians.get)
    if waiting:
        level = [config for config in rounds if config == fastest or bootstrap_ratio_interval(
            rounds[config], rounds[fastest], confidence=CONFIDENCE, seed=seed)[2] >= 1.0]
        return min(level, key=lambda c: (c.use_multiprocessing, -c.effective_parallelism, simplicity(c)))
    return min((c for c, m in medians.items() if m >= (1.0 - tolerance) * medians[fastest]), key=simplicity)


def _completed(trials) -> list[TrialResult]:
    return [t for t in trials if t.status == "ok" and t.epoch_batches_per_second]


@dataclass(frozen=True)
class Interleaved:
    """Epoch throughputs of several configurations timed round-robin (A B C A B C ...)."""

    samples: dict[LoaderConfig, tuple[float, ...]]
    peak_memory_bytes: dict[LoaderConfig, int]
    failures: dict[LoaderConfig, str]

    def compare(self, faster: LoaderConfig, slower: LoaderConfig, seed: int = 0) -> Confirmation | None:
        """``faster`` over ``slower`` with a bootstrap interval over the rounds that timed both, or None
        if either has no samples."""
        shared = self.shared_rounds([faster, slower])
        if len(shared) < 2:
            return None
        a, b = shared[faster], shared[slower]
        speedup, low, high = bootstrap_ratio_interval(a, b, confidence=CONFIDENCE, seed=seed)
        return Confirmation(a, b, speedup, low, high, CONFIDENCE)

    def verdict(self, best: LoaderConfig, seed: int = 0) -> tuple[LoaderConfig, Confirmation | None, Confirmation | None]:
        """What to recommend: ``(chosen, best over the defaults, tf.data over chosen)``.

        ``best`` is chosen when its interval over the defaults excludes 1,
        else the defaults. tf.data is judged against what is recommended,
        not against ``best``: when the defaults are kept, switching to
        tf.data would replace them, not a setting the race could not confirm.
        """
        confirmation = self.compare(best, KERAS_DEFAULTS, seed) if best != KERAS_DEFAULTS else None
        chosen = best if confirmation and confirmation.significant else KERAS_DEFAULTS
        return chosen, confirmation, self.compare(LoaderConfig.tf_data(), chosen, seed)

    def shared_rounds(self, configs: Collection[LoaderConfig]) -> dict[LoaderConfig, tuple[float, ...]]:
        """The epochs of those ``configs`` that were timed, from the rounds that timed all of them.

        A contender leaves the race for good (settled, brief or stopped), so
        every config's epochs are the race's first rounds, and the shared
        rounds are the shortest one's. Comparing more than those undoes the
        interleaving: on numpy_augment the defaults left after three rounds
        level with 2 threads (0.999), the leader raced tf.data two more
        rounds through a fast phase of the machine, and all of its five
        epochs against the defaults' three read "1.20x".
        """
        timed = [config for config in configs if self.samples.get(config)]
        kept = min((len(self.samples[config]) for config in timed), default=0)
        return {config: self.samples[config][:kept] for config in timed}


def interleave(
    measurer: Measurer,
    configs: list[LoaderConfig],
    *,
    epoch_batches: int,
    min_rounds: int,
    max_rounds: int,
    seed: int = 0,
    brief: Collection[LoaderConfig] = (),
    challengers: Collection[LoaderConfig] = (),
) -> Interleaved:
    """Races ``configs`` round-robin, one epoch each per round; ``configs[0]`` is the leader.

    Interleaving spreads slow background drift over every side (as asv
    does). After ``min_rounds``, a contender whose interval against the
    leader excludes 1 is settled and leaves the race (racing, as in F-race):
    a 6x speed-up needs no more epochs, a 3% one gets up to ``max_rounds``.

    More epochs are spent only on a question they can still answer yes.
    For a contender the leader should beat (the defaults: is there a
    speed-up to claim?) that needs the leader ahead; for one of
    ``challengers`` (tf.data: is switching worth it?) it needs the
    challenger ahead. On the model-bound benchmark tf.data, level with the
    leader, held the race to six rounds of 4-second epochs for a switch that
    could at best gain a few percent. Contenders in ``brief`` leave after
    ``min_rounds`` whatever their interval: near-equal rivals of the leader
    never settle and would hold the race for a difference that does not
    matter. A configuration that stops is dropped and its reason kept.
    """
    leader = configs[0]
    samples = {config: [] for config in configs}
    peaks = {config: 0 for config in configs}
    failures: dict[LoaderConfig, str] = {}
    racing = list(configs)
    for round_index in range(max_rounds):
        for config in racing:
            try:
                measurement = measurer.measure(config, 100 + round_index)
            except TrialStopped as stop:
                failures[config] = stop.reason
                continue
            samples[config].append(epoch_throughput(measurement.timing, epoch_batches))
            peaks[config] = max(peaks[config], measurement.peak_memory_bytes)
        racing = [config for config in racing if config not in failures]
        if round_index + 1 >= min_rounds and leader in racing:
            racing = [leader] + [
                config for config in racing[1:]
                if config not in brief
                and _open(samples[config], samples[leader], challenger=config in challengers)
                and not _settled(samples[config], samples[leader], seed)
            ]
        if len(racing) < 2:
            break
    return Interleaved({c: tuple(v) for c, v in samples.items() if v}, peaks, failures)


def _open(contender: list[float], leader: list[float], *, challenger: bool) -> bool:
    """True while more epochs could still show the leader beating the contender (or, for a challenger,
    the contender beating the leader): the side that would have to win is ahead."""
    ahead = _median(contender) > _median(leader)
    return ahead if challenger else not ahead


def _settled(contender: list[float], leader: list[float], seed: int) -> bool:
    """True when the contender's interval against the leader excludes 1 either way."""
    _, low, high = bootstrap_ratio_interval(contender, leader, confidence=CONFIDENCE, seed=seed)
    return low > 1.0 or high < 1.0
