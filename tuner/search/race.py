"""The final race: the study's choice, its closest rivals, the defaults and tf.data, timed round-robin.

Interleaving (A B C, A B C, ...) spreads the machine's slow drift over every
side, as asv does; the speed-up over the defaults is claimed only when its
interval excludes 1.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from probes.stats import bootstrap_ratio_interval, paired_median_interval
from tuner.analysis.epoch_model import epoch_throughput
from tuner.results import KERAS_DEFAULTS, Confirmation, LoaderConfig, RaceLoad, TrialResult, completed
from tuner.search.measurer import Measurer, TrialStopped
from tuner.search.stop_rules import CeilingReached

CONFIDENCE = 0.95
CONFIRMED_NEAR_BEST = 0.01
RIVALS = 2
RIVAL_MARGIN = 0.10
# The race is decided when the answer's interval against the defaults excludes 1 within +-10%, or includes
# 1 within +-5% (the two are equivalent, and the simpler wins).
DECIDED_WITHIN = 0.10
EQUIVALENT_WITHIN = 0.05
# A round during which other processes took more than this many cores of CPU is dropped and run again, as
# long as dropped rounds stay under this share of the race's rounds, and until this many rounds in a row
# were loaded: then the load is the machine's state, not a burst, and rerunning would only lengthen the race.
BUSY_CORES = 0.25
MAX_DROPPED_SHARE = 0.5
STEADY_LOAD_ROUNDS = 3
# Window indices of race epochs start here, so they never reuse a trial window's offset into the data.
RACE_WINDOW_OFFSET = 100
# Each race epoch is the second of a two-epoch fit, timed from the end of the first: an epoch as the user's
# training runs it, with whatever Keras does between epochs, and no first-epoch cost.
FIT_EPOCHS = 2


@dataclass(frozen=True)
class Interleaved:
    """Epoch throughputs of several settings timed round-robin (A B C A B C ...), and the race's leader."""

    samples: dict[LoaderConfig, tuple[float, ...]]
    peak_memory_bytes: dict[LoaderConfig, int]
    failures: dict[LoaderConfig, str]
    leader: LoaderConfig | None = None
    stopped_because: str = ""
    load: RaceLoad = RaceLoad()

    def compare(self, faster: LoaderConfig, slower: LoaderConfig) -> Confirmation | None:
        """``faster`` over ``slower``: the median of their per-round ratios over the rounds that timed both,
        with the sign test's interval (``paired_median_interval``); None if either has no epochs."""
        shared = self.shared_rounds([faster, slower])
        if len(shared) < 2:
            return None
        a, b = shared[faster], shared[slower]
        interval = paired_median_interval(a, b, CONFIDENCE)
        return Confirmation(a, b, interval.ratio, interval.low, interval.high, interval.confidence, interval.is_range)

    def verdict(self, best: LoaderConfig) -> tuple[LoaderConfig, Confirmation | None, Confirmation | None]:
        """What to recommend: ``(chosen, best over the defaults, tf.data over chosen)``.

        ``best`` is chosen when its interval over the defaults excludes 1, or
        when it was ahead in each of five or more rounds (a race that ran out
        of time before six rounds, under load say: the claim stays a range);
        else the defaults. tf.data is judged against what is recommended:
        when the defaults are kept, switching to tf.data would replace them.
        """
        confirmation = self.compare(best, KERAS_DEFAULTS) if best != KERAS_DEFAULTS else None
        ahead = confirmation and (confirmation.significant or confirmation.ahead_in_every_round)
        chosen = best if ahead else KERAS_DEFAULTS
        return chosen, confirmation, self.compare(LoaderConfig.tf_data(), chosen)

    def shared_rounds(self, configs: Collection[LoaderConfig]) -> dict[LoaderConfig, tuple[float, ...]]:
        """The epochs of those ``configs`` that were timed, from the rounds that timed all of them.

        A contender leaves the race for good, so every setting's epochs are
        the race's first rounds and the shared rounds are the shortest one's.
        Comparing more than those would undo the interleaving: a leader's
        extra rounds may fall in a faster phase of the machine.
        """
        timed = [config for config in configs if self.samples.get(config)]
        kept = min((len(self.samples[config]) for config in timed), default=0)
        return {config: self.samples[config][:kept] for config in timed}


def decided(confirmation: Confirmation | None) -> bool:
    """True when more rounds would not change the answer: the interval excludes 1 within +-10%, or includes
    1 within +-5%."""
    if confirmation is None or confirmation.is_range:
        return False
    excludes_one = confirmation.speedup_low > 1.0 or confirmation.speedup_high < 1.0
    return confirmation.half_width <= (DECIDED_WITHIN if excludes_one else EQUIVALENT_WITHIN)


def interleave(
    measurer: Measurer,
    configs: list[LoaderConfig],
    *,
    epoch_batches: int,
    choice_rounds: int,
    max_rounds: int,
    deadline: float = math.inf,
    choose: Callable[[Interleaved], LoaderConfig] | None = None,
    challengers: Collection[LoaderConfig] = (),
) -> Interleaved:
    """Races ``configs`` round-robin, one epoch each per round, until the race is decided.

    For ``choice_rounds`` every setting runs; then ``choose`` (default: the
    first setting) names the leader among them, and the settings that are
    neither the leader, the defaults nor a challenger leave. From then on
    the defaults race the leader until their comparison is ``decided``, and
    a challenger (tf.data) races while it is ahead of the leader and
    undecided: more rounds go only to a question they can still answer yes.
    A round during which other processes took more than ``BUSY_CORES`` of
    CPU is dropped and run again, up to ``MAX_DROPPED_SHARE`` of the rounds
    and ``STEADY_LOAD_ROUNDS`` in a row; later loaded rounds are kept and
    counted. The race also ends at
    ``max_rounds`` (dropped ones included) or once ``deadline``
    (``time.monotonic()``) has passed after the choice. A setting that stops
    is dropped and its reason kept.
    """
    state = _RaceState(configs)
    reason = f"it ran the {max_rounds} rounds allowed"
    for round_index in range(max_rounds):
        load = _run_round(measurer, state, round_index, epoch_batches)
        state.loaded_in_a_row = state.loaded_in_a_row + 1 if load > BUSY_CORES else 0
        if load > BUSY_CORES:
            state.peak_load = max(state.peak_load, load)
            if state.loaded_in_a_row <= STEADY_LOAD_ROUNDS and state.dropped < MAX_DROPPED_SHARE * max_rounds:
                state.drop_last_round()
                continue
            state.loaded += 1
        if len(state.racing) < 2:
            reason = "fewer than two settings were left to compare"
            break
        kept = len(state.samples[state.racing[0]])
        if kept == choice_rounds and not state.chosen:
            state.leader, state.chosen = choose(state.result()) if choose else state.leader, True
            state.racing = [c for c in state.racing if c in (state.leader, KERAS_DEFAULTS) or c in challengers]
        if kept >= choice_rounds:
            if state.leader not in state.racing:
                reason = f"{state.leader.label()} stopped"
                break
            so_far = state.result()
            state.racing = [state.leader] + [c for c in state.racing if c != state.leader
                                             and _still_open(so_far, c, state.leader, challengers)]
            if len(state.racing) < 2:
                reason = "every comparison with the answer was decided"
                break
            if time.monotonic() > deadline:
                reason = "it reached the time budget (--time-budget) undecided"
                break
    return state.result(reason)


class _RaceState:
    """What the race has timed so far, which settings still run, and how many rounds ran under load."""

    def __init__(self, configs: list[LoaderConfig]):
        self.samples = {config: [] for config in configs}
        self.peaks = {config: 0 for config in configs}
        self.failures: dict[LoaderConfig, str] = {}
        self.racing, self.leader, self.chosen = list(configs), configs[0], False
        self.dropped = self.loaded = self.loaded_in_a_row = 0
        self.peak_load = 0.0
        self.last_round: list[LoaderConfig] = []

    def drop_last_round(self) -> None:
        for config in self.last_round:
            self.samples[config].pop()
        self.dropped += 1

    def result(self, stopped_because: str = "") -> Interleaved:
        load = RaceLoad(self.dropped, self.loaded, self.peak_load)
        return Interleaved({c: tuple(v) for c, v in self.samples.items() if v}, self.peaks, self.failures,
                           self.leader, stopped_because, load)


def _run_round(measurer: Measurer, state: _RaceState, round_index: int, epoch_batches: int) -> float:
    """One epoch of every racing setting; returns the most CPU other processes took during any of them."""
    state.last_round, load = [], 0.0
    for config in state.racing:
        try:
            measurement = measurer.measure(config, RACE_WINDOW_OFFSET + round_index, epochs=FIT_EPOCHS)
        except TrialStopped as stop:
            state.failures[config] = stop.reason
            continue
        state.samples[config].append(epoch_throughput(measurement.timing, epoch_batches))
        state.peaks[config] = max(state.peaks[config], measurement.peak_memory_bytes)
        state.last_round.append(config)
        load = max(load, measurement.foreign_cores)
    state.racing = [config for config in state.racing if config not in state.failures]
    return load


def _still_open(race: Interleaved, contender: LoaderConfig, leader: LoaderConfig,
                challengers: Collection[LoaderConfig]) -> bool:
    """True while more rounds could still change what is said about ``contender`` against the leader: for
    the defaults, until the comparison is decided; for a challenger, while it is ahead and undecided."""
    comparison = race.compare(leader, contender)
    if comparison is None:
        return False
    if contender in challengers:
        return comparison.speedup < 1.0 and not decided(comparison)
    return not decided(comparison)


def race_rivals(trials: tuple[TrialResult, ...], chosen: TrialResult, ceiling: CeilingReached,
                count: int = RIVALS, margin: float = RIVAL_MARGIN) -> list[LoaderConfig]:
    """The fastest other trials within ``margin`` of the fastest, which race the study's choice; none once
    the best trial reached the ceiling.

    Two or three windows per trial leave the ranking of near-equal settings
    to chance; interleaved epochs settle it. At the ceiling every setting
    near the best runs at what Keras's own pipeline allows, so there is
    nothing to settle. (tf.data still races there: it replaces the Keras
    data path the ceiling was measured through.)
    """
    ranked = sorted(completed(trials), key=lambda t: -t.epoch_batches_per_second.median)
    if not ranked or ceiling.reached(trials):
        return []
    floor = (1.0 - margin) * ranked[0].epoch_batches_per_second.median
    return [t.config for t in ranked if t.config != chosen.config
            and t.epoch_batches_per_second.median >= floor][:count]


def confirmed_best(race: Interleaved, candidates: list[LoaderConfig], *, waiting: bool = False,
                   tolerance: float = CONFIRMED_NEAR_BEST, seed: int = 0) -> LoaderConfig:
    """The race's choice among ``candidates``, from the rounds every one of them ran.

    By default, the simplest candidate within ``tolerance`` of the fastest:
    close, not merely near, because the candidates sit around the knee of
    the throughput curve, where one worker more or less matters most.

    For data code that ``waits`` (``DatasetProfile.waits``), the candidate
    with the most batches in flight among those the race cannot tell from
    the fastest (their interval against it includes 1), threads before
    processes. For waiting code the knee moves with the machine's load; a
    thread above it costs a queue slot, one below it throughput whenever
    the machine runs faster (docs/search.md has the measurements).
    """
    rounds = race.shared_rounds(candidates)
    if not rounds:  # every candidate stopped
        return candidates[0]
    medians = {config: statistics.median(epochs) for config, epochs in rounds.items()}
    fastest = max(medians, key=medians.get)
    if waiting:
        level = [config for config in rounds if config == fastest or bootstrap_ratio_interval(
            rounds[config], rounds[fastest], confidence=CONFIDENCE, seed=seed)[2] >= 1.0]
        return min(level, key=lambda c: (c.use_multiprocessing, -c.effective_parallelism, c.simplicity))
    return min((c for c, m in medians.items() if m >= (1.0 - tolerance) * medians[fastest]),
               key=lambda c: c.simplicity)
