"""Keras-version code lives here and only here.

``keras3`` drives ``keras.utils.PyDataset``; ``tf_keras`` drives legacy
``tf_keras.utils.Sequence`` and plain generators through ``fit_generator``.
Detection checks ``sys.modules`` first: if the user's file did not import a
Keras, nothing in it can be that Keras's dataset, and tune-loader does not
pay seconds of import to find that out.
"""

from __future__ import annotations

import collections.abc
import math
import sys
import time
import types
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

from tuner.errors import TuneLoaderError

KERAS3 = "keras3"
TF_KERAS = "tf-keras"
ENGINES = (KERAS3, TF_KERAS)


class GeneratorData:
    """A plain Python generator (or other iterator) as tune-loader holds it: the function that starts a fresh one.

    Every timed epoch needs its own generator (one that ran out, or was
    left half-read by the previous window, would distort the next), so a
    generator object alone is not enough.
    """

    def __init__(self, factory: Callable[[], Iterator], name: str, first: Iterator | None = None):
        self.factory = factory
        first = first if first is not None else factory()
        # A generator object knows its function's name; other iterators go by the factory's.
        self.name = getattr(first, "__name__", None) or name
        second = factory()
        if first is second:
            raise TuneLoaderError(
                f"{name} gives the same generator object every time, but each timed epoch needs a fresh one. "
                "Fix: pass the generator function itself, or define `def make_dataset(): return my_generator(...)`. "
                f"Received: a {type(first).__name__} object"
            )
        self.probe_iterator = first
        if isinstance(second, types.GeneratorType):
            second.close()

    def fresh(self) -> Iterator:
        return self.factory()


def standardize(batch: Any) -> tuple:
    """A batch as the ``(inputs,)``, ``(inputs, targets)`` or ``(inputs, targets, weights)`` tuple Keras reads."""
    if isinstance(batch, (dict, np.ndarray)):
        return (batch,)
    if isinstance(batch, list):
        return tuple(batch)
    if isinstance(batch, tuple) and len(batch) in (1, 2, 3):
        return batch
    raise TuneLoaderError(
        "A batch must be a tuple (inputs,), (inputs, targets) or (inputs, targets, sample_weights), or a dict. "
        f"Received: a {type(batch).__name__}"
    )


class EpochClock:
    """Callback body that reads the clock at an epoch's start, after every batch and at its end.

    Each engine mixes it into its own Keras's ``Callback`` class.
    """

    def __init__(self):
        super().__init__()
        self.epoch_ends: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.begin = time.perf_counter()
        self.batch_ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()
        self.epoch_ends.append(self.end)


def one_fit_and_one_epoch(began: float, clock: EpochClock, returned: float) -> tuple[float, float]:
    """From a two-epoch ``fit`` call: the seconds a one-epoch call takes, and one epoch inside a longer call.

    The second epoch, from the first's ``on_epoch_end`` to its own, is what
    each of a user's ``epochs=N`` costs: one pool tear-down and start-up and
    one pass over the data. The rest of the call (``fit``'s set-up, which
    reads two batches to learn their shapes, and its wind-down) is paid once
    per call: 0.05 to 0.16 s on io_bound, 2 to 5% of its epochs.
    """
    first, second = clock.epoch_ends
    epoch = second - first
    return returned - began - epoch, epoch


def build_default_model(keras_module: ModuleType, batch: tuple, flavour: str) -> tuple[Any, str]:
    """A small MLP that regresses the targets: a cheap, honest consumer of batches.

    ``keras_module`` is ``keras`` or ``tf_keras`` (same functional API). The
    loss is mean squared error on whatever targets the batch has, so the
    model needs no guess at class counts. Its step time is measured like any
    model's and shown in the report.
    """
    if len(batch) < 2 or not all(isinstance(part, np.ndarray) for part in batch[:2]):
        raise TuneLoaderError(
            "tune-loader builds a default model only for batches of two numpy arrays (inputs, targets). "
            f"Received: a batch of {len(batch)} part(s) of types {[type(p).__name__ for p in batch]}. "
            f"Fix: define make_model() returning a compiled {flavour} model in your file."
        )
    x, y = batch[0], batch[1]
    target_shape = y.shape[1:]
    units = max(1, math.prod(target_shape))
    inputs = keras_module.Input(shape=x.shape[1:], dtype="float32")
    hidden = keras_module.layers.Flatten()(inputs)
    hidden = keras_module.layers.Dense(32, activation="relu")(hidden)
    outputs = keras_module.layers.Dense(units)(hidden)
    if len(target_shape) > 1:
        outputs = keras_module.layers.Reshape(target_shape)(outputs)
    model = keras_module.Model(inputs, outputs, name="tune_loader_default")
    model.compile(optimizer="adam", loss="mse")
    description = (
        f"tune-loader default ({flavour}): Flatten -> Dense(32, relu) -> Dense({units}), "
        "mse loss (define make_model() to time your own model)"
    )
    return model, description


def is_generator(obj: Any) -> bool:
    """A plain generator, or any iterator that is not a Keras dataset (a lock-guarded wrapper, say)."""
    if isinstance(obj, GeneratorData):
        return True
    return isinstance(obj, collections.abc.Iterator) and not is_keras3_dataset(obj) and not is_tf_keras_sequence(obj)


def is_keras3_dataset(obj: Any) -> bool:
    return "keras" in sys.modules and isinstance(obj, sys.modules["keras"].utils.PyDataset)


def is_keras3_dataset_class(cls: type) -> bool:
    return "keras" in sys.modules and issubclass(cls, sys.modules["keras"].utils.PyDataset)


def is_keras3_model(obj: Any) -> bool:
    return "keras" in sys.modules and isinstance(obj, sys.modules["keras"].Model)


def is_tf_keras_sequence(obj: Any) -> bool:
    return "tf_keras" in sys.modules and isinstance(obj, sys.modules["tf_keras"].utils.Sequence)


def is_tf_keras_sequence_class(cls: type) -> bool:
    return "tf_keras" in sys.modules and issubclass(cls, sys.modules["tf_keras"].utils.Sequence)


def is_tf_keras_model(obj: Any) -> bool:
    return "tf_keras" in sys.modules and isinstance(obj, sys.modules["tf_keras"].Model)


def is_dataset(obj: Any) -> bool:
    return is_keras3_dataset(obj) or is_tf_keras_sequence(obj) or is_generator(obj)


def is_dataset_class(cls: type) -> bool:
    return is_keras3_dataset_class(cls) or is_tf_keras_sequence_class(cls)


def is_model(obj: Any) -> bool:
    return is_keras3_model(obj) or is_tf_keras_model(obj)


def choose(dataset: Any, requested: str | None) -> str:
    """The engine for ``dataset``: what it is decides, ``requested`` (``--engine``) may override.

    A tf-keras Sequence can run under Keras 3 (wrapped as a PyDataset: the
    migration comparison); a PyDataset cannot run under tf-keras; a plain
    generator runs under Keras 3 only inline, so asking for that is an error
    that says what to do instead.
    """
    if requested is not None and requested not in ENGINES:
        raise TuneLoaderError(f"Unknown engine. Expected one of {', '.join(ENGINES)}. Received: engine={requested!r}")
    if is_keras3_dataset(dataset):
        if requested == TF_KERAS:
            raise TuneLoaderError(
                f"{type(dataset).__name__} is a Keras 3 keras.utils.PyDataset, which tf-keras cannot train on. "
                "Fix: drop --engine tf-keras (or pass --engine keras3). Received: engine='tf-keras'"
            )
        return KERAS3
    if is_tf_keras_sequence(dataset):
        return requested or TF_KERAS
    if is_generator(dataset):
        if requested == KERAS3:
            raise TuneLoaderError(
                "Keras 3 cannot run a plain generator in parallel: fit() takes it, but workers, "
                "use_multiprocessing and max_queue_size exist only on keras.utils.PyDataset, so the generator "
                "always runs inline and there is nothing to tune. Fix: drop --engine keras3 to tune it under "
                "tf-keras (fit_generator with workers), or rewrite it as a PyDataset (__len__ and __getitem__ "
                "returning batch i); the tf-keras report shows the gain that parallel batches measured. "
                "Received: engine='keras3' with a generator"
            )
        return TF_KERAS
    raise TuneLoaderError(
        "Expected a keras.utils.PyDataset (Keras 3), a tf_keras.utils.Sequence or a generator function. "
        f"Received: {type(dataset).__name__}"
    )


def load(name: str) -> ModuleType:
    """Imports the engine module (and with it its Keras)."""
    if name == KERAS3:
        from tuner.engines import keras3

        return keras3
    try:
        from tuner.engines import tf_keras
    except ImportError as error:
        raise TuneLoaderError(
            f"The tf-keras engine needs the tf-keras package, which is not installed ({error}). "
            "Fix: pip install 'tune-loader[legacy]' (or pip install tf-keras matching your TensorFlow)."
        ) from error
    return tf_keras
