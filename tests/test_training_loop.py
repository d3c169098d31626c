"""tuner.fit's loop (``tuner.training._Training``) on a fake model whose epochs sleep by setting: the race's
choice, the epochs' numbers and roles, one training for the callbacks, failures. No Keras runs here."""

from types import SimpleNamespace

import pytest

from tests.fakes import FakeFitModel
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.engines.training import HeldBounds
from tuner.results import EpochRole
from tuner.training import Contenders, _Training

FOUR, EIGHT, TWO = LoaderConfig(4, False, 10), LoaderConfig(8, False, 16), LoaderConfig(2, False, 10)
SECONDS = {FOUR: 0.010, EIGHT: 0.005, TWO: 0.020, KERAS_DEFAULTS: 0.040}


class RecordingList:
    """The calls the user's callbacks would get (a fake of Keras's CallbackList)."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_train_end(self, logs=None):
        self.calls.append("train_end")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch}")


class OneTraining(HeldBounds, RecordingList):
    pass


class Feeder:
    user_setting = KERAS_DEFAULTS

    def fit_input(self, config):
        return SimpleNamespace(config=config), {}


def training(fails=()) -> tuple[_Training, FakeFitModel, OneTraining]:
    model, callbacks = FakeFitModel(SECONDS.get, fails), OneTraining()
    engine = SimpleNamespace(resumed_epoch=lambda model: None)
    return _Training(model, engine, Feeder(), callbacks, {}, batches=10), model, callbacks


def contenders(*configs) -> Contenders:
    return Contenders(configs, {}, (), None, None)


def test_the_race_trains_on_with_the_fastest_and_the_callbacks_see_one_training():
    loop, model, callbacks = training()
    race = loop.run(0, 20, contenders(FOUR, EIGHT, TWO), KERAS_DEFAULTS)
    callbacks.finish()
    assert race.winner() == EIGHT
    assert [e.epoch for e in loop.log] == list(range(20))
    assert loop.log[0].role == EpochRole.WARM_UP and loop.log[0].config == FOUR
    assert all(e.config == EIGHT for e in loop.log if e.role == EpochRole.TRAIN)
    assert race.explored <= 4
    assert callbacks.calls[0] == "train_begin" and callbacks.calls[-1] == "train_end"
    assert callbacks.calls.count("train_begin") == callbacks.calls.count("train_end") == 1
    assert [c for c in callbacks.calls if c.startswith("epoch_end")] == [f"epoch_end {e}" for e in range(20)]


def test_initial_epoch_numbers_the_epochs_as_one_fit_would():
    loop, model, _ = training()
    loop.run(3, 8, contenders(EIGHT), KERAS_DEFAULTS)
    assert [e.epoch for e in loop.log] == [3, 4, 5, 6, 7] and [fit[0] for fit in model.fits] == [3, 4, 5, 6, 7]


def test_a_setting_that_raises_is_abandoned_and_its_epoch_trained_again():
    loop, model, _ = training(fails={EIGHT})
    race = loop.run(0, 20, contenders(FOUR, EIGHT, TWO), KERAS_DEFAULTS)
    failed = [e for e in loop.log if e.role == EpochRole.FAILED]
    assert [e.config for e in failed] == [EIGHT] and EIGHT in loop.failures and race.winner() != EIGHT
    assert [e.epoch for e in loop.log if e.role != EpochRole.FAILED] == list(range(20))


def test_two_failures_on_one_epoch_fall_back_to_the_users_setting():
    loop, _, _ = training(fails={FOUR, EIGHT})
    race = loop.run(0, 5, contenders(FOUR, EIGHT), KERAS_DEFAULTS)
    assert race.winner() == KERAS_DEFAULTS
    assert [e.role for e in loop.log[:3]] == [EpochRole.FAILED, EpochRole.FAILED, EpochRole.RETRIED]
    assert loop.log[2].config == KERAS_DEFAULTS and len(loop.log) == 7


def test_the_users_own_setting_raising_is_the_users_error():
    loop, _, _ = training(fails={KERAS_DEFAULTS})
    with pytest.raises(RuntimeError, match="breaks"):
        loop.run(0, 5, contenders(KERAS_DEFAULTS), KERAS_DEFAULTS)


def test_a_stop_ends_training_as_it_ends_fit():
    loop, model, _ = training()
    original = model.fit

    def stopping_fit(*args, **kwargs):
        result = original(*args, **kwargs)
        model.stop_training = len(model.fits) == 3  # EarlyStopping after the third epoch
        return result

    model.fit = stopping_fit
    loop.run(0, 10, contenders(FOUR, EIGHT), KERAS_DEFAULTS)
    assert [e.epoch for e in loop.log] == [0, 1, 2]


def test_without_a_stored_answer_the_screen_proposes_pools_and_the_users_setting_comes_first():
    from tests.builders import machine
    from tests.fakes import FakeDataset, FakeEngine
    from tuner.training import contenders as propose

    found = propose(FakeEngine(batch_seconds=0.02), FakeDataset(200), KERAS_DEFAULTS, machine(), 20, None,
                    lambda config: True)
    assert found.screen[0].config == KERAS_DEFAULTS and len(found.screen) >= 4
    assert found.configs[0].parallel and KERAS_DEFAULTS not in found.configs  # far slower data: not proposed
    assert 1 <= len(found.configs) <= 3 and set(found.configs) <= set(found.data_seconds)


def test_a_stored_answer_leads_its_runner_ups_and_nothing_is_screened():
    from tests.builders import machine, trial
    from tests.fakes import FakeDataset, FakeEngine
    from tuner.search.study import StoredAnswer
    from tuner.training import contenders as propose

    stored = StoredAnswer("tune-loader:x:y:Fake@1234", EIGHT, (trial(0, EIGHT, 100.0), trial(1, FOUR, 95.0),
                                                              trial(2, KERAS_DEFAULTS, 20.0)))
    found = propose(FakeEngine(), FakeDataset(200), KERAS_DEFAULTS, machine(), 20, stored, lambda config: True)
    assert found.configs == (EIGHT, FOUR) and found.screen == () and found.stored is stored
