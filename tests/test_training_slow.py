"""tuner.fit against model.fit on real Keras 3 training: the same epochs, callback calls and History keys.
Few and small (10 batches of a few ms), marked slow; they run in CI too."""

import time

import keras
import numpy as np
import pytest

import tuner
from tuner.results import EpochRole
from tuner.training import train

pytestmark = pytest.mark.slow


class Waiting(keras.utils.PyDataset):
    """``batches`` batches, each after a ``wait``; optionally failing in any pool that trains on it (the
    screen reads it through a view, under its own knobs)."""

    def __init__(self, fail_in_pools: bool = False, batches: int = 10, wait: float = 0.003, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(batches, 8, 4)).astype("float32")
        self.y = self.x.sum(axis=2, keepdims=True)
        self.fail_in_pools, self.wait, self.epoch_ends = fail_in_pools, wait, 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        time.sleep(self.wait)
        if self.fail_in_pools and self.workers > 1:
            raise RuntimeError("this data code breaks in a pool")
        return self.x[index], self.y[index]

    def on_epoch_end(self):
        self.epoch_ends += 1


class Recorder(keras.callbacks.Callback):
    """Every training-level call, in order, with the log keys each epoch ended with."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_train_end(self, logs=None):
        self.calls.append(f"train_end {sorted(logs or {})}")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch} {sorted(logs)}")


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    built.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return built


def both(epochs: int, callbacks, tmp_path, **kwargs):
    """model.fit's and tuner.fit's History and callbacks, from the same start."""
    plain_callbacks, tuned_callbacks = callbacks("plain"), callbacks("tuned")
    plain = model().fit(Waiting(), epochs=epochs, verbose=0, callbacks=plain_callbacks, **kwargs)
    tuned = tuner.fit(model(), Waiting(), epochs=epochs, verbose=0, callbacks=tuned_callbacks,
                      report_dir=tmp_path / "report", **kwargs)
    return (plain, plain_callbacks), (tuned, tuned_callbacks)


def test_early_stopping_and_checkpoints_see_one_training(tmp_path):
    def callbacks(name):  # no loss ever improves by 1e9: both stop after the first epoch and two of patience
        return [Recorder(), keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=2),
                keras.callbacks.ModelCheckpoint(str(tmp_path / f"{name}-{{epoch}}.keras"))]

    (plain, plain_cbs), (tuned, tuned_cbs) = both(8, callbacks, tmp_path, validation_data=Waiting())
    assert tuned_cbs[0].calls == plain_cbs[0].calls
    assert plain.epoch == tuned.epoch == [0, 1, 2]
    assert plain.history.keys() == tuned.history.keys() == {"loss", "val_loss"}
    assert sorted(p.name for p in tmp_path.glob("tuned-*.keras")) == ["tuned-1.keras", "tuned-2.keras", "tuned-3.keras"]
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "study.db").exists()


def test_the_datasets_epoch_hook_runs_as_often_as_in_one_fit():
    plain, tuned = Waiting(), Waiting()
    model().fit(plain, epochs=5, verbose=0)
    tuner.fit(model(), tuned, epochs=5, verbose=0, report_dir=None)
    assert tuned.epoch_ends == plain.epoch_ends == 6  # once as fit starts, once at each epoch's end
    assert "on_epoch_end" not in vars(tuned)


def test_tensorboard_logs_one_training(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.util import event_pb2

    def callbacks(name):
        return [keras.callbacks.TensorBoard(str(tmp_path / name))]

    both(4, callbacks, tmp_path)
    steps = {}
    for name in ("plain", "tuned"):
        files = list((tmp_path / name / "train").glob("events.out.tfevents.*"))
        events = [event_pb2.Event.FromString(record.numpy()) for record in tf.data.TFRecordDataset(str(files[0]))]
        steps[name] = (len(files), [e.step for e in events for v in e.summary.value if v.tag == "epoch_loss"])
    assert steps["tuned"] == steps["plain"] == (1, [0, 1, 2, 3])


def test_learning_rate_callbacks_act_on_the_same_epochs(tmp_path):
    def callbacks(name):
        return [keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 / (epoch + 1)),
                keras.callbacks.ReduceLROnPlateau(monitor="loss", min_delta=1e9, patience=1, factor=0.5)]

    (plain, _), (tuned, _) = both(5, callbacks, tmp_path)
    assert np.allclose(plain.history["learning_rate"], tuned.history["learning_rate"])


def test_validation_frequency_and_initial_epoch_work_as_given(tmp_path):
    def callbacks(name):
        return [Recorder()]

    (plain, plain_cbs), (tuned, tuned_cbs) = both(6, callbacks, tmp_path, initial_epoch=1, validation_freq=2,
                                                  validation_data=Waiting())
    assert tuned_cbs[0].calls == plain_cbs[0].calls
    assert plain.epoch == tuned.epoch == [1, 2, 3, 4, 5]
    assert len(tuned.history["val_loss"]) == len(plain.history["val_loss"]) == 3  # epochs 2, 4 and 6 of 6


def test_class_weight_weighs_the_loss_as_in_model_fit(tmp_path):
    class Labelled(Waiting):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x, (y > 0).astype("int32")

    def classifier():
        keras.utils.set_random_seed(0)
        built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
        built.compile(optimizer=keras.optimizers.SGD(0.0), loss="binary_crossentropy")  # weights stay put
        return built

    weights = {0: 1.0, 1: 5.0}
    plain = classifier().fit(Labelled(), epochs=3, verbose=0, class_weight=weights)
    tuned = tuner.fit(classifier(), Labelled(), epochs=3, verbose=0, class_weight=weights, report_dir=None)
    unweighted = classifier().fit(Labelled(), epochs=1, verbose=0)
    assert np.allclose(plain.history["loss"], tuned.history["loss"], rtol=1e-5)
    assert not np.isclose(tuned.history["loss"][0], unweighted.history["loss"][0])


def test_backup_and_restore_resumes_where_one_fit_would(tmp_path):
    def interrupted(name):
        class Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 2:
                    raise KeyboardInterrupt  # the job is stopped after two epochs were backed up
        return [Interrupt(), keras.callbacks.BackupAndRestore(str(tmp_path / name)), Recorder()]

    runs = {}
    for name, fit in (("plain", lambda m, **k: m.fit(Waiting(), verbose=0, **k)),
                      ("tuned", lambda m, **k: tuner.fit(m, Waiting(), verbose=0, report_dir=None, **k))):
        with pytest.raises(KeyboardInterrupt):
            fit(model(), epochs=6, callbacks=interrupted(name))
        resumed = [keras.callbacks.BackupAndRestore(str(tmp_path / name)), Recorder()]
        runs[name] = (fit(model(), epochs=6, callbacks=resumed), resumed[1].calls)
    assert runs["tuned"][1] == runs["plain"][1]
    assert runs["tuned"][0].epoch == runs["plain"][0].epoch == [2, 3, 4, 5]


def test_a_setting_that_fails_is_abandoned_and_training_goes_on():
    data = Waiting(fail_in_pools=True, batches=40, wait=0.02)  # waiting code: a pool is the best known
    history, outcome = train(model(), data, 8, verbose=0)
    assert history.epoch == list(range(8))
    failed = [e for e in outcome.epochs if e.role == EpochRole.FAILED]
    assert failed and all(e.config.workers > 1 for e in failed) and failed[0].epoch == 0
    assert [e.epoch for e in outcome.epochs if e.role != EpochRole.FAILED] == list(range(8))
    assert outcome.chosen not in [e.config for e in failed]
    assert data.workers == 1  # the user's knobs are put back


TORCH_TRAINING = """
import json, time
import keras, torch
from torch.utils.data import DataLoader, Dataset
from tuner.training import train

class Waiting(Dataset):
    def __len__(self):
        return 480
    def __getitem__(self, index):
        time.sleep(0.002)
        return torch.full((4,), float(index % 7)), torch.tensor([float(index % 7)])

loader = DataLoader(Waiting(), batch_size=16, shuffle=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
history, outcome = train(model, loader, 8, verbose=0)
print(json.dumps({"epochs": history.epoch, "knobs": outcome.knobs, "user_workers": loader.num_workers,
                  "roles": [str(e.role) for e in outcome.epochs], "engine": outcome.engine}))
"""


def test_a_torch_dataloader_is_rebuilt_for_each_setting_and_left_as_given(tmp_path):
    pytest.importorskip("torch")
    import json
    import subprocess
    import sys

    from tests.processes import left_after, tagged_env

    env, tag = tagged_env()
    env["KERAS_BACKEND"] = "torch"
    done = subprocess.run([sys.executable, "-c", TORCH_TRAINING], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["epochs"] == list(range(8)) and result["engine"] == "torch-dataloader"
    assert "num_workers" in result["knobs"] and result["user_workers"] == 0
    assert result["roles"][0] == "warm-up"
    assert left_after(tag) == []


TF_KERAS_TRAINING = """
import json, time
import numpy as np
import tf_keras
import tuner

class Waiting(tf_keras.utils.Sequence):
    def __len__(self):
        return 20
    def __getitem__(self, index):
        time.sleep(0.005)
        x = np.full((8, 4), index, "float32")
        return x, x.sum(axis=1)

class Recorder(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []
    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")
    def on_train_end(self, logs=None):
        self.calls.append("train_end")
    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch} {sorted(logs)}")

runs = {}
for name in ("plain", "tuned"):
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.Dense(4, input_shape=(4,)), tf_keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    recorder = Recorder()
    kwargs = dict(epochs=5, verbose=0, callbacks=[recorder], validation_data=Waiting(), validation_freq=2)
    history = model.fit(Waiting(), **kwargs) if name == "plain" else tuner.fit(model, Waiting(), report_dir=None, **kwargs)
    runs[name] = {"epochs": history.epoch, "keys": sorted(history.history), "calls": recorder.calls}
try:
    tuner.fit(model, Waiting(), epochs=2, callbacks=[tf_keras.callbacks.BackupAndRestore("backup")])
except tuner.TuneLoaderError as error:
    runs["refused"] = str(error)
print(json.dumps(runs))
"""


def test_tf_keras_trains_a_sequence_as_its_own_fit_would(tmp_path):
    import json
    import subprocess
    import sys

    pytest.importorskip("tf_keras")
    done = subprocess.run([sys.executable, "-c", TF_KERAS_TRAINING], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["tuned"] == runs["plain"]
    assert runs["plain"]["epochs"] == [0, 1, 2, 3, 4] and runs["plain"]["calls"].count("train_begin") == 1
    assert "BackupAndRestore" in runs["refused"] and "Received:" in runs["refused"]
