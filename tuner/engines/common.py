"""What both Keras engines share: a generator's factory, the batch format, the epoch clock, the default model.

Nothing here imports a Keras; each engine passes in its own module.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import time
import types
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from tuner.core import WindowTiming
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat
from tuner.measure.epoch_model import window_timing


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


def limit_native_threads(limit: int | None) -> None:
    """The fourth knob, as the recommendation tells the user to set it: ``threadpool_limits`` first thing in
    every batch, in whichever worker makes it (BLAS's limit is per process, OpenMP's per thread)."""
    if limit is not None:
        threadpool_limits(limits=limit)


def native_threads_restored() -> contextlib.AbstractContextManager:
    """Puts this process's BLAS/OpenMP pools back to their size when the block ends: a window run inline
    or with threads sets the limit here, and the next window must not inherit it."""
    return threadpool_limits(limits=None)


def limited_stream(stream: Iterator, limit: int | None) -> Iterator:
    """A generator's batches, each counted by the heartbeat, with the native-thread limit (if any) set
    before each in the worker that pulls it."""
    for index in itertools.count():
        limit_native_threads(limit)
        try:
            with heartbeat.batch(index):
                item = next(stream)
        except StopIteration:
            return
        yield item


class SourceEngine:
    """What an engine whose user's loader is wrapped in a source (``source_type``: batches by index, their
    count, the knobs the user built it with) answers from that source; mixed in before ``Keras3Engine``."""

    source_type: type
    data_kind: Any  # probes.profiles.DataKind

    def adopt(self, dataset):
        return dataset if isinstance(dataset, self.source_type) else self.source_type(dataset)

    def kind(self, dataset):
        return self.data_kind

    def num_batches(self, dataset) -> int:
        return dataset.num_batches

    def user_knobs(self, dataset) -> dict:
        return dict(dataset.user_knobs)

    def batch(self, dataset, index: int):
        return dataset.batch(index)

    def fresh_stream(self, dataset) -> Callable[[], Iterator] | None:
        return getattr(dataset, "fresh", None)


class RepeatedBatch:
    """One batch at every index: data that costs nothing, for the free-data probe of Keras's own pipeline."""

    num_batches = 1

    def __init__(self, batch):
        self.batch = batch

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, index: int):
        return self.batch

    def on_epoch_begin(self) -> None:
        pass

    def on_epoch_end(self) -> None:
        pass


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

    def __init__(self, drain: int | None = None, start: int = 1):
        super().__init__()
        self.epochs: list[tuple[float, list[float], float]] = []  # (begin, batch ends, end) per epoch
        self.drain = drain  # batches a pool's queue can drain in a burst at the epoch end (drain_batches)
        self.start = start  # batches that may wait on the pool's start (start_batches): no stall counts yet

    def on_epoch_begin(self, epoch, logs=None):
        self.begin = time.perf_counter()
        self.batch_ends = []

    def on_train_batch_begin(self, batch, logs=None):
        if not self.batch_ends:  # an epoch's first steps wait for its pool to start (and a fit's first traces)
            heartbeat.watch(False)

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if len(self.batch_ends) + 1 == self.start:
            heartbeat.watch(True)
        elif len(self.batch_ends) >= self.start:  # a step's spacing counts toward the slowest batch the stall
            heartbeat.step(now - self.batch_ends[-1])  # limit scales with
        self.batch_ends.append(now)

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()
        self.epochs.append((self.begin, self.batch_ends, self.end))

    def timing(self) -> WindowTiming:
        """The ``fit``'s epochs as it paced them: steady rate and fixed cost.

        A lone epoch is timed from its start. In a longer ``fit`` every
        epoch after the first is timed from the end of the one before, so
        what Keras does between epochs (stopping one pool and starting the
        next, tf-keras's epoch-end stall, the inline autotuner's wait for the
        last iterator) counts once per epoch, as in the user's training, and
        lands before the epoch's first batch, where the epoch model reads it
        as a per-epoch cost; no first-epoch cost counts, nor what ``fit``
        does once after its last epoch. Those epochs are averaged
        (``mean_timing``).
        """
        if len(self.epochs) == 1:
            begin, batch_ends, end = self.epochs[0]
            return window_timing(begin, batch_ends, end, self.drain)
        return mean_timing([window_timing(previous[2], batch_ends, end, self.drain)
                            for previous, (_, batch_ends, end) in zip(self.epochs, self.epochs[1:])])


def mean_timing(epochs: list[WindowTiming]) -> WindowTiming:
    """Several epochs of one length as one: their mean duration, fixed cost and first batch, the rate that
    leaves, and how much the durations varied (the race's noise floor for this fit: ``decision.Noise``)."""
    durations = [e.epoch_seconds for e in epochs]
    seconds = statistics.fmean(durations)
    fixed = statistics.fmean(e.fixed_seconds for e in epochs)
    first = [e.first_batch_seconds for e in epochs if e.first_batch_seconds is not None]
    batches = epochs[0].batches
    spread = statistics.stdev(durations) / seconds if len(durations) > 1 else 0.0
    return WindowTiming(batches, seconds, batches / max(seconds - fixed, 1e-9), fixed,
                        statistics.fmean(first) if first else None, len(epochs), spread,
                        all(e.steady_from_middle for e in epochs))


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


