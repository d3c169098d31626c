"""When the search stops. Each rule is a small object; the first whose ``reason`` is not None ends the
search, and that sentence is what the report says about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tuner.analysis.predict import FREE_DATA_CEILING
from tuner.results import KERAS_DEFAULTS, ROUNDS_FOR_ONE_SIDED, TrialResult, best_rate, completed


@dataclass(frozen=True)
class SearchState:
    """What the rules judge: the trials so far, how many were starting settings, and the time spent."""

    trials: Sequence[TrialResult]
    starts: int
    elapsed_seconds: float


class StopRule(Protocol):
    def reason(self, state: SearchState) -> str | None:
        """Why the search should stop now, as a sentence, or None to go on."""


@dataclass(frozen=True)
class TrialLimit:
    max_trials: int

    def reason(self, state: SearchState) -> str | None:
        if len(state.trials) >= self.max_trials:
            return f"it measured the {self.max_trials} trials allowed (--trials)"
        return None


@dataclass(frozen=True)
class TimeBudget:
    seconds: float

    def reason(self, state: SearchState) -> str | None:
        if state.elapsed_seconds >= self.seconds:
            return f"it used its time budget of {self.seconds:.0f} s (--time-budget)"
        return None


@dataclass(frozen=True)
class RaceReserve:
    """Leaves the final race time to decide inside the budget: the search stops once what is left of
    ``budget_seconds`` would not fit the race's rounds, up to ``max_share`` of the budget.

    The race first times the leader, a rival, the defaults and tf.data for
    ``choice_rounds``, then the leader and the defaults until at least
    ``ROUNDS_FOR_ONE_SIDED`` rounds, each a fit of ``fit_epochs`` epochs. The
    best trial and the defaults (measured, else ``default_batches_per_second``
    from the analytic model) set the epochs' length; a rival is counted as long
    as the leader, and tf.data as the defaults.
    """

    budget_seconds: float
    epoch_batches: int
    default_batches_per_second: float
    fit_epochs: int
    choice_rounds: int
    max_share: float = 0.5

    def seconds(self, trials: Sequence[TrialResult]) -> float:
        best = best_rate(trials)
        if not best:
            return 0.0
        timed_defaults = [t.epoch_batches_per_second.median for t in completed(trials)
                          if t.config.equivalence_key() == KERAS_DEFAULTS.equivalence_key()]
        default = timed_defaults[0] if timed_defaults else self.default_batches_per_second
        pair = self.epoch_batches / best + self.epoch_batches / default
        rounds = 2 * self.choice_rounds + max(0, ROUNDS_FOR_ONE_SIDED - self.choice_rounds)
        return min(self.fit_epochs * pair * rounds, self.max_share * self.budget_seconds)

    def reason(self, state: SearchState) -> str | None:
        reserve = self.seconds(state.trials)
        if not reserve or state.elapsed_seconds + reserve < self.budget_seconds:
            return None
        return (f"the final race needs about {reserve:.0f} s of the {self.budget_seconds:.0f} s time budget "
                "(--time-budget) to decide")


@dataclass(frozen=True)
class Patience:
    """The last ``trials`` trials after the starting ones beat the best before them by no more than
    ``min_improvement``."""

    trials: int
    min_improvement: float

    def reason(self, state: SearchState) -> str | None:
        if len(state.trials) < state.starts + self.trials:
            return None
        before = best_rate(state.trials[: -self.trials])
        if best_rate(state.trials) > before * (1.0 + self.min_improvement):
            return None
        return (f"{self.trials} trials in a row after the starting ones did not beat the best by more "
                f"than {self.min_improvement:.0%}")


@dataclass(frozen=True)
class CeilingReached:
    """The best trial is within ``share`` of what no setting can beat (``meaning`` names that bound).

    The bound comes from the probes, which are noisy themselves, so it can
    stop the search only once every starting setting has run.
    """

    batches_per_second: float | None
    share: float = 0.95
    meaning: str = FREE_DATA_CEILING

    def reached(self, trials: Sequence[TrialResult]) -> bool:
        """True when searching on, or racing rivals, cannot gain more than the probes' noise."""
        return bool(self.batches_per_second) and best_rate(trials) >= self.share * self.batches_per_second

    def reason(self, state: SearchState) -> str | None:
        if len(state.trials) < state.starts or not self.reached(state.trials):
            return None
        best, limit = best_rate(state.trials), self.batches_per_second
        if best > limit:
            return (f"the best trial, {best:.1f} batches/s, measured above {self.meaning} as the probes put it "
                    f"({limit:.1f} batches/s): no setting can beat it by more than the probes' noise")
        return f"the best trial reached {self.share:.0%} of {self.meaning}, {limit:.1f} batches/s, which no setting can beat"


def first_reason(rules: Sequence[StopRule], state: SearchState) -> str | None:
    return next((reason for rule in rules if (reason := rule.reason(state))), None)
