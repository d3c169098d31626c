"""The fourth knob without Keras: when it is searched, how it is asked for, stored and predicted, and the code
the answer hands over."""

from __future__ import annotations

import optuna
import pytest

from reports.write import trials_frame
from tests import builders
from tuner import engines
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.measure.predict import batch_cost, predict
from tuner.search.space import SearchSpace, native_limits

BLAS = builders.dataset(cpu_fraction=0.95, thread_speedup=0.8, native=builders.native_pools())


def test_a_limit_is_its_own_setting_and_says_so():
    limited = LoaderConfig(2, True, 10, native_threads=1)
    assert limited.equivalence_key() != LoaderConfig(2, True, 10).equivalence_key()
    assert LoaderConfig(native_threads=1).equivalence_key() != KERAS_DEFAULTS.equivalence_key()
    assert limited.label() == "2 processes, queue 10, 1 BLAS/OpenMP thread"
    assert limited.as_kwargs() == "workers=2, use_multiprocessing=True, max_queue_size=10"  # Keras's arguments only
    answer = builders.recommendation(best=limited)
    assert answer.settings_text() == ("workers=2, use_multiprocessing=True, max_queue_size=10; "
                                      "threadpool_limits(limits=1) per batch")
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
        assert space.config_of(trial.params) == config
        study.tell(trial, 1.0)
    assert "native_threads" not in SearchSpace(8, True).params(limited)  # a space without the knob never asks


def test_the_model_predicts_pools_at_the_default_threads_no_faster_than_the_cores_allow():
    """Batches that keep two cores busy at the libraries' default: two workers cannot run faster on two cores,
    one thread each can. The model ranks them so, and the screen times both."""
    machine = builders.machine(2)
    defaults = predict(LoaderConfig(2, True, 10), machine, BLAS, builders.model(), 200).epoch_batches_per_second
    limited = predict(LoaderConfig(2, True, 10, native_threads=1), machine, BLAS, builders.model(),
                      200).epoch_batches_per_second
    assert limited > 1.3 * defaults
    assert batch_cost(LoaderConfig(native_threads=1), BLAS) == (0.045, 0.045)


def test_the_answer_hands_over_the_line_to_paste_where_the_batch_is_made():
    r = builders.recommendation(best=LoaderConfig(2, True, 10, native_threads=1))
    code = engines.code_blocks(r)[0].code
    assert "from threadpoolctl import threadpool_limits" in code
    assert "    def __getitem__(self, index):\n        threadpool_limits(limits=1)" in code
    assert "workers=2, use_multiprocessing=True, max_queue_size=10" in code
    assert "threadpool_limits" not in engines.code_blocks(builders.recommendation())[0].code
    column = trials_frame(r)["native_threads"]
    assert str(column.dtype) == "Int64"


def test_the_reasons_explain_the_knob_only_where_the_pools_work():
    from tuner.analysis.advice import native_threads_text

    limited = LoaderConfig(2, True, 10, native_threads=1)
    text = native_threads_text(BLAS, limited)
    assert "openblas" in text and "60.0 ms using 2.0 cores at 2 threads and 45.0 ms at one" in text
    assert "limits them to 1 per worker" in text
    assert "limits them" not in native_threads_text(BLAS, LoaderConfig(2, True, 10))
    idle = builders.dataset(native=builders.native_pools(default_ms=50.0, default_cpu_ms=51.0, one_thread_ms=49.0))
    assert native_threads_text(idle, limited) is None and native_threads_text(builders.dataset(), limited) is None
