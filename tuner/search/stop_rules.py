"""When the search stops. Each rule is a small object; the first whose ``reason`` is not None ends the
search, and that sentence is what the report says about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tuner.analysis.predict import FREE_DATA_CEILING
from tuner.results import TrialResult, best_rate


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
