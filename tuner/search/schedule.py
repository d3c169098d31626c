"""The time budget, in one place: how ``--time-budget`` is spent between the probes, the screen and the race.

The budget counts from the tune's start, so start-up and the probes come off it (under forkserver or spawn
they start fresh interpreters), but the screen and the race keep at least ``MIN_SEARCH_SHARE`` of it. The
two share one deadline: the screen stops while what is left still fits the race's reserve
(``Schedule.race_reserve``), and the race then gets what the screen left (``decision.finalists`` and
``decision.tf_data_fits`` size it to that).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuner.search import decision

MIN_SEARCH_SHARE = 0.5  # of --time-budget, for the screen and the race however long the probes took


@dataclass(frozen=True)
class Schedule:
    """The screen's and the race's share of the time budget (``search_seconds``) and their common
    ``deadline``, on ``clock``."""

    search_seconds: float
    deadline: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after_probes(cls, time_budget: float, spent: float, clock: Callable[[], float] = time.monotonic) -> Schedule:
        """The search's share once ``spent`` seconds of the budget went to start-up and the probes."""
        search = max(MIN_SEARCH_SHARE * time_budget, time_budget - spent)
        return cls(search, clock() + search, clock)

    @classmethod
    def unbounded(cls) -> Schedule:
        return cls(math.inf, math.inf)

    def left(self) -> float:
        return self.deadline - self.clock()

    def race_reserve(self, fit_seconds: Sequence[float]) -> float:
        """What the race needs of the search's share: ``RESERVE_ROUNDS`` rounds of fits this long, at most
        ``MAX_RESERVE_SHARE`` of it."""
        return min(decision.RESERVE_ROUNDS * sum(fit_seconds), decision.MAX_RESERVE_SHARE * self.search_seconds)
