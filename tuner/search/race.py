"""The race: the screen's finalists, the defaults and tf.data, timed round-robin until the answer is clear.

Interleaving (A B C, A B C, ...) spreads the machine's slow drift over every side, as asv does. Each round
times every setting still racing once, as the user's training runs it (``RacePlan``); after each round the
rules of ``decision.py`` send away the settings that are clearly slower than the leader, and the race ends
once no question it answers is open: which setting is fastest (to within 3%), how it compares with the
defaults, and whether tf.data beats it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.measure.epoch_model import epoch_throughput
from tuner.outcomes import Departure, Interleaved, LeaveKind, OpenQuestion, RaceEnd, RaceStop
from tuner.results import RaceLoad
from tuner.search import decision
from tuner.search.measurer import Measurement, Measurer, TrialStopped

# A round during which other processes took more than this many cores of CPU is dropped and run again, as
# long as dropped rounds stay under this share of the race's rounds, and until this many rounds in a row
# were loaded: then the load is the machine's state, not a burst, and rerunning would only lengthen the race.
BUSY_CORES = 0.25
MAX_DROPPED_SHARE = 0.5
STEADY_LOAD_ROUNDS = 3
# Window indices of race epochs start here, so they never reuse a screen window's offset into the data.
RACE_WINDOW_OFFSET = 100


@dataclass(frozen=True)
class RacePlan:
    """How a setting is timed in each round: one ``fit`` of ``epochs`` epochs of ``batches`` batches,
    every epoch but the first timed (``EpochClock.timing``)."""

    batches: int
    epochs: int


def run_race(measurer: Measurer, keras: Sequence[LoaderConfig], plan: Callable[[LoaderConfig], RacePlan], *,
             epoch_batches: int, tf_data: LoaderConfig | None = None, deadline: float = math.inf,
             max_rounds: int = decision.MAX_ROUNDS,
             on_round: Callable[[int, LoaderConfig, int], None] | None = None) -> Interleaved:
    """Races the Keras settings ``keras`` (the defaults among them) and ``tf_data``, round by round.

    It runs until nothing is left open (``_open_questions``), until a round
    would end well past ``deadline`` (``time.monotonic()``; the next round,
    with fewer settings, is taken to last half the last one), or
    ``max_rounds``; never
    fewer than ``decision.FIRST_VERDICT_ROUND`` rounds, so even a lone
    setting is timed as the user's training runs it. A round during which
    other processes took more than ``BUSY_CORES`` of CPU is dropped and run
    again (``_RaceState.keep_round``) while a round as long fits before
    ``deadline``; past it, the round is kept and counted as loaded. A
    setting that stops is dropped with its reason. ``on_round(rounds,
    leader, racing)`` follows every round kept.
    """
    state = _RaceState(list(keras) + ([tf_data] if tf_data else []), tf_data)
    for round_index in range(max_rounds):
        began = time.monotonic()
        load = _run_round(measurer, state, round_index, plan, epoch_batches)
        rerun_fits = time.monotonic() + (time.monotonic() - began) <= deadline
        if not state.keep_round(load, max_rounds, rerun_fits):
            continue
        if not state.keras_racing():
            stop = RaceStop(RaceEnd.ALL_STOPPED)
            break
        if on_round:
            on_round(state.rounds, decision.choice(state.samples, state.candidates()), len(state.racing))
        if state.rounds < decision.FIRST_VERDICT_ROUND:
            _send_away_far_below(state)
            continue
        stop = _open_questions(state)
        if stop.settled or time.monotonic() + (time.monotonic() - began) / 2 > deadline:
            break  # settled, or the next round (shorter, with fewer settings) would end past the deadline
    else:
        stop = RaceStop(RaceEnd.ROUNDS, rounds=max_rounds)
    return state.result(stop)


class _RaceState:
    """What the race has timed so far, which settings still run, and how many rounds ran under load."""

    def __init__(self, configs: list[LoaderConfig], tf_data: LoaderConfig | None):
        self.samples = {config: [] for config in configs}
        self.peaks = {config: 0 for config in configs}
        self.failures: dict[LoaderConfig, str] = {}
        self.rerun: dict[LoaderConfig, str] = {}  # the claim's baseline is timed again once when it fails
        self.left: dict[LoaderConfig, Departure] = {}
        self.racing, self.tf_data = list(configs), tf_data
        self.defaults_beaten = False  # the defaults race on only for the claim
        self.pooled = decision.Noise()  # a round's noise as the race knows it (decision.pooled_noise)
        self.within: dict[LoaderConfig, list[float]] = {config: [] for config in configs}
        self.fit_seconds: dict[LoaderConfig, list[float]] = {config: [] for config in configs}  # what a fit costs
        self.rounds = self.dropped = self.loaded = self.loaded_in_a_row = 0
        self.peak_load = 0.0
        self.last_round: list[LoaderConfig] = []

    def keras_racing(self) -> list[LoaderConfig]:
        return [config for config in self.racing if config != self.tf_data]

    def candidates(self) -> list[LoaderConfig]:
        """The Keras settings that may still be the answer."""
        return [c for c in self.keras_racing() if not (c == KERAS_DEFAULTS and self.defaults_beaten)]

    def keep_round(self, load: float, max_rounds: int, rerun_fits: bool = True) -> bool:
        """Counts the round just run, or drops it when others loaded the machine: up to
        ``MAX_DROPPED_SHARE`` of the rounds and ``STEADY_LOAD_ROUNDS`` in a row, and only while its rerun
        fits in the time budget (``rerun_fits``): a rerun past it cost one tune 40 s over its budget."""
        self.loaded_in_a_row = self.loaded_in_a_row + 1 if load > BUSY_CORES else 0
        if load > BUSY_CORES:
            self.peak_load = max(self.peak_load, load)
            if (rerun_fits and self.loaded_in_a_row <= STEADY_LOAD_ROUNDS
                    and self.dropped < MAX_DROPPED_SHARE * max_rounds):
                for config in self.last_round:
                    self.samples[config].pop()
                    self.within[config].pop()
                self.dropped += 1
                return False
            self.loaded += 1
        self.rounds += 1
        return True

    def leave(self, config: LoaderConfig, why: LeaveKind, than: LoaderConfig) -> None:
        self.racing.remove(config)
        self.left[config] = Departure(why, than, self.rounds)

    def result(self, stop: RaceStop) -> Interleaved:
        samples = {c: tuple(v) for c, v in self.samples.items() if v}
        cost = {config: statistics.fmean(seconds) for config, seconds in self.fit_seconds.items() if seconds}
        verdict = decision.verdict(samples, self.candidates() or self.keras_racing() or list(samples), self.tf_data,
                                   self.pooled, cost)
        return Interleaved(samples, self.peaks, self.failures, self.left, verdict, stop,
                           RaceLoad(self.dropped, self.loaded, self.peak_load), self.rerun)


def _run_round(measurer: Measurer, state: _RaceState, round_index: int, plan: Callable[[LoaderConfig], RacePlan],
               epoch_batches: int) -> float:
    """One fit of every racing setting; returns the most CPU other processes took during any of them."""
    state.last_round, load = [], 0.0
    for config in state.racing:
        steps = plan(config)
        try:
            measurement = _measure(measurer, state, config, RACE_WINDOW_OFFSET + round_index, steps)
        except TrialStopped as stop:
            state.failures[config] = stop.reason
            continue
        timing = measurement.timing
        state.samples[config].append(epoch_throughput(timing, epoch_batches))
        state.within[config].append(timing.epoch_seconds_cv ** 2 / timing.timed_epochs)
        state.peaks[config] = max(state.peaks[config], measurement.peak_memory_bytes)
        state.fit_seconds[config].append(measurement.wall_seconds)
        state.last_round.append(config)
        load = max(load, measurement.foreign_cores)
    state.racing = [config for config in state.racing if config not in state.failures]
    return load


def _measure(measurer: Measurer, state: _RaceState, config: LoaderConfig, window: int,
             steps: RacePlan) -> Measurement:
    """One fit of ``config``. The defaults are every claim's baseline, so a failure of theirs is timed
    again once, at once (a stall seen once in an inline epoch did not come back), and kept in ``rerun``."""
    try:
        return measurer.measure(config, window, epochs=steps.epochs, batches=steps.batches)
    except TrialStopped as stop:
        if config != KERAS_DEFAULTS or state.rerun:
            raise
        state.rerun[config] = stop.reason
        return measurer.measure(config, window, epochs=steps.epochs, batches=steps.batches)


def _send_away_far_below(state: _RaceState) -> None:
    """After the first round, the settings far below the leader leave (never the defaults: the claim needs
    them), so a round is not spent on a question one round answered."""
    leader = decision.leader(state.samples, state.candidates())
    for config in [c for c in state.racing if c not in (leader, KERAS_DEFAULTS)]:
        if decision.far_below(state.samples, config, leader):
            state.leave(config, LeaveKind.FAR_BELOW, leader)


def _open_questions(state: _RaceState) -> RaceStop:
    """Sends away the settings the rounds so far have answered for, and says how the race would stop now:
    settled when nothing is open, else at the time budget with the questions still open.

    A setting clearly slower than the leader leaves. Once none left could
    beat the leader by more than ``SETTLED_MARGIN``, the answer is chosen
    (``decision.choice``) and the others leave: only the claim against the
    defaults and tf.data's challenge may still need rounds. tf.data leaves
    once it cannot beat the leader by that margin either, or its lead is
    decided; the defaults, once they are clearly slower and the claim
    against them is decided.
    """
    rounds, leader = state.samples, decision.leader(state.samples, state.candidates() or state.keras_racing())
    within = {config: statistics.fmean(values) for config, values in state.within.items() if values}
    pooled = state.pooled = decision.pooled_noise(rounds, leader, [c for c in rounds if c != state.tf_data], within)
    for config in state.candidates():
        if config not in (leader, KERAS_DEFAULTS) and decision.clearly_slower(rounds, config, leader, pooled):
            state.leave(config, LeaveKind.CLEARLY_SLOWER, leader)
    near = [c for c in state.candidates() if c != leader and decision.could_beat(rounds, c, leader, pooled)]
    questions = [OpenQuestion.NEAR_LEADER] if near else []
    answer = leader
    if not near:
        answer = decision.choice(rounds, state.candidates())
        for config in [c for c in state.candidates() if c not in (answer, KERAS_DEFAULTS)]:
            state.leave(config, LeaveKind.SETTLED, answer)
    if KERAS_DEFAULTS in state.racing and leader != KERAS_DEFAULTS:
        state.defaults_beaten |= decision.clearly_slower(rounds, KERAS_DEFAULTS, leader, pooled)
        best = decision.choice(rounds, [c for c in state.candidates() if c != KERAS_DEFAULTS])
        claim = decision.compare(rounds, best, KERAS_DEFAULTS, pooled)
        if state.defaults_beaten and decision.decided(claim):
            state.leave(KERAS_DEFAULTS, LeaveKind.CLAIM_DECIDED, best)
        elif not decision.decided(claim):
            questions.append(OpenQuestion.CLAIM)
    if state.tf_data in state.racing:
        challenge = decision.compare(rounds, state.tf_data, leader, pooled)
        if not decision.could_beat(rounds, state.tf_data, leader, pooled):
            state.leave(state.tf_data, LeaveKind.CANNOT_BEAT, leader)
        elif challenge.speedup >= 1.0 and decision.decided(challenge):
            state.leave(state.tf_data, LeaveKind.LEAD_DECIDED, leader)
        else:
            questions.append(OpenQuestion.TF_DATA)
    if not questions:
        return RaceStop(RaceEnd.SETTLED, answer)
    return RaceStop(RaceEnd.TIME_BUDGET, leader, tuple(questions), len(near))

