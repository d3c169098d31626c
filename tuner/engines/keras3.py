"""The Keras 3 engine: runs ``model.fit`` epochs with the knobs set on a PyDataset.

Keras 3 facts this relies on (keras/src/trainers/data_adapters/py_dataset_adapter.py):
``workers``, ``use_multiprocessing`` and ``max_queue_size`` are PyDataset
properties; ``fit()`` rejects them. A pool is built only when
``workers > 1 or (workers > 0 and use_multiprocessing)``, and a new one at
every epoch start. Without a pool the TensorFlow backend adds
``prefetch(AUTOTUNE)``, so the defaults already overlap one producer with
the model step.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras
import numpy as np

from tuner.epoch_model import window_timing
from tuner.errors import TuneLoaderError
from tuner.results import LoaderConfig, WindowTiming

KIND = "pydataset"


def num_batches(dataset: keras.utils.PyDataset) -> int | None:
    """Batches per epoch, or None for an infinite dataset."""
    return dataset.num_batches


def standardize(batch: Any) -> tuple:
    """A batch as ``(x, y, sample_weight)``-style tuple, the way Keras reads it."""
    if isinstance(batch, (dict, np.ndarray)):
        return (batch,)
    if isinstance(batch, list):
        return tuple(batch)
    if isinstance(batch, tuple) and len(batch) in (1, 2, 3):
        return batch
    raise TuneLoaderError(
        "PyDataset.__getitem__() must return a tuple (inputs,), (inputs, targets) or "
        f"(inputs, targets, sample_weights), or a dict. Received: a {type(batch).__name__}"
    )


def set_knobs(dataset: keras.utils.PyDataset, config: LoaderConfig) -> None:
    """The three knobs, through the PyDataset setters (``fit()`` rejects them in Keras 3)."""
    dataset.workers = config.workers
    dataset.use_multiprocessing = config.use_multiprocessing
    dataset.max_queue_size = config.max_queue_size


class WindowView(keras.utils.PyDataset):
    """A full epoch of ``batches`` batches taken from the user's dataset.

    Keras stops a pool cleanly only at the end of a real epoch; cutting an
    epoch short with ``steps_per_epoch`` drains the pending queue instead,
    which the user's full epochs never pay. Timing full epochs of a short
    view keeps every window faithful to a real epoch's start and end.
    """

    def __init__(self, inner: keras.utils.PyDataset, batches: int, offset: int, config: LoaderConfig):
        super().__init__()
        set_knobs(self, config)
        self.inner = inner
        self.batches = batches
        self.offset = offset
        self.inner_batches = inner.num_batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        position = self.offset + index
        return self.inner[position % self.inner_batches if self.inner_batches else position]

    def on_epoch_begin(self) -> None:
        self.inner.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


class CachedView(keras.utils.PyDataset):
    """The same batch, ``batches`` times: Keras's pipeline with data that costs nothing."""

    def __init__(self, batch, batches: int, config: LoaderConfig):
        super().__init__()
        set_knobs(self, config)
        self.batch = batch
        self.batches = batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        return self.batch


class _EpochClock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.begin = time.perf_counter()
        self.batch_ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()


def run_window(model: keras.Model, dataset: keras.utils.PyDataset, config: LoaderConfig, batches: int, offset: int) -> WindowTiming:
    """Times one real ``fit`` epoch of ``batches`` batches under ``config`` (or through tf.data)."""
    clock = _EpochClock()
    data = tf_data_pipeline(dataset, batches, offset) if config.is_tf_data else WindowView(dataset, batches, offset, config)
    model.fit(data, epochs=1, verbose=0, callbacks=[clock])
    return window_timing(clock.begin, clock.batch_ends, clock.end)


def tf_data_pipeline(dataset: keras.utils.PyDataset, batches: int, offset: int):
    """The user's ``__getitem__`` as a tf.data map: what TF_DATA_CODE tells the user to write."""
    import tensorflow as tf

    length = dataset.num_batches
    example = standardize(dataset[offset % length if length else offset])
    flat = tf.nest.flatten(example)
    specs = [tf.TensorSpec(np.asarray(part).shape, tf.as_dtype(np.asarray(part).dtype)) for part in flat]

    def load(index):
        position = int(index)
        return [np.asarray(part) for part in tf.nest.flatten(standardize(dataset[position % length if length else position]))]

    def load_tensor(index):
        parts = tf.py_function(load, [index], Tout=[spec.dtype for spec in specs])
        for part, spec in zip(parts, specs):
            part.set_shape(spec.shape)
        return tf.nest.pack_sequence_as(example, parts)

    return (
        tf.data.Dataset.range(offset, offset + batches)
        .map(load_tensor, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def run_cached_window(model: keras.Model, batch, config: LoaderConfig, batches: int) -> tuple[WindowTiming, float]:
    """One epoch of free data under ``config``; returns its timing and the parent's CPU seconds."""
    clock = _EpochClock()
    cpu_start = time.process_time()
    model.fit(CachedView(batch, batches, config), epochs=1, verbose=0, callbacks=[clock])
    return window_timing(clock.begin, clock.batch_ends, clock.end), time.process_time() - cpu_start


def build_default_model(batch: tuple) -> tuple[keras.Model, str]:
    """A small MLP that regresses the targets: a cheap, honest consumer of batches.

    The loss is mean squared error on whatever targets the batch has, so the
    model needs no guess at class counts. Its step time is measured like any
    model's and shown in the report.
    """
    if len(batch) < 2 or not all(isinstance(part, np.ndarray) for part in batch[:2]):
        raise TuneLoaderError(
            "tune-loader builds a default model only for batches of two numpy arrays (inputs, targets). "
            f"Received: a batch of {len(batch)} part(s) of types {[type(p).__name__ for p in batch]}. "
            "Fix: define make_model() returning a compiled Keras model in your file."
        )
    x, y = batch[0], batch[1]
    target_shape = y.shape[1:]
    inputs = keras.Input(shape=x.shape[1:], dtype="float32")
    hidden = keras.layers.Flatten()(inputs)
    hidden = keras.layers.Dense(32, activation="relu")(hidden)
    outputs = keras.layers.Dense(max(1, math.prod(target_shape)))(hidden)
    if len(target_shape) > 1:
        outputs = keras.layers.Reshape(target_shape)(outputs)
    model = keras.Model(inputs, outputs, name="tune_loader_default")
    model.compile(optimizer="adam", loss="mse")
    description = (
        f"tune-loader default: Flatten -> Dense(32, relu) -> Dense({max(1, math.prod(target_shape))}), "
        "mse loss (define make_model() to time your own model)"
    )
    return model, description


def describe_model(model: keras.Model) -> str:
    return f"{model.name}: {len(model.layers)} layers, {model.count_params():,} parameters"
