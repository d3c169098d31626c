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
  ``on_epoch_end``. So Sequence windows time the whole ``fit_generator``
  call, and the pipeline probe (free data) measures that cost per pool kind
  like any other fixed cost; the tuner then weighs it against the epoch's
  length.
- A plain generator with ``workers > 1`` gets one ``GeneratorEnqueuer`` per
  ``fit`` that is never stopped: its threads or processes outlive the call.
  The engine stops the ones it started after every window (the runner then
  reaps any process left), so one window cannot slow the next.
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

from tuner import engines
from tuner.engines import GeneratorData, tfdata
from tuner.epoch_model import window_timing
from tuner.results import LoaderConfig, WindowTiming

ENQUEUER_STOP_SECONDS = 5.0

_started_generator_enqueuers: weakref.WeakSet = weakref.WeakSet()
_original_start = data_utils.GeneratorEnqueuer.start


def _tracked_start(self, *args, **kwargs):
    _started_generator_enqueuers.add(self)
    return _original_start(self, *args, **kwargs)


# tf-keras never stops a generator's enqueuer; tracking the ones it starts
# is the only handle on them (see the module docstring).
data_utils.GeneratorEnqueuer.start = _tracked_start


def adopt(dataset):
    return dataset


def kind(dataset) -> str:
    return "generator" if isinstance(dataset, GeneratorData) else "sequence"


def num_batches(dataset) -> int | None:
    """Batches per epoch: ``len()`` of a Sequence; a generator has no length."""
    return None if isinstance(dataset, GeneratorData) else len(dataset)


def batch(dataset, index: int):
    """Batch ``index`` of a Sequence; a generator's next batch (it has no indices)."""
    return next(dataset.probe_iterator) if isinstance(dataset, GeneratorData) else dataset[index]


class SequenceWindow(tf_keras.utils.Sequence):
    """A full epoch of ``batches`` batches of the user's Sequence (see keras3.WindowView for why full)."""

    def __init__(self, inner, batches: int, offset: int):
        self.inner = inner
        self.batches = batches
        self.offset = offset
        self.inner_batches = len(inner)

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        return self.inner[(self.offset + index) % self.inner_batches]

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


class CachedSequence(tf_keras.utils.Sequence):
    """The same batch, ``batches`` times: tf-keras's pipeline with data that costs nothing."""

    def __init__(self, batch, batches: int):
        self.batch = batch
        self.batches = batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        return self.batch


def _repeat(batch):
    while True:
        yield batch


class _EpochClock(engines.EpochClock, tf_keras.callbacks.Callback):
    pass


def _fit(model, data, config: LoaderConfig, steps: int | None, epochs: int = 1) -> tuple[_EpochClock, float]:
    """Runs ``fit_generator`` for ``epochs`` epochs; returns its clock and when the call returned."""
    clock = _EpochClock()
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


def run_window(model, dataset, config: LoaderConfig, batches: int, offset: int) -> WindowTiming:
    """Times one real ``fit_generator`` epoch of ``batches`` batches under ``config`` (or through tf.data).

    A Sequence window is a view a few batches longer than the steps taken:
    the enqueuer then never runs dry, so the window does not pay the 5 s
    epoch-end stall (measured once by the pipeline probe and added to every
    epoch by the epoch model instead of to every window's wall time).
    """
    if config.is_tf_data:
        return _run_tf_data(model, dataset, batches, offset)
    if isinstance(dataset, GeneratorData):
        clock, _ = _fit(model, dataset.fresh(), config, batches)
    else:
        spare = config.max_queue_size + config.workers + 2
        clock, _ = _fit(model, SequenceWindow(dataset, batches + spare, offset), config, batches)
    return window_timing(clock.begin, clock.batch_ends, clock.end)


def _run_tf_data(model, dataset, batches: int, offset: int) -> WindowTiming:
    clock = _EpochClock()
    model.fit(tfdata.pipeline(dataset.__getitem__, len(dataset), batches, offset), epochs=1, verbose=0, callbacks=[clock])
    return window_timing(clock.begin, clock.batch_ends, clock.end)


def time_epochs(model, dataset, config: LoaderConfig) -> tuple[float, float]:
    """A two-epoch ``fit_generator`` over the real Sequence, its epoch-end stalls included: the yardstick
    for the epoch model (see ``engines.one_fit_and_one_epoch``)."""
    began = time.perf_counter()
    clock, returned = _fit(model, dataset, config, None, epochs=2)
    return engines.one_fit_and_one_epoch(began, clock, returned)


def run_cached_window(
    model, batch, config: LoaderConfig, batches: int, dataset=None, measure_epoch_end: bool = True
) -> tuple[WindowTiming, float, float | None]:
    """One epoch of free data under ``config``, fed the way ``dataset`` is: its timing, the parent's CPU
    seconds, and the seconds from ``on_epoch_end`` until ``fit_generator`` returned.

    A Sequence epoch here runs all ``len()`` batches, as real epochs do, so the
    epoch-end stall lands in the last number; without ``measure_epoch_end``
    it takes spare batches to skip the 5 s wait and returns None for it.
    """
    cpu_start = time.process_time()
    if isinstance(dataset, GeneratorData):
        clock, ended = _fit(model, _repeat(batch), config, batches)
    elif measure_epoch_end:
        clock, ended = _fit(model, CachedSequence(batch, batches), config, None)
    else:
        spare = config.max_queue_size + config.workers + 2
        clock, ended = _fit(model, CachedSequence(batch, batches + spare), config, batches)
    timing = window_timing(clock.begin, clock.batch_ends, clock.end)
    after_epoch = ended - clock.end if measure_epoch_end or isinstance(dataset, GeneratorData) else None
    return timing, time.process_time() - cpu_start, after_epoch


def build_default_model(batch: tuple):
    return engines.build_default_model(tf_keras, batch, "tf-keras")


def describe_model(model) -> str:
    return f"{model.name} (tf-keras): {len(model.layers)} layers, {model.count_params():,} parameters"


def owns_model(model) -> bool:
    return isinstance(model, tf_keras.Model)
