"""How the time budget is spent (``search.schedule``): no clock but the one handed in."""

import pytest

from tuner.search import decision
from tuner.search.schedule import Schedule


def test_the_screen_leaves_the_race_at_most_half_of_the_search():
    schedule = Schedule(100.0, deadline=100.0)
    assert schedule.race_reserve([2.0, 1.0]) == pytest.approx(decision.RESERVE_ROUNDS * 3.0)
    assert Schedule(40.0, deadline=40.0).race_reserve([20.0, 10.0]) == pytest.approx(20.0)


def test_the_screen_and_the_race_share_one_deadline_on_the_clock_given():
    now = [10.0]
    schedule = Schedule.after_probes(50.0, 7.0, clock=lambda: now[0])
    assert schedule.deadline == 53.0
    now[0] = 40.0
    assert schedule.left() == 13.0
    assert Schedule.unbounded().left() == float("inf")
