"""The tf-keras engine: times ``model.fit_generator`` epochs with the three knobs as its arguments.

Legacy Keras 2 facts this relies on (tf_keras 2.21, ``engine/data_adapter.py``
and ``utils/data_utils.py``):

- ``fit_generator`` is deprecated and forwards to ``fit`` with
  ``max_queue_size``, ``workers`` and ``use_multiprocessing``; it is what
  legacy code calls, so it is what is timed.
- A ``Sequence`` with ``workers > 1`` (or processes) gets an
  ``OrderedEnqueuer`` per epoch. At the epoch's end the adapter stops it,
  but tf.data's prefetch is by then waiting for one more batch in
  ``OrderedEnqueuer.get()``, a ``queue.get(timeout=5)`` on a queue that will
  never fill again: up to 5 s lost at every epoch end, after
  ``on_epoch_end``. The pipeline probe (free data) measures that cost per
  pool kind, and the epoch model adds it to every epoch.
- A plain generator with ``workers > 1`` gets one ``GeneratorEnqueuer`` per
  ``fit`` that is never stopped: its threads or processes outlive the call.
  The engine stops the ones it started after every window (the trial
  process then reaps any process left), so one window cannot slow the next.
- Threads call ``next()`` on the one generator: a plain generator raises
  "generator already executing" (tf-keras turns it into "Your generator is
  NOT thread-safe"). Processes each run their own copy: every batch is
  produced once per worker.
"""

from __future__ import annotations

import time
import warnings
import weakref

import tf_keras
from tf_keras.src.utils import data_utils

from probes.profiles import DataKind
from tuner.core import Backend, EngineName, LoaderConfig, WindowTiming
from tuner.engines import common, training
from tuner.engines.common import GeneratorData
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat
from tuner.measure.epoch_model import drain_batches, start_batches

ENQUEUER_STOP_SECONDS = 5.0

_started_generator_enqueuers: weakref.WeakSet = weakref.WeakSet()
_original_start = data_utils.GeneratorEnqueuer.start


def _tracked_start(self, *args, **kwargs):
    _started_generator_enqueuers.add(self)
    return _original_start(self, *args, **kwargs)


# tf-keras never stops a generator's enqueuer; tracking the ones it starts
# is the only handle on them (see the module docstring).
data_utils.GeneratorEnqueuer.start = _tracked_start


class SequenceWindow(tf_keras.utils.Sequence):
    """A full epoch of ``batches`` batches of ``inner`` from ``offset`` on (see keras3.WindowView for why full)."""

    def __init__(self, inner, batches: int, offset: int, native_threads: int | None = None):
        self.native_threads = native_threads
        self.inner = inner
        self.batches = batches
        self.offset = offset
        self.inner_batches = len(inner)

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        common.limit_native_threads(self.native_threads)
        position = (self.offset + index) % self.inner_batches
        with heartbeat.batch(position):
            return self.inner[position]

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


def _repeat(batch):
    while True:
        yield batch


class _EpochClock(common.EpochClock, tf_keras.callbacks.Callback):
    pass


class _OneTraining(training.HeldBounds, tf_keras.callbacks.CallbackList):
    """The callback list every per-epoch ``fit`` of one ``tuner.fit`` shares (``training.HeldBounds``)."""


def _fit(model, data, config: LoaderConfig, steps: int | None, epochs: int = 1,
         drain: int | None = None) -> tuple[_EpochClock, float]:
    """Runs one ``fit_generator`` call of ``epochs`` epochs; returns its clock (``drain``: see
    ``epoch_model.drain_batches``) and when the call returned."""
    clock = _EpochClock(drain, start_batches(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fit_generator's deprecation warning, once per window
        model.fit_generator(
            data,
            steps_per_epoch=steps,
            epochs=epochs,
            verbose=0,
            callbacks=[clock],
            max_queue_size=config.max_queue_size,
            workers=config.workers,
            use_multiprocessing=config.use_multiprocessing,
        )
        ended = time.perf_counter()
    _stop_generator_enqueuers()
    return clock, ended


def _stop_generator_enqueuers() -> None:
    for enqueuer in list(_started_generator_enqueuers):
        if enqueuer.is_running():
            enqueuer.stop(timeout=ENQUEUER_STOP_SECONDS)
    _started_generator_enqueuers.clear()


def _spare(config: LoaderConfig) -> int:
    """Batches beyond the steps taken, so the enqueuer never runs dry and the window skips the 5 s stall."""
    return config.max_queue_size + config.workers + 2


class TfKerasEngine:
    """tf-keras Sequences and plain generators under ``fit_generator`` (implements ``engines.KerasEngine``)."""

    name = EngineName.TF_KERAS
    backend = Backend.TENSORFLOW  # tf-keras has no other

    def adopt(self, dataset):
        return dataset

    def kind(self, dataset) -> DataKind:
        return DataKind.GENERATOR if isinstance(dataset, GeneratorData) else DataKind.SEQUENCE

    def num_batches(self, dataset) -> int | None:
        """``len()`` of a Sequence; a generator has no length."""
        return None if isinstance(dataset, GeneratorData) else len(dataset)

    def user_knobs(self, dataset) -> dict:
        """None: tf-keras takes the knobs as ``fit()`` arguments, not from the data."""
        return {}

    def batch(self, dataset, index: int):
        """Batch ``index`` of a Sequence; a generator's next batch (it has no indices)."""
        return next(dataset.probe_iterator) if isinstance(dataset, GeneratorData) else dataset[index]

    def fresh_stream(self, dataset):
        """A fresh generator for a generator; None for a Sequence, whose batches have an index."""
        return dataset.fresh if isinstance(dataset, GeneratorData) else None

    def fit_epochs(self, model, data, config: LoaderConfig, epochs: int = 1) -> WindowTiming:
        clock = _EpochClock(drain_batches(config), start_batches(config))
        model.fit(data, epochs=epochs, verbose=0, callbacks=[clock])
        return clock.timing()

    def run_window(self, model, dataset, config: LoaderConfig, batches: int, offset: int,
                   epochs: int = 1) -> WindowTiming:
        """A lone Sequence epoch is a view a few batches longer than the steps taken (``_spare``): the 5 s
        epoch-end stall is measured once by the pipeline probe and added to every epoch by the epoch model
        instead of to every window. Consecutive epochs are full epochs of the view, as the user's are: the
        stall between them is part of the next epoch's time. A generator's epochs run on from one fresh
        generator, as the user's ``fit`` reads it."""
        native, drain = config.native_threads, drain_batches(config)
        with common.native_threads_restored():
            if isinstance(dataset, GeneratorData):
                clock, _ = _fit(model, common.limited_stream(dataset.fresh(), native), config, batches, epochs, drain)
            elif epochs == 1:
                clock, _ = _fit(model, SequenceWindow(dataset, batches + _spare(config), offset, native), config,
                                batches, drain=drain)
            else:
                clock, _ = _fit(model, SequenceWindow(dataset, batches, offset, native), config, None, epochs, drain)
        return clock.timing()

    def run_cached_window(self, model, batch, config: LoaderConfig, batches: int, dataset=None,
                          measure_epoch_end: bool = True) -> tuple[WindowTiming, float, float | None]:
        """Free data fed the way ``dataset`` is. A Sequence epoch runs all its batches, as real epochs do, so
        the epoch-end stall lands in the last number; without ``measure_epoch_end`` it takes spare batches to
        skip the 5 s wait and returns None for it."""
        cpu_start = time.process_time()
        cached = common.RepeatedBatch(batch)
        if isinstance(dataset, GeneratorData):
            clock, ended = _fit(model, _repeat(batch), config, batches)
        elif measure_epoch_end:
            clock, ended = _fit(model, SequenceWindow(cached, batches, 0), config, None)
        else:
            clock, ended = _fit(model, SequenceWindow(cached, batches + _spare(config), 0), config, batches)
        after_epoch = ended - clock.end if measure_epoch_end or isinstance(dataset, GeneratorData) else None
        return clock.timing(), time.process_time() - cpu_start, after_epoch

    def feeder(self, dataset) -> training.Feeder:
        """tf-keras's ``fit`` takes the knobs as arguments."""
        return training.FitArguments(dataset)

    def read_window(self, dataset, config: LoaderConfig, batches: int, offset: int) -> float:
        """Seconds to read ``batches`` batches of a Sequence through tf-keras's ``OrderedEnqueuer`` (inline
        without a pool), with no model."""
        window = SequenceWindow(dataset, batches, offset)
        began = time.perf_counter()
        if not config.parallel:
            for index in range(batches):
                window[index]
            return time.perf_counter() - began
        enqueuer = data_utils.OrderedEnqueuer(window, use_multiprocessing=config.use_multiprocessing, shuffle=False)
        enqueuer.start(workers=config.workers, max_queue_size=config.max_queue_size)
        try:
            batches_left = enqueuer.get()
            for _ in range(batches):
                next(batches_left)
        finally:
            enqueuer.stop()
        return time.perf_counter() - began

    def one_training(self, model, callbacks, *, verbose, epochs: int, steps: int | None):
        return _OneTraining(callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
                            steps=steps, model=model)

    def resumed_epoch(self, model) -> None:
        return None  # BackupAndRestore is refused (check_callbacks)

    def check_callbacks(self, callbacks) -> None:
        """tf-keras's ``BackupAndRestore`` restores through the model's training state in every ``fit``,
        which per-epoch fits would replay: it is refused rather than run differently."""
        if any(isinstance(c, tf_keras.callbacks.BackupAndRestore) for c in callbacks):
            raise TuneLoaderError(
                "tuner.fit does not run tf-keras's BackupAndRestore: it restores its state in every fit() call, "
                "and tuner.fit trains each epoch in a fit() call of its own. Fix: train with model.fit, or "
                "use ModelCheckpoint and initial_epoch to resume. Received: callbacks=[..., BackupAndRestore]")

    def build_default_model(self, batch: tuple):
        return common.build_default_model(tf_keras, batch, "tf-keras")

    def describe_model(self, model) -> str:
        return f"{model.name} (tf-keras): {len(model.layers)} layers, {model.count_params():,} parameters"

    def owns_model(self, model) -> bool:
        return isinstance(model, tf_keras.Model)
