"""The fourth knob without Keras: when it is searched, how it is asked for and stored, how the race is
reserved time, and the code the answer hands over."""

from __future__ import annotations

import optuna
import pytest

from tests import builders
from tuner.results import KERAS_DEFAULTS, LoaderConfig
from tuner.search.space import SearchSpace, native_limits, starting_configs
from tuner.search.stop_rules import RaceReserve, SearchState
from reports.write import trials_frame

BLAS = builders.dataset(cpu_fraction=0.95, thread_speedup=0.8, native=builders.native_pools())


def test_a_limit_is_its_own_setting_and_says_so():
    limited = LoaderConfig(2, True, 10, native_threads=1)
    assert limited.equivalence_key() != LoaderConfig(2, True, 10).equivalence_key()
    assert LoaderConfig(native_threads=1).equivalence_key() != KERAS_DEFAULTS.equivalence_key()
    assert limited.label() == "2 processes, queue 10, 1 BLAS/OpenMP thread"
    assert limited.as_kwargs() == "workers=2, use_multiprocessing=True, max_queue_size=10"  # Keras's arguments only
    assert limited.settings_text().endswith("; threadpool_limits(limits=1) per batch")
    assert min([limited, LoaderConfig(2, True, 10)], key=lambda c: c.simplicity).native_threads is None


@pytest.mark.parametrize("native, cores, expected", [
    (None, 2, ()),
    (builders.native_pools(), 2, (1,)),
    (builders.native_pools(threads=8), 8, (1, 4)),
    # One core busy and no change at one thread: the pools hardly work, so the limit cannot matter.
    (builders.native_pools(default_ms=50.0, default_cpu_ms=51.0, one_thread_ms=49.0), 2, ()),
    # Only the time changed at one thread (its threads wait rather than compute): still worth a trial.
    (builders.native_pools(default_ms=50.0, default_cpu_ms=51.0, one_thread_ms=30.0), 2, (1,)),
])
def test_the_knob_is_searched_only_where_the_probe_saw_the_pools_work(native, cores, expected):
    data = builders.dataset(native=native)
    assert native_limits(builders.machine(cores), data) == expected
    assert SearchSpace.for_profiles(builders.machine(cores), data).native_threads == expected
    assert SearchSpace.for_profiles(builders.machine(cores), data, search_native_threads=False).native_threads == ()


def test_an_optuna_trial_asks_for_it_and_a_stored_trial_gives_it_back():
    space = SearchSpace.for_profiles(builders.machine(2), BLAS)
    study = optuna.create_study(direction="maximize")
    limited = LoaderConfig(2, True, 10, native_threads=1)
    for config in (limited, KERAS_DEFAULTS):
        study.enqueue_trial(space.params(config))
        trial = study.ask()
        assert space.suggest(trial) == config
        assert SearchSpace.config_of(trial.params) == config
        study.tell(trial, 1.0)
    assert "native_threads" not in SearchSpace(8, True).params(limited)  # a space without the knob never asks


def test_starts_time_the_rule_of_thumb_and_the_best_guess_at_one_thread_too():
    space = SearchSpace.for_profiles(builders.machine(2), BLAS)
    guess = LoaderConfig(4, True, 10)
    starts = starting_configs(builders.machine(2), BLAS, space, (guess,))
    assert ("rule of thumb, 1 native thread", LoaderConfig(2, True, 10, native_threads=1)) in starts
    assert ("prediction, 1 native thread", LoaderConfig(4, True, 10, native_threads=1)) in starts
    plain = starting_configs(builders.machine(2), builders.dataset(), SearchSpace(8, True), (guess,))
    assert all(config.native_threads is None for _, config in plain)


def test_the_answer_hands_over_the_line_to_paste_where_the_batch_is_made():
    r = builders.recommendation(best=LoaderConfig(2, True, 10, native_threads=1))
    code = r.keras3_code()
    assert "from threadpoolctl import threadpool_limits" in code
    assert "    def __getitem__(self, index):\n        threadpool_limits(limits=1)" in code
    assert "workers=2, use_multiprocessing=True, max_queue_size=10" in code
    assert "threadpool_limits" not in builders.recommendation().keras3_code()
    column = trials_frame(r)["native_threads"]
    assert str(column.dtype) == "Int64"


def test_the_search_stops_when_the_race_would_no_longer_fit_the_budget():
    # Epochs of 200 batches: the best at 100/s (2 s), the defaults at 50/s (4 s). Three choice rounds of four
    # contenders and two more of two, each a fit of two epochs: 2 x 6 s x (2 x 3 + 2) = 96 s, capped at 60 s.
    reserve = RaceReserve(120.0, 200, 50.0, fit_epochs=2, choice_rounds=3)
    trials = [builders.trial(0, LoaderConfig(4, False, 10), 100.0)]
    assert reserve.seconds(trials) == 60.0
    assert reserve.reason(SearchState(trials, 1, 59.0)) is None
    assert "the final race needs about 60 s of the 120 s" in reserve.reason(SearchState(trials, 1, 61.0))
    # Measured defaults replace the model's guess: 200/50 -> 200/80 s a defaults epoch.
    quick = RaceReserve(1000.0, 200, 50.0, fit_epochs=2, choice_rounds=3)
    measured = trials + [builders.trial(1, KERAS_DEFAULTS, 80.0)]
    assert quick.seconds(measured) == pytest.approx(2 * (2.0 + 2.5) * 8)
    assert quick.seconds([]) == 0.0


def test_the_reasons_explain_the_knob_only_where_the_pools_work():
    from tuner.analysis.advice import native_threads_text

    limited = LoaderConfig(2, True, 10, native_threads=1)
    text = native_threads_text(BLAS, limited)
    assert "openblas" in text and "60.0 ms using 2.0 cores at 2 threads and 45.0 ms at one" in text
    assert "limits them to 1 per worker" in text
    assert "limits them" not in native_threads_text(BLAS, LoaderConfig(2, True, 10))
    idle = builders.dataset(native=builders.native_pools(default_ms=50.0, default_cpu_ms=51.0, one_thread_ms=49.0))
    assert native_threads_text(idle, limited) is None and native_threads_text(builders.dataset(), limited) is None
