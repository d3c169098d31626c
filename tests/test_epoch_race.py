"""The race over training epochs (``tuner.search.epoch_race``), driven by fake epoch throughputs."""

import random

from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.outcomes import LeaveKind, RaceEnd
from tuner.search.epoch_race import EpochRace, exploration_bound

THREADS_4 = LoaderConfig(4, False, 10)
THREADS_8 = LoaderConfig(8, False, 16)
PROCESSES_2 = LoaderConfig(2, True, 10)


def train(race: EpochRace, rates: dict, epochs: int, noise: float = 0.01, seed: int = 0) -> list[LoaderConfig]:
    """Runs ``epochs`` epochs after a warm-up, each at the setting the race names, timed at its fake rate."""
    rng = random.Random(seed)
    race.next_setting()  # the warm-up: the best known, not recorded
    ran = []
    for _ in range(epochs - 1):
        config = race.next_setting()
        ran.append(config)
        race.record(config, rates[config] * (1 + rng.gauss(0, noise)))
    return ran


def test_the_bound_is_a_fifth_of_the_epochs_and_at_most_six():
    assert [exploration_bound(n) for n in (4, 5, 20, 29, 30, 100)] == [0, 1, 4, 5, 6, 6]


def test_exploration_stays_within_the_bound_and_the_fastest_trains_the_rest():
    rates = {THREADS_4: 10.0, THREADS_8: 12.0, KERAS_DEFAULTS: 9.5}
    race = EpochRace([THREADS_4, THREADS_8, KERAS_DEFAULTS], exploration_bound(20))
    ran = train(race, rates, 20)
    assert race.winner() == THREADS_8
    exploring = sum(config != race.best_known for config in ran[:race.rounds * 3])
    assert race.explored <= 4 and exploring <= 4
    assert ran[-5:] == [THREADS_8] * 5


def test_a_setting_far_below_leaves_after_one_round():
    race = EpochRace([THREADS_8, KERAS_DEFAULTS], exploration_bound(30))
    train(race, {THREADS_8: 10.0, KERAS_DEFAULTS: 2.0}, 5)
    assert race.left[KERAS_DEFAULTS].kind == LeaveKind.FAR_BELOW
    assert race.over and race.winner() == THREADS_8 and race.explored == 1


def test_settings_the_rounds_cannot_tell_apart_end_with_the_simplest():
    race = EpochRace([THREADS_8, THREADS_4], exploration_bound(30))
    train(race, {THREADS_8: 10.0, THREADS_4: 10.02}, 30, noise=0.002)
    assert race.over and race.stop.end == RaceEnd.SETTLED
    assert race.winner() == THREADS_4  # within 1% of the leader, and simpler


def test_no_exploration_when_the_bound_allows_none():
    race = EpochRace([THREADS_8, KERAS_DEFAULTS], exploration_bound(4))
    ran = train(race, {THREADS_8: 10.0, KERAS_DEFAULTS: 20.0}, 4)
    assert ran == [THREADS_8] * 3 and race.explored == 0 and race.stop.end == RaceEnd.ROUNDS


def test_a_failed_setting_leaves_at_once_and_the_best_known_trains_on():
    race = EpochRace([THREADS_4, PROCESSES_2], exploration_bound(20))
    race.next_setting()
    assert race.next_setting() == THREADS_4
    race.record(THREADS_4, 10.0)
    assert race.next_setting() == PROCESSES_2
    race.abandon(PROCESSES_2, "BrokenPipeError")
    assert race.over and race.next_setting() == THREADS_4
    assert race.failures == {PROCESSES_2: "BrokenPipeError"}


def test_the_best_known_failing_hands_the_lead_to_the_next():
    race = EpochRace([PROCESSES_2, THREADS_4, THREADS_8], exploration_bound(30))
    race.abandon(PROCESSES_2, "pickling failed")
    assert race.next_setting() == THREADS_4 and not race.over


def test_the_claim_compares_the_winner_with_a_raced_baseline():
    race = EpochRace([THREADS_8, KERAS_DEFAULTS], 6)
    train(race, {THREADS_8: 10.0, KERAS_DEFAULTS: 8.0}, 10, noise=0.005)
    claim = race.against(KERAS_DEFAULTS)
    assert race.winner() == THREADS_8 and claim is not None
    assert 1.15 < claim.speedup < 1.35 and claim.speedup_low > 1.0
    assert race.against(THREADS_4) is None  # never raced
