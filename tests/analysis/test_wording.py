"""The sentences built from how the search's steps ended (``analysis.wording``): every value has its words."""

from tuner.analysis import wording
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.outcomes import Departure, LeaveKind, OpenQuestion, RaceEnd, RaceStop, ScreenStop

FOUR = LoaderConfig(4, False, 10)


def test_each_way_the_screen_ends_has_its_sentence():
    assert wording.screen_stop(ScreenStop(12)) == "it screened all 12 candidates"
    assert wording.screen_stop(ScreenStop(12, out_of_time=5)).startswith(
        "it left 5 of 12 candidates unscreened so that the race fits in the time budget (--time-budget)")
    skipped = wording.screen_stop(ScreenStop(12, beyond_reach=2))
    assert skipped.startswith("it screened 10 of 12 candidates; 2 with more workers of a kind already screened")


def test_each_way_the_race_ends_names_what_it_needs():
    assert wording.race_stop(RaceStop(RaceEnd.SETTLED, FOUR), LoaderConfig.label).startswith(
        "no setting left in it could beat 4 threads, queue 10 by more than 3%")
    assert wording.race_stop(RaceStop(RaceEnd.ROUNDS, rounds=30), LoaderConfig.label) == "it ran the 30 rounds allowed"
    assert wording.race_stop(RaceStop(RaceEnd.ALL_STOPPED), LoaderConfig.label) == "every setting in it stopped"
    open_ = RaceStop(RaceEnd.TIME_BUDGET, FOUR, (OpenQuestion.NEAR_LEADER, OpenQuestion.CLAIM, OpenQuestion.TF_DATA), 2)
    assert wording.race_stop(open_, LoaderConfig.label) == (
        "it reached the time budget (--time-budget) with 2 setting(s) that could still beat 4 threads, queue 10 by "
        "more than 3% and the claim against the defaults undecided and tf.data's comparison undecided")


def test_every_way_to_leave_the_race_has_words_naming_the_setting_compared_with():
    for kind in LeaveKind:
        assert FOUR.label() in wording.departure(Departure(kind, FOUR, 3), LoaderConfig.label), kind
    assert wording.departure(Departure(LeaveKind.CLEARLY_SLOWER, FOUR, 3), LoaderConfig.label) == (
        "clearly slower than 4 threads, queue 10 after 3 rounds")
    assert wording.departure(Departure(LeaveKind.CLAIM_DECIDED, KERAS_DEFAULTS, 2), LoaderConfig.label).endswith("was decided")
