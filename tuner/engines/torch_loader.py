"""The torch DataLoader engine: Keras 3's ``fit`` over a ``torch.utils.data.DataLoader``, under any backend.

Keras 3 takes a DataLoader as it is (``torch_data_loader_adapter.py``): under
torch and JAX it iterates it, under TensorFlow through ``from_generator``
without a prefetch. Every epoch calls ``iter(loader)``, which starts
``num_workers`` processes, unless ``persistent_workers`` keeps the first
epoch's. The knobs timed are ``num_workers``, ``prefetch_factor`` and
``persistent_workers`` (``knobs.DataLoaderKnobs``), under the start method this
process was given (``--start-method``), passed as ``multiprocessing_context``.
The data side, which workers unpickle, is ``torch_data``.
"""

from __future__ import annotations

import time

import keras

from probes.profiles import DataKind
from tuner.core import EngineName, LoaderConfig, PoolKind, WindowTiming
from tuner.engines import common, training
from tuner.engines.keras3 import Keras3Engine, _EpochClock
from tuner.engines.knobs import DATALOADER_KNOBS
from tuner.engines.torch_data import LoaderSource, Repeated, loader_for, retuned, shut_down, to_numpy
from tuner.measure.epoch_model import start_batches


class TorchLoaderEngine(common.SourceEngine, Keras3Engine):
    """A torch DataLoader under Keras 3's ``fit`` (implements ``engines.KerasEngine``); the model side is
    Keras 3's, the dataset side its ``LoaderSource``'s."""

    name = EngineName.TORCH_DATALOADER
    source_type, data_kind = LoaderSource, DataKind.DATALOADER
    worker_modules = ()  # a DataLoader worker imports only what unpickling the dataset imports

    def batch(self, dataset: LoaderSource, index: int):
        """Batch ``index`` as numpy arrays, which the probes and every backend read."""
        return to_numpy(dataset.batch(index))

    def run_window(self, model: keras.Model, dataset: LoaderSource, config: LoaderConfig, batches: int,
                   offset: int, epochs: int = 1) -> WindowTiming:
        loader = dataset.loader(config, batches, offset)
        try:
            with common.native_threads_restored():
                return self.fit_epochs(model, loader, config, epochs, shuffle=False)
        finally:
            shut_down(loader)

    def feeder(self, dataset) -> training.Feeder:
        """The user's loader rebuilt under each setting (``dataset`` as the user gave it, not adopted)."""
        return _Rebuilt(dataset)

    def read_window(self, dataset: LoaderSource, config: LoaderConfig, batches: int, offset: int) -> float:
        """Seconds to read ``batches`` batches through a DataLoader under ``config``, with no model."""
        loader = dataset.loader(config, batches, offset)
        began = time.perf_counter()
        try:
            for _ in loader:
                pass
        finally:
            shut_down(loader)
        return time.perf_counter() - began

    def run_cached_window(self, model: keras.Model, batch, config: LoaderConfig, batches: int, dataset=None,
                          measure_epoch_end: bool = True) -> tuple[WindowTiming, float, float]:
        """Free data through a DataLoader inline or with worker processes. A DataLoader has no thread pool:
        the threads point is Keras's own, which the analytic model reads only as the base that process
        start-up is measured from."""
        if config.kind == PoolKind.THREADS:
            return super().run_cached_window(model, batch, config, batches, dataset, measure_epoch_end)
        clock = _EpochClock(start=start_batches(config))
        loader = loader_for(Repeated(batch, batches), config)
        cpu_start = time.process_time()
        try:
            model.fit(loader, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
        finally:
            shut_down(loader)
        after_epoch = time.perf_counter() - clock.end
        return clock.timing(), time.process_time() - cpu_start, after_epoch


class _Rebuilt:
    """The user's DataLoader rebuilt with each setting's knobs (``torch_data.retuned``), one loader per
    setting, so a persistent setting's workers live on from one epoch's ``fit`` to its next."""

    def __init__(self, user):
        self.user = user
        self.user_setting = DATALOADER_KNOBS.config_of(LoaderSource(user).user_knobs)
        self.loaders: dict[tuple, object] = {}

    def runs(self, config: LoaderConfig) -> bool:
        return not config.is_tf_data and config.native_threads is None

    def fit_input(self, config: LoaderConfig) -> tuple[object, dict]:
        key = config.equivalence_key()
        if key not in self.loaders:
            self.loaders[key] = retuned(self.user, config)
        return self.loaders[key], {"shuffle": False}

    def close(self) -> None:
        for loader in self.loaders.values():
            shut_down(loader)
        self.loaders.clear()
