"""The race inside the user's training (``tuner.fit``): which setting trains the next epoch, and what the
epochs so far chose.

The first epoch is the warm-up (it traces the step) and is not compared. After it, a round trains one whole
epoch with each setting still racing, the best known first. After each round the rules of ``decision.py``
send away the settings clearly slower than the leader, as in the CLI's race; once none left could beat the
leader by more than ``decision.SETTLED_MARGIN`` the race is settled. An epoch of any setting other than the
best known when it starts is exploration, and exploration is bounded (``exploration_bound``): when the next
round would pass the bound, the race ends and the best expected setting (``decision.choice``) trains the
rest. Every epoch trains the model either way: exploring costs time, never data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tuner.core import LoaderConfig
from tuner.outcomes import Departure, LeaveKind, RaceEnd, RaceStop
from tuner.results import Confirmation
from tuner.search import decision

# At most this share of the user's epochs, and at most this many, run a setting other than the best known.
EXPLORE_SHARE = 0.20
MAX_EXPLORE_EPOCHS = 6


def exploration_bound(epochs: int) -> int:
    """How many of ``epochs`` (the warm-up counted) may explore."""
    return min(MAX_EXPLORE_EPOCHS, int(EXPLORE_SHARE * epochs))


@dataclass
class EpochRace:
    """The race's state: ``contenders`` best known first; each setting's epoch throughputs by round."""

    contenders: Sequence[LoaderConfig]
    bound: int
    samples: dict[LoaderConfig, list[float]] = field(default_factory=dict)
    racing: list[LoaderConfig] = field(default_factory=list)
    failures: dict[LoaderConfig, str] = field(default_factory=dict)
    left: dict[LoaderConfig, Departure] = field(default_factory=dict)
    explored: int = 0
    rounds: int = 0
    stop: RaceStop | None = None
    _round: list[LoaderConfig] = field(default_factory=list)  # what the current round has still to train
    _winner: LoaderConfig | None = None

    def __post_init__(self):
        self.racing = list(dict.fromkeys(self.contenders))
        self.samples = {config: [] for config in self.racing}
        if len(self.racing) < 2:
            self._finish(RaceEnd.SETTLED)

    @property
    def best_known(self) -> LoaderConfig:
        """The leader over the rounds every racing setting ran; before the first round, the first contender."""
        if self._winner is not None:
            return self._winner
        if self.rounds == 0:
            return self.racing[0]
        return decision.leader(self.samples, self.racing)

    @property
    def over(self) -> bool:
        return self.stop is not None

    def next_setting(self) -> LoaderConfig:
        """The setting that trains the next epoch (the warm-up's too: the best known)."""
        if self.over:
            return self.best_known
        if not self._round:
            if self.explored + len(self.racing) - 1 > self.bound:
                self._finish(RaceEnd.ROUNDS)
                return self.best_known
            best = self.best_known
            self._round = [best] + [config for config in self.racing if config != best]
        return self._round[0]

    def record(self, config: LoaderConfig, batches_per_second: float) -> None:
        """One timed epoch of ``config``, the setting ``next_setting`` named."""
        if self.over or not self._round or self._round[0] != config:
            return  # an epoch of the winner, or of the warm-up: not a race epoch
        self.explored += config != self.best_known
        self._round.pop(0)
        self.samples[config].append(batches_per_second)
        if not self._round:
            self.rounds += 1
            self._judge()

    def abandon(self, config: LoaderConfig, reason: str) -> None:
        """``config`` failed: it leaves at once, and the round goes on without it."""
        self.failures[config] = reason
        if config in self.racing:
            self.racing.remove(config)
        if config in self._round:
            self._round.remove(config)
        self.samples[config] = self.samples[config][:self.rounds]
        if not self.racing:
            self._finish(RaceEnd.ALL_STOPPED)
        elif len(self.racing) == 1:
            self._finish(RaceEnd.SETTLED)
        elif not self._round and self.rounds:
            self._judge()

    def winner(self) -> LoaderConfig:
        """The answer: the setting the rest of training runs."""
        return self.best_known

    def against(self, baseline: LoaderConfig) -> Confirmation | None:
        """The winner over ``baseline`` in the rounds that timed both (None when they did not share two)."""
        winner = self.winner()
        if winner == baseline or not self.samples.get(baseline):
            return None
        rounds = self._complete_rounds()
        return decision.compare(rounds, winner, baseline, self._noise(rounds))

    def _complete_rounds(self) -> dict[LoaderConfig, list[float]]:
        return {config: values[:self.rounds] for config, values in self.samples.items() if values}

    def _noise(self, rounds) -> decision.Noise:
        return decision.pooled_noise(rounds, decision.leader(rounds, [c for c in self.racing if rounds.get(c)]
                                                             or list(rounds)), list(rounds))

    def _judge(self) -> None:
        """After a round: the far-below leave after the first, the clearly slower after later ones; settled
        once no setting left could beat the leader by the settled margin."""
        rounds, leader = self.samples, decision.leader(self.samples, self.racing)
        if self.rounds < decision.FIRST_VERDICT_ROUND:
            for config in [c for c in self.racing if c != leader and decision.far_below(rounds, c, leader)]:
                self._leave(config, LeaveKind.FAR_BELOW, leader)
        else:
            noise = decision.pooled_noise(rounds, leader, self.racing)
            for config in [c for c in self.racing if c != leader and decision.clearly_slower(rounds, c, leader, noise)]:
                self._leave(config, LeaveKind.CLEARLY_SLOWER, leader)
            if not any(decision.could_beat(rounds, c, leader, noise) for c in self.racing if c != leader):
                answer = decision.choice(rounds, self.racing)
                for config in [c for c in self.racing if c != answer]:
                    self._leave(config, LeaveKind.SETTLED, answer)
        if len(self.racing) == 1:
            self._finish(RaceEnd.SETTLED)

    def _leave(self, config: LoaderConfig, why: LeaveKind, than: LoaderConfig) -> None:
        self.racing.remove(config)
        self.left[config] = Departure(why, than, self.rounds)

    def _finish(self, end: RaceEnd) -> None:
        """Ends the race: the simplest of the settings racing within ``decision.NEAR_LEADER`` of the best
        expected throughput trains on (the first contender when nothing was timed)."""
        timed = [config for config in self.racing if len(self.samples.get(config, ())) >= max(self.rounds, 1)]
        self._winner = (decision.choice(self._complete_rounds(), timed) if timed and self.rounds
                        else (self.racing or list(self.contenders))[0])
        self._round = []
        self.stop = RaceStop(end, self._winner, rounds=self.rounds)
