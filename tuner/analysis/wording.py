"""The sentences that say how the search's steps ended, built from their values (``tuner.outcomes``): why
the screen and the race stopped, why a setting left the race. results.json, the report and the reasons all
read them from here. A setting is named by its engine's ``label`` (``KnobSet.label``)."""

from __future__ import annotations

from tuner.core import Label
from tuner.outcomes import Departure, LeaveKind, OpenQuestion, RaceEnd, RaceStop, ScreenStop
from tuner.search import decision

MARGIN = f"{decision.SETTLED_MARGIN:.0%}"


def screen_stop(stop: ScreenStop) -> str:
    if stop.out_of_time:
        said = (f"it left {stop.out_of_time} of {stop.candidates} candidates unscreened so that the race fits in "
                "the time budget (--time-budget); the analytic model ranked them lowest")
    elif stop.beyond_reach:
        said = f"it screened {stop.candidates - stop.beyond_reach} of {stop.candidates} candidates"
    else:
        said = f"it screened all {stop.candidates} candidates"
    return said + (f"; {stop.beyond_reach} with more workers of a kind already screened far below the best were "
                   "not screened: even at linear scaling they could not reach the race" if stop.beyond_reach else "")


def race_stop(stop: RaceStop, label: Label) -> str:
    if stop.end == RaceEnd.SETTLED:
        return (f"no setting left in it could beat {label(stop.leader)} by more than {MARGIN}, and every "
                "comparison it reports was decided")
    if stop.end == RaceEnd.ROUNDS:
        return f"it ran the {stop.rounds} rounds allowed"
    if stop.end == RaceEnd.ALL_STOPPED:
        return "every setting in it stopped"
    return ("it reached the time budget (--time-budget) with "
            + " and ".join(_open(stop, question, label) for question in stop.questions))


def epoch_race_stop(stop: RaceStop, bound: int, label: Label) -> str:
    """Why ``tuner.fit``'s race over the user's epochs ended."""
    if stop.end == RaceEnd.SETTLED:
        return f"no setting left in it could beat {label(stop.leader)} by more than {MARGIN}"
    if stop.end == RaceEnd.ALL_STOPPED:
        return "every setting in it failed, so the setting the data was built with trained on"
    return (f"another round would have passed the bound on exploration ({bound} epochs of the training), so "
            f"the best expected, {label(stop.leader)}, trained on")


def _open(stop: RaceStop, question: OpenQuestion, label: Label) -> str:
    if question == OpenQuestion.NEAR_LEADER:
        return f"{stop.near} setting(s) that could still beat {label(stop.leader)} by more than {MARGIN}"
    if question == OpenQuestion.CLAIM:
        return "the claim against the defaults undecided"
    return "tf.data's comparison undecided"


def departure(left: Departure, label: Label) -> str:
    than = label(left.than)
    return {
        LeaveKind.FAR_BELOW: f"far below {than} in the first round",
        LeaveKind.CLEARLY_SLOWER: f"clearly slower than {than} after {left.rounds} rounds",
        LeaveKind.SETTLED: f"settled: it could not beat {than} by more than {MARGIN}",
        LeaveKind.CLAIM_DECIDED: f"the claim of {than} against them was decided",
        LeaveKind.CANNOT_BEAT: f"it could not beat {than} by more than {MARGIN}",
        LeaveKind.LEAD_DECIDED: f"its lead over {than} was decided",
    }[left.kind]
