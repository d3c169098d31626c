"""The search's stop rules as objects: each judges the trials so far and gives its reason as a sentence."""

from tests import builders
from tuner.results import LoaderConfig
from tuner.search.stop_rules import CeilingReached, Patience, SearchState, TimeBudget, TrialLimit, first_reason


def trials(*rates):
    return [builders.trial(i, LoaderConfig(i + 2, False, 10), rate) for i, rate in enumerate(rates)]


def test_patience_counts_only_trials_after_the_starting_ones_and_a_real_gain_resets_it():
    rule = Patience(trials=2, min_improvement=0.02)
    assert rule.reason(SearchState(trials(100, 101, 101.5), starts=2, elapsed_seconds=0)) is None  # one after the starts
    stalled = rule.reason(SearchState(trials(100, 101, 101.5, 102.9), starts=2, elapsed_seconds=0))
    assert stalled == "2 trials in a row after the starting ones did not beat the best by more than 2%"
    assert rule.reason(SearchState(trials(100, 101, 101.5, 103.1), starts=2, elapsed_seconds=0)) is None


def test_the_ceiling_waits_for_every_start_and_says_when_the_probes_read_low():
    rule = CeilingReached(200.0)
    assert rule.reason(SearchState(trials(195.0), starts=2, elapsed_seconds=0)) is None
    assert rule.reason(SearchState(trials(50.0, 195.0), starts=2, elapsed_seconds=0)).startswith(
        "the best trial reached 95% of the free-data ceiling, 200.0 batches/s")
    assert "measured above the free-data ceiling as the probes put it" in rule.reason(
        SearchState(trials(50.0, 210.0), starts=2, elapsed_seconds=0))
    assert not CeilingReached(None).reached(trials(1e9))


def test_the_first_rule_that_fires_names_the_reason():
    rules = (TrialLimit(3), TimeBudget(10.0))
    assert first_reason(rules, SearchState(trials(1, 2), starts=0, elapsed_seconds=11.0)) == (
        "it used its time budget of 10 s (--time-budget)")
    assert first_reason(rules, SearchState(trials(1, 2, 3), starts=0, elapsed_seconds=11.0)) == (
        "it measured the 3 trials allowed (--trials)")
    assert first_reason(rules, SearchState(trials(1), starts=0, elapsed_seconds=1.0)) is None
