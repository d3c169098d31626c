"""The Grain engine: Keras 3's ``fit`` over a Grain ``MapDataset``, ``IterDataset`` or ``DataLoader``, under any backend.

Keras 3 takes a Grain dataset as it is (``grain_dataset_adapter.py``, from
Keras 3.11): under JAX and torch it iterates it, under TensorFlow through
``from_generator``; it reads two batches first to learn their shapes, and
knows no epoch length (an epoch ends when the iterator does). Every epoch
iterates the dataset anew, so an ``mp_prefetch`` starts its spawned workers
at every epoch. The knobs timed are ``mp_prefetch``'s (``knobs.GrainKnobs``);
the data side, which workers unpickle, is ``grain_data``.
"""

from __future__ import annotations

import statistics
import time
import warnings

import keras

from probes.profiles import DataKind
from tuner.core import EngineName, LoaderConfig, PoolKind, WindowTiming
from tuner.engines import common
from tuner.engines.grain_data import GrainSource, GrainStream, taken, with_knobs
from tuner.engines.keras3 import Keras3Engine, _EpochClock
from tuner.engines.knobs import GRAIN_KNOBS
from tuner.measure.epoch_model import start_batches

# Keras warns at every epoch of a dataset without a length that it "ran out of data": how a Grain epoch ends.
_RAN_OUT = "Your input ran out of data"


def by_length(clocks: list[common.EpochClock], pool_starts: bool) -> WindowTiming:
    """``fit``s' epochs as a fixed cost and a rate, from their durations, not the spacing of their batches:
    Grain's read threads and ``mp_prefetch`` buffers make batches while the training loop waits for the GIL
    or a pool starts, and hand them over in bursts (a 20-batch window's slope read 600 to 5,000 batches/s
    for pools that make 18 to 40, docs/engines.md). Epochs of two lengths, each after a fit's first timed
    from the end of the one before (``EpochClock.timing``), give both by least squares (duration = fixed +
    batches / rate). A lone epoch gives the rate of the whole, less, where a process pool starts
    (``pool_starts``), its wait for the first batch: spawned workers deliver nothing before they run. Either
    reading is final (``steady_from_middle``): the parent's re-reading would take a burst's late first
    batch for a start-up."""
    timed = [pair for clock in clocks for pair in _timed_epochs(clock)]
    lengths, durations = [n for n, _ in timed], [d for _, d in timed]
    longest = max(lengths)
    if len(set(lengths)) > 1:
        slope, fixed = statistics.linear_regression(lengths, durations)
        if slope > 0 and fixed >= 0:
            return WindowTiming(longest, fixed + slope * longest, 1 / slope, fixed, None, len(timed),
                                steady_from_middle=True)
    fixed = 0.0
    if pool_starts and len(clocks) == 1 and len(clocks[0].epochs) == 1 and longest > 1:
        begin, batch_ends, end = clocks[0].epochs[0]
        fixed = max(0.0, batch_ends[0] - begin - (end - batch_ends[0]) / (longest - 1))
    rate = sum(lengths) / (sum(durations) - fixed)
    return WindowTiming(longest, fixed + longest / rate, rate, fixed, None, len(timed), steady_from_middle=True)


def _timed_epochs(clock: common.EpochClock) -> list[tuple[int, float]]:
    """(batches, seconds) of each epoch after a fit's first, from the end of the one before; a lone
    epoch's own."""
    if len(clock.epochs) == 1:
        begin, batch_ends, end = clock.epochs[0]
        return [(len(batch_ends), end - begin)]
    return [(len(batch_ends), end - previous[2])
            for previous, (_, batch_ends, end) in zip(clock.epochs, clock.epochs[1:])]


class GrainEngine(common.SourceEngine, Keras3Engine):
    """A Grain pipeline under Keras 3's ``fit`` (implements ``engines.KerasEngine``); the model side is
    Keras 3's, the dataset side a ``GrainSource`` or ``GrainStream`` (``adopt`` picks which)."""

    name = EngineName.GRAIN
    data_kind = DataKind.GRAIN
    worker_modules = ()  # a spawned Grain worker imports only what unpickling the pipeline imports

    def adopt(self, dataset):
        """The pipeline by its batches' index where they have one (``GrainSource``), else as a stream."""
        return dataset if isinstance(dataset, (GrainSource, GrainStream)) else taken(dataset)

    def fit_epochs(self, model: keras.Model, data, config: LoaderConfig, epochs: int = 1) -> WindowTiming:
        """The epochs of one ``fit`` over ``data``, read by their length alone (``by_length``)."""
        return by_length([self._fit(model, data, config, epochs)], config.use_multiprocessing)

    def _fit(self, model: keras.Model, data, config: LoaderConfig, epochs: int) -> common.EpochClock:
        """One ``fit``, without ``shuffle``: the pipeline orders its own batches, as the user's does."""
        clock = _EpochClock(None, start_batches(config))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_RAN_OUT)
            model.fit(data, epochs=epochs, verbose=0, callbacks=[clock], shuffle=False)
        return clock

    def run_window(self, model: keras.Model, dataset: GrainSource, config: LoaderConfig, batches: int,
                   offset: int, epochs: int = 1) -> WindowTiming:
        """A lone epoch of ``batches``; several epochs, a fit of each of the knob set's lengths
        (``GrainKnobs.race_lengths``), whose durations give the fixed cost and the rate (``by_length``)."""
        lengths = GRAIN_KNOBS.race_lengths(batches) if epochs > 1 else (batches,)
        with common.native_threads_restored():
            return by_length([self._fit(model, dataset.pipeline(config, length, offset), config, epochs)
                              for length in lengths], config.use_multiprocessing)

    def run_cached_window(self, model: keras.Model, batch, config: LoaderConfig, batches: int, dataset=None,
                          measure_epoch_end: bool = True) -> tuple[WindowTiming, float, float]:
        """Free data through Grain without or with ``mp_prefetch``. Grain has no thread pool knob here:
        the threads point is Keras's own, which the analytic model reads only as the base that process
        start-up is measured from."""
        if config.kind == PoolKind.THREADS:
            return super().run_cached_window(model, batch, config, batches, dataset, measure_epoch_end)
        import grain

        clock = _EpochClock(start=start_batches(config))
        pipeline = with_knobs(grain.MapDataset.source([batch] * batches).to_iter_dataset(), config)
        cpu_start = time.process_time()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_RAN_OUT)
            model.fit(pipeline, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
        after_epoch = time.perf_counter() - clock.end
        return clock.timing(), time.process_time() - cpu_start, after_epoch
