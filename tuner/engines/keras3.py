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

import time

import keras

from tuner import engines
from tuner.engines import tfdata
from tuner.epoch_model import window_timing
from tuner.results import LoaderConfig, WindowTiming


def adopt(dataset) -> keras.utils.PyDataset:
    """The dataset as a PyDataset: a tf-keras Sequence is wrapped (the migration comparison)."""
    return dataset if isinstance(dataset, keras.utils.PyDataset) else SequenceAsPyDataset(dataset)


def kind(dataset: keras.utils.PyDataset) -> str:
    return "sequence as pydataset" if isinstance(dataset, SequenceAsPyDataset) else "pydataset"


def num_batches(dataset: keras.utils.PyDataset) -> int | None:
    """Batches per epoch, or None for an infinite dataset."""
    return dataset.num_batches


def batch(dataset: keras.utils.PyDataset, index: int):
    return dataset[index]


def set_knobs(dataset: keras.utils.PyDataset, config: LoaderConfig) -> None:
    """The three knobs, through the PyDataset setters (``fit()`` rejects them in Keras 3)."""
    dataset.workers = config.workers
    dataset.use_multiprocessing = config.use_multiprocessing
    dataset.max_queue_size = config.max_queue_size


class SequenceAsPyDataset(keras.utils.PyDataset):
    """A tf-keras Sequence's ``__len__`` and ``__getitem__`` as a Keras 3 PyDataset: what migrating means."""

    def __init__(self, sequence):
        super().__init__()
        self.sequence = sequence

    def __len__(self) -> int:
        return len(self.sequence)

    def __getitem__(self, index: int):
        return self.sequence[index]

    def on_epoch_end(self) -> None:
        self.sequence.on_epoch_end()


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


class _EpochClock(engines.EpochClock, keras.callbacks.Callback):
    pass


def run_window(model: keras.Model, dataset: keras.utils.PyDataset, config: LoaderConfig, batches: int, offset: int) -> WindowTiming:
    """Times one real ``fit`` epoch of ``batches`` batches under ``config`` (or through tf.data)."""
    clock = _EpochClock()
    if config.is_tf_data:
        data = tfdata.pipeline(dataset.__getitem__, dataset.num_batches, batches, offset)
    else:
        data = WindowView(dataset, batches, offset, config)
    model.fit(data, epochs=1, verbose=0, callbacks=[clock])
    return window_timing(clock.begin, clock.batch_ends, clock.end)


def time_epochs(model: keras.Model, dataset: keras.utils.PyDataset, config: LoaderConfig) -> tuple[float, float]:
    """A two-epoch ``fit`` over the real dataset: the yardstick for the epoch model (see
    ``engines.one_fit_and_one_epoch``)."""
    set_knobs(dataset, config)
    clock = _EpochClock()
    began = time.perf_counter()
    model.fit(dataset, epochs=2, verbose=0, callbacks=[clock])
    return engines.one_fit_and_one_epoch(began, clock, time.perf_counter())


def run_cached_window(
    model: keras.Model, batch, config: LoaderConfig, batches: int, dataset=None, measure_epoch_end: bool = True
) -> tuple[WindowTiming, float, float]:
    """One epoch of free data under ``config``: its timing, the parent's CPU seconds, and the seconds
    from ``on_epoch_end`` until ``fit`` returned (about 0.04 s with or without a pool here, so it is
    always measured: it costs nothing)."""
    clock = _EpochClock()
    cpu_start = time.process_time()
    model.fit(CachedView(batch, batches, config), epochs=1, verbose=0, callbacks=[clock])
    after_epoch = time.perf_counter() - clock.end
    return window_timing(clock.begin, clock.batch_ends, clock.end), time.process_time() - cpu_start, after_epoch


def build_default_model(batch: tuple):
    return engines.build_default_model(keras, batch, "Keras 3")


def describe_model(model: keras.Model) -> str:
    return f"{model.name}: {len(model.layers)} layers, {model.count_params():,} parameters"


def owns_model(model) -> bool:
    return isinstance(model, keras.Model)
