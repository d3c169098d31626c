"""Legacy (tf-keras) logic that needs no Keras: generators found, judged and kept from unsafe settings."""

import textwrap
import threading
import time

import numpy as np
import pytest

from probes import probe_dataset
from tests import builders
from tests.fakes import FakeMeasurer
from tuner import engines
from tuner.core import KERAS_DEFAULTS
from tuner.engines.common import GeneratorData
from tuner.errors import TuneLoaderError
from tuner.search.candidates import candidates
from tuner.search.space import SearchSpace, rule_of_thumb
from tuner.search.study import StudySettings, screen
from tuner.userfile import find_dataset, import_user_file


def batches():
    for index in range(1000):
        time.sleep(0.003)
        total = sum(i * index % 7 for i in range(20_000))  # Python work: the GIL is held mid-next()
        yield np.full((4, 2), total, dtype="float32"), np.zeros(4)


def stream_profile(factory):
    data = GeneratorData(factory, factory.__name__)
    return probe_dataset(
        data, kind="generator", num_batches=None, usable_cores=2,
        get_batch=lambda i: next(data.probe_iterator), fresh_stream=lambda: data.fresh().__next__, pickle_error="",
    )


def test_a_plain_generator_is_caught_as_not_thread_safe():
    profile = stream_profile(batches)
    assert profile.thread_safe is False
    assert "generator already executing" in profile.thread_safety_note


class ThreadSafe:
    """The usual fix: an iterator whose __next__ takes a lock around the generator."""

    def __init__(self, source):
        self.source, self.lock = source, threading.Lock()

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:
            return next(self.source)


def test_a_generator_behind_a_locked_iterator_is_thread_safe():
    def safe_batches():
        return ThreadSafe(batches())

    assert stream_profile(safe_batches).thread_safe is True


def test_the_thread_test_gives_each_thread_its_own_generator():
    # Sleep-bound batches overlap across threads when each has its own stream.
    def sleepy():
        while True:
            time.sleep(0.01)
            yield np.zeros((4, 2)), np.zeros(4)

    assert stream_profile(sleepy).thread_speedup > 1.5


def test_the_same_generator_object_twice_is_refused():
    one = batches()
    with pytest.raises(TuneLoaderError, match="same generator object every time"):
        GeneratorData(lambda: one, "one")


def test_keras3_refuses_a_generator_and_says_what_to_do_instead():
    data = GeneratorData(batches, "batches")
    assert engines.choose(data, None) == "tf-keras"
    with pytest.raises(TuneLoaderError, match="Keras 3 cannot run a plain generator in parallel") as caught:
        engines.choose(data, "keras3")
    assert "PyDataset" in str(caught.value) and "Received: engine='keras3'" in str(caught.value)


def test_generator_functions_in_the_file_are_datasets(tmp_path):
    path = tmp_path / "legacy.py"
    path.write_text(textwrap.dedent("""
        def rows():
            yield 1
    """))
    module = import_user_file(path)
    found = find_dataset(module, None, is_dataset=lambda o: False, is_dataset_class=lambda c: False)
    assert found.name == "rows"
    assert next(found.build()) == 1 and found.build() is not found.build()


GENERATOR = builders.dataset(kind="generator", thread_safe=False, cpu_fraction=0.95, thread_speedup=1.0)


def test_processes_are_left_out_for_generators_unless_duplicates_are_allowed():
    space = SearchSpace.for_profiles(builders.machine(2), GENERATOR)
    assert not space.allow_processes and "duplicated data" in space.processes_excluded
    allowed = SearchSpace.for_profiles(builders.machine(2), GENERATOR, allow_duplicated_data=True)
    assert allowed.allow_processes and not allowed.processes_excluded
    assert rule_of_thumb(builders.machine(2), GENERATOR).use_multiprocessing is False


def test_threads_on_an_unsafe_generator_are_recorded_infeasible_without_running():
    space = SearchSpace.for_profiles(builders.machine(2), GENERATOR)
    fake = FakeMeasurer()
    todo = candidates(space, rule_of_thumb(builders.machine(2), GENERATOR), lambda c: 1.0, limit=24)
    outcome = screen(fake, space, todo, StudySettings(epoch_batches=200))
    infeasible = [t for t in outcome.trials if t.status == "infeasible"]
    assert len(infeasible) == 1 and infeasible[0].config.parallel and not infeasible[0].config.use_multiprocessing
    assert "not thread-safe" in infeasible[0].reason and "threading.Lock" in infeasible[0].reason
    assert {config for config, _ in fake.calls} == {KERAS_DEFAULTS}  # processes would duplicate it
    assert all(not t.config.use_multiprocessing for t in outcome.trials)


def test_with_duplicated_data_allowed_processes_are_screened_beside_the_unsafe_threads():
    space = SearchSpace.for_profiles(builders.machine(2), GENERATOR, allow_duplicated_data=True)
    fake = FakeMeasurer()
    todo = candidates(space, rule_of_thumb(builders.machine(2), GENERATOR), lambda c: 1.0, limit=24)
    outcome = screen(fake, space, todo, StudySettings(epoch_batches=200))
    assert any(t.config.use_multiprocessing and t.status == "ok" for t in outcome.trials)
    assert [t.status for t in outcome.trials if t.config.kind == "threads"] == ["infeasible"]
