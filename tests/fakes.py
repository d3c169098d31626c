"""Fakes, named as such: no Keras runs here. A measurer and an engine whose timings come from a formula,
for millisecond tests of the search and of the trial process's session.

The fake measurer's formula mimics the shape measured on real machines:
threads scale for waiting code, processes pay a larger start-up,
parallelism is capped by the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from probes.profiles import DataKind
from tuner.core import Backend, EngineName, LoaderConfig, TrialStatus, WindowTiming
from tuner.measure.epoch_model import window_timing
from tuner.search.measurer import Measurement, TrialStopped

WINDOW_BATCHES = 50


@dataclass
class FakeMeasurer:
    """Times a setting by formula: ``rate_of(config)`` when given, else a producer that scales with the
    batches in flight up to the model's rate. ``noise`` wobbles each window deterministically by up to
    that share (uniformly, from a generator seeded with ``seed``); ``fail_when`` stops a setting,
    ``busy_when`` reports other processes' load."""

    batch_seconds: float = 0.02
    model_seconds: float = 0.002
    noise: float = 0.0
    fail_when: callable = None
    busy_when: callable = None  # (config, window_index) -> cores other processes took during that window
    rate_of: callable = None
    window_seconds: float = 0.0  # what each call reports as its wall time (0: the window's own length)
    seed: int = 0
    calls: list = field(default_factory=list)
    epochs_per_fit: list = field(default_factory=list)  # what each call asked for, in call order
    batches_per_fit: list = field(default_factory=list)

    def __post_init__(self):
        self.random = np.random.default_rng(self.seed)
        self.clock = 0.0  # the wall time the calls so far reported: a clock for tests of time budgets

    def now(self) -> float:
        return self.clock

    def rate(self, config: LoaderConfig) -> float:
        if self.rate_of:
            return self.rate_of(config)
        producer = config.effective_parallelism / self.batch_seconds
        return min(producer, 1.0 / self.model_seconds)

    def measure(self, config: LoaderConfig, window_index: int, epochs: int = 1,
                batches: int | None = None) -> Measurement:
        self.calls.append((config, window_index))
        self.epochs_per_fit.append(epochs)
        self.batches_per_fit.append(batches)
        if self.fail_when and self.fail_when(config):
            raise TrialStopped(TrialStatus.FAILED, "fake hang: timed out")
        wobble = 1.0 + self.noise * float(self.random.uniform(-1.0, 1.0))
        rate = self.rate(config) * wobble
        fixed = 0.05 * config.workers if config.use_multiprocessing else 0.002 * config.workers
        timing = WindowTiming(WINDOW_BATCHES, fixed + WINDOW_BATCHES / rate, rate, fixed)
        memory = (600 + (40 * config.workers if config.use_multiprocessing else 1)) * 2**20
        busy = self.busy_when(config, window_index) if self.busy_when else 0.0
        wall = self.window_seconds or timing.epoch_seconds
        self.clock += wall
        return Measurement(timing, memory, 0, wall, busy)


class FakeModel:
    """Stands in for a compiled Keras model: the model probe calls these two methods."""

    def __init__(self, step_seconds: float = 0.0):
        self.step_seconds = step_seconds
        self.steps = 0

    def train_on_batch(self, x, y=None, sample_weight=None):
        self.steps += 1

    def count_params(self) -> int:
        return 42


class FakeEngine:
    """A ``KerasEngine`` without Keras: windows are timed by a formula, batches come from the dataset.

    Each window really calls the dataset for its batches (so offsets and
    failures behave as under Keras) and reports ``batch_seconds`` per batch.
    """

    name = EngineName.KERAS3
    backend = Backend.TENSORFLOW

    def __init__(self, batch_seconds: float = 0.01):
        self.batch_seconds = batch_seconds
        self.windows: list[tuple[LoaderConfig, int, int]] = []

    def adopt(self, dataset):
        return dataset

    def kind(self, dataset) -> DataKind:
        return DataKind.PYDATASET

    def num_batches(self, dataset) -> int | None:
        return len(dataset)

    def user_knobs(self, dataset) -> dict:
        return {}

    def batch(self, dataset, index: int):
        return dataset[index]

    def fresh_stream(self, dataset):
        return None  # its batches have an index

    def run_window(self, model, dataset, config: LoaderConfig, batches: int, offset: int, epochs: int = 1) -> WindowTiming:
        self.windows.append((config, batches, offset))
        for index in range(batches):
            dataset[(offset + index) % len(dataset)]
        period = self.batch_seconds / config.effective_parallelism
        return window_timing(0.0, [(i + 1) * period for i in range(batches)], batches * period)

    def read_window(self, dataset, config: LoaderConfig, batches: int, offset: int) -> float:
        """The data alone: the batches really read, the seconds by the formula ``run_window`` uses."""
        for index in range(batches):
            dataset[(offset + index) % len(dataset)]
        return batches * self.batch_seconds / config.effective_parallelism

    def run_cached_window(self, model, batch, config, batches, dataset=None, measure_epoch_end=True):
        period = 0.001 * (1 + config.workers)
        timing = window_timing(0.0, [(i + 1) * period for i in range(batches)], batches * period + 0.01)
        return timing, 0.0005 * batches, 0.02 if measure_epoch_end else None

    def build_default_model(self, batch):
        return FakeModel(), "fake default model"

    def describe_model(self, model) -> str:
        return "a fake model"

    def owns_model(self, model) -> bool:
        return isinstance(model, FakeModel)


class FakeDataset:
    """Indexable batches of numpy arrays, ``fails_at`` raising: the data code a fake engine trains on."""

    def __init__(self, batches: int = 20, fails_at: int | None = None):
        self.batches = batches
        self.fails_at = fails_at

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        if index == self.fails_at:
            raise ValueError(f"cannot read shard {index}")
        x = np.full((4, 3), index, dtype="float32")
        return x, x.sum(axis=1)


class FakeFitModel:
    """A model whose ``fit`` runs the callback calls of one real ``fit`` per epoch and sleeps
    ``epoch_seconds(config)`` for each (the setting read from the data's knobs), raising for a setting in
    ``fails``: what ``tuner.training``'s loop drives, without Keras."""

    def __init__(self, epoch_seconds, fails=()):
        self.epoch_seconds, self.fails = epoch_seconds, set(fails)
        self.stop_training, self.history, self.fits = False, None, []

    def fit(self, data, epochs, initial_epoch, callbacks, verbose, **kwargs):
        config = data.config
        self.fits.append((initial_epoch, config))
        self.stop_training = False
        callbacks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            if config in self.fails:
                raise RuntimeError(f"{config.label()} breaks")
            time.sleep(self.epoch_seconds(config))
            callbacks.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
        callbacks.on_train_end({"loss": 0.0})
        return self.history
