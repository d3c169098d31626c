"""The final race: the study's choice, its closest rivals, the defaults and tf.data, timed round-robin.

Interleaving (A B C, A B C, ...) spreads the machine's slow drift over every
side, as asv does; the speed-up over the defaults is claimed only when its
interval excludes 1.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection
from dataclasses import dataclass

from probes.stats import bootstrap_ratio_interval
from tuner.analysis.epoch_model import epoch_throughput
from tuner.results import KERAS_DEFAULTS, Confirmation, LoaderConfig, TrialResult, completed
from tuner.search.measurer import Measurer, TrialStopped
from tuner.search.stop_rules import CeilingReached

CONFIDENCE = 0.95
CONFIRMED_NEAR_BEST = 0.01
RIVALS = 2
RIVAL_MARGIN = 0.10
# Window indices of race epochs start here, so they never reuse a trial window's offset into the data.
RACE_WINDOW_OFFSET = 100


@dataclass(frozen=True)
class Interleaved:
    """Epoch throughputs of several settings timed round-robin (A B C A B C ...)."""

    samples: dict[LoaderConfig, tuple[float, ...]]
    peak_memory_bytes: dict[LoaderConfig, int]
    failures: dict[LoaderConfig, str]

    def compare(self, faster: LoaderConfig, slower: LoaderConfig, seed: int = 0) -> Confirmation | None:
        """``faster`` over ``slower`` with a bootstrap interval over the rounds that timed both, or None
        if either has no epochs."""
        shared = self.shared_rounds([faster, slower])
        if len(shared) < 2:
            return None
        a, b = shared[faster], shared[slower]
        speedup, low, high = bootstrap_ratio_interval(a, b, confidence=CONFIDENCE, seed=seed)
        return Confirmation(a, b, speedup, low, high, CONFIDENCE)

    def verdict(self, best: LoaderConfig, seed: int = 0) -> tuple[LoaderConfig, Confirmation | None, Confirmation | None]:
        """What to recommend: ``(chosen, best over the defaults, tf.data over chosen)``.

        ``best`` is chosen when its interval over the defaults excludes 1,
        else the defaults. tf.data is judged against what is recommended:
        when the defaults are kept, switching to tf.data would replace them.
        """
        confirmation = self.compare(best, KERAS_DEFAULTS, seed) if best != KERAS_DEFAULTS else None
        chosen = best if confirmation and confirmation.significant else KERAS_DEFAULTS
        return chosen, confirmation, self.compare(LoaderConfig.tf_data(), chosen, seed)

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

    After ``min_rounds`` a contender leaves once its interval against the
    leader excludes 1 (racing, as in F-race), or once more epochs could no
    longer answer its question yes: for the defaults, whether the leader
    beats them (the leader must be ahead); for a challenger (tf.data),
    whether it beats the leader (it must be ahead). Contenders in ``brief``
    (near-equal rivals) leave after ``min_rounds`` whatever their interval.
    A setting that stops is dropped and its reason kept.
    """
    leader = configs[0]
    samples = {config: [] for config in configs}
    peaks = {config: 0 for config in configs}
    failures: dict[LoaderConfig, str] = {}
    racing = list(configs)
    for round_index in range(max_rounds):
        for config in racing:
            try:
                measurement = measurer.measure(config, RACE_WINDOW_OFFSET + round_index)
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
    ahead = statistics.median(contender) > statistics.median(leader)
    return ahead if challenger else not ahead


def _settled(contender: list[float], leader: list[float], seed: int) -> bool:
    """True when the contender's interval against the leader excludes 1 either way."""
    _, low, high = bootstrap_ratio_interval(contender, leader, confidence=CONFIDENCE, seed=seed)
    return low > 1.0 or high < 1.0


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
