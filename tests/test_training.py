"""tuner.fit's checks and glue that need no Keras: refused arguments, the held train bounds, the screen's
order. Real training is in test_training_slow.py."""

import pytest

from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.engines.training import HeldBounds
from tuner.errors import TuneLoaderError
from tuner.training import REFUSED, _extremes_first, check_arguments


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_fit_argument_it_cannot_honour_is_refused_with_the_fix(name):
    with pytest.raises(TuneLoaderError, match=f"cannot take {name}.*Fix:.*Received: {name}="):
        check_arguments(10, 0, {name: 1})


def test_an_unknown_argument_is_refused_with_the_known_ones():
    with pytest.raises(TuneLoaderError, match="does not know the fit\\(\\) argument worker.*validation_data"):
        check_arguments(10, 0, {"worker": 4})


@pytest.mark.parametrize("epochs, initial", [(0, 0), (5, 5), (5, -1), (2.5, 0)])
def test_epochs_and_initial_epoch_must_make_a_training(epochs, initial):
    with pytest.raises(TuneLoaderError, match="Received: epochs="):
        check_arguments(epochs, initial, {})


def test_the_arguments_passed_on_are_taken():
    check_arguments(10, 3, {"validation_data": object(), "validation_freq": 2, "class_weight": {0: 1.0},
                            "shuffle": False, "validation_steps": 4})


class FakeCallbackList:
    """Records what reaches the user's callbacks (a fake of Keras's CallbackList)."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("begin", logs))

    def on_train_end(self, logs=None):
        self.calls.append(("end", logs))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch", epoch))


class Held(HeldBounds, FakeCallbackList):
    pass


def test_train_begin_passes_once_and_train_end_once_with_the_last_epochs_logs():
    held = Held()
    for epoch in range(3):  # three per-epoch fits
        held.on_train_begin()
        held.on_epoch_end(epoch, {"loss": float(epoch)})
        held.on_train_end({"loss": -1.0})
    held.finish()
    assert held.calls == [("begin", None), ("epoch", 0), ("epoch", 1), ("epoch", 2), ("end", {"loss": 2.0})]


def test_no_train_end_without_a_train_begin():
    held = Held()
    held.finish()
    assert held.calls == []


def test_the_screen_spans_each_kind_of_pool_first():
    threads = [LoaderConfig(n, False, 2 * n) for n in (2, 4, 8, 16, 32)]
    processes = [LoaderConfig(n, True, 2 * n) for n in (1, 2, 4)]
    order = _extremes_first([KERAS_DEFAULTS] + threads + processes)
    assert [(c.workers, c.use_multiprocessing) for c in order[:6]] == [
        (1, False), (1, True), (2, False), (4, True), (32, False), (2, True)]  # inline is a kind of its own
    assert sorted(order, key=str) == sorted([KERAS_DEFAULTS] + threads + processes, key=str)


def test_the_trials_of_a_training_are_found_by_the_next_one(tmp_path):
    import json

    from probes.serde import to_dict
    from tests.builders import machine, trial
    from tuner.search.space import SearchSpace
    from tuner.search.study import StudySettings, default_study_name, record_trials, stored_answer

    storage, here = f"sqlite:///{tmp_path / 'study.db'}", machine()
    eight, four = LoaderConfig(8, False, 16), LoaderConfig(4, False, 10)
    settings = StudySettings(200, storage=storage, study_name=default_study_name("fit", "Shards", "Shards", here))
    record_trials(settings, [trial(0, eight, 100.0), trial(0, four, 90.0)], SearchSpace(16, allow_processes=True),
                  {"answer_config": json.dumps(to_dict(eight))})
    found = stored_answer([storage], "Shards", here)
    assert found.answer == eight and sorted(t.config.workers for t in found.trials) == [4, 8]
    assert stored_answer([storage], "Other", here) is None
    assert stored_answer([storage], "Shards", machine(cores=8)) is None  # another machine's study
