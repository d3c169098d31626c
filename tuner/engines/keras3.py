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
from typing import Any

import keras

from probes.profiles import DataKind
from tuner.core import Backend, EngineName, LoaderConfig, WindowTiming
from tuner.engines import common, training
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat
from tuner.measure.epoch_model import drain_batches, start_batches


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
    """A full epoch of ``batches`` batches taken from ``inner`` from ``offset`` on, under ``config``.

    Keras stops a pool cleanly only at the end of a real epoch; cutting an
    epoch short with ``steps_per_epoch`` drains the pending queue instead,
    which the user's full epochs never pay. Timing full epochs of a short
    view keeps every window faithful to a real epoch's start and end.
    """

    def __init__(self, inner, batches: int, offset: int, config: LoaderConfig):
        super().__init__()
        set_knobs(self, config)
        self.inner = inner
        self.batches = batches
        self.offset = offset
        self.inner_batches = inner.num_batches
        self.native_threads = config.native_threads

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        common.limit_native_threads(self.native_threads)
        position = self.offset + index
        position = position % self.inner_batches if self.inner_batches else position
        with heartbeat.batch(position):
            return self.inner[position]

    def on_epoch_begin(self) -> None:
        self.inner.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()


class _EpochClock(common.EpochClock, keras.callbacks.Callback):
    pass


class _ReadView(WindowView):
    """A window the screen of ``tuner.fit`` reads without training: no epoch ran, so the user's epoch hooks
    are not called."""

    def on_epoch_begin(self) -> None:
        pass

    def on_epoch_end(self) -> None:
        pass


class _PyDatasetKnobs(training.KnobsSet):
    """Each setting set on the PyDataset itself. Keras's ``fit`` calls the dataset's ``on_epoch_end`` once as
    it starts (``EpochIterator.reset``), so a training of one ``fit`` per epoch would call it at every epoch's
    start too: from the second ``fit`` on, that one call is swallowed, and the user's hook runs as often as
    in one ``fit``."""

    def __init__(self, dataset: keras.utils.PyDataset, user_setting: LoaderConfig):
        super().__init__(dataset, user_setting, set_knobs)
        self.fits = 0

    def fit_input(self, config: LoaderConfig):
        data, extra = super().fit_input(config)
        if self.fits:
            self._swallow_next_epoch_end()
        self.fits += 1
        return data, extra

    def _swallow_next_epoch_end(self) -> None:
        def swallowed():
            vars(self.dataset).pop("on_epoch_end", None)  # the class's method again, for the epochs' ends

        self.dataset.on_epoch_end = swallowed

    def close(self) -> None:
        vars(self.dataset).pop("on_epoch_end", None)
        super().close()


class _OneTraining(training.HeldBounds, keras.callbacks.CallbackList):
    """The callback list every per-epoch ``fit`` of one ``tuner.fit`` shares (``training.HeldBounds``)."""


class Keras3Engine:
    """``keras.utils.PyDataset`` under Keras 3's ``fit`` (implements ``engines.KerasEngine``)."""

    name = EngineName.KERAS3

    @property
    def backend(self) -> Backend:
        """The backend this Keras loaded (``KERAS_BACKEND``, keras.json, or the user's file setting either)."""
        name = keras.config.backend()
        if name not in tuple(Backend):
            raise TuneLoaderError(
                f"Keras loaded the {name} backend in your file's process, and Keras 3 trains only with the "
                f"{', '.join(Backend)} backends. Fix: do not set KERAS_BACKEND to {name} in your file. "
                f"Received: backend={name!r}")
        return Backend(name)

    def adopt(self, dataset) -> keras.utils.PyDataset:
        """The dataset as a PyDataset: a tf-keras Sequence is wrapped (the migration comparison)."""
        return dataset if isinstance(dataset, keras.utils.PyDataset) else SequenceAsPyDataset(dataset)

    def kind(self, dataset: keras.utils.PyDataset) -> DataKind:
        return DataKind.SEQUENCE_AS_PYDATASET if isinstance(dataset, SequenceAsPyDataset) else DataKind.PYDATASET

    def num_batches(self, dataset: keras.utils.PyDataset) -> int | None:
        return dataset.num_batches

    def user_knobs(self, dataset: keras.utils.PyDataset) -> dict[str, Any]:
        """A PyDataset holds Keras's three knobs; a wrapped tf-keras Sequence holds none (fit() took them)."""
        if isinstance(dataset, SequenceAsPyDataset):
            return {}
        return {"workers": dataset.workers, "use_multiprocessing": dataset.use_multiprocessing,
                "max_queue_size": dataset.max_queue_size}

    def batch(self, dataset: keras.utils.PyDataset, index: int):
        return dataset[index]

    def fresh_stream(self, dataset: keras.utils.PyDataset) -> None:
        return None  # a PyDataset's batches have an index

    def fit_epochs(self, model: keras.Model, data, config: LoaderConfig, epochs: int = 1,
                   shuffle: bool = True) -> WindowTiming:
        """``data`` under ``config``, whose pool paces the clock (``drain_batches``, ``start_batches``).
        ``shuffle`` as the user's fit has it: on for a PyDataset (fit's default, which orders its batches),
        off for a DataLoader, whose own sampler orders them and for which fit only warns that it ignores it."""
        clock = _EpochClock(drain_batches(config), start_batches(config))
        model.fit(data, epochs=epochs, verbose=0, callbacks=[clock], shuffle=shuffle)
        return clock.timing()

    def run_window(self, model: keras.Model, dataset, config: LoaderConfig, batches: int, offset: int,
                   epochs: int = 1) -> WindowTiming:
        if config.persistent_workers:
            return self._run_in_dataloader(model, dataset, config, batches, offset, epochs)
        with common.native_threads_restored():
            return self.fit_epochs(model, WindowView(dataset, batches, offset, config), config, epochs)

    def _run_in_dataloader(self, model: keras.Model, dataset, config: LoaderConfig, batches: int, offset: int,
                           epochs: int) -> WindowTiming:
        """A persistent pool: the PyDataset in a torch DataLoader (``knobs.PyDatasetInDataLoaderKnobs``)."""
        from tuner.engines.torch_data import PyDatasetSource, shut_down

        loader = PyDatasetSource(dataset).loader(config, batches, offset)
        try:
            with common.native_threads_restored():
                return self.fit_epochs(model, loader, config, epochs, shuffle=False)
        finally:
            shut_down(loader)

    def run_cached_window(self, model: keras.Model, batch, config: LoaderConfig, batches: int, dataset=None,
                          measure_epoch_end: bool = True) -> tuple[WindowTiming, float, float]:
        """The seconds after ``on_epoch_end`` are always measured here: Keras 3 has no stall there."""
        clock = _EpochClock(start=start_batches(config))
        cpu_start = time.process_time()
        model.fit(WindowView(common.RepeatedBatch(batch), batches, 0, config), epochs=1, verbose=0, callbacks=[clock])
        after_epoch = time.perf_counter() - clock.end
        return clock.timing(), time.process_time() - cpu_start, after_epoch

    def feeder(self, dataset: keras.utils.PyDataset) -> training.Feeder:
        """Each setting set on the PyDataset itself, as the user's own code would."""
        dataset = self.adopt(dataset)
        return _PyDatasetKnobs(dataset, LoaderConfig(dataset.workers, dataset.use_multiprocessing,
                                                     dataset.max_queue_size))

    def read_window(self, dataset, config: LoaderConfig, batches: int, offset: int) -> float:
        """Seconds to read ``batches`` batches through Keras's own adapter and pool under ``config``, with no
        model: the screen of ``tuner.fit``, which must not train on anything but the user's epochs."""
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        adapter = PyDatasetAdapter(_ReadView(dataset, batches, offset, config), shuffle=False)
        began = time.perf_counter()
        try:
            for _ in adapter.get_numpy_iterator():
                pass
        finally:
            adapter.on_epoch_end()
        return time.perf_counter() - began

    def one_training(self, model: keras.Model, callbacks, *, verbose, epochs: int, steps: int | None):
        return _OneTraining(callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
                            steps=steps, model=model)

    def resumed_epoch(self, model: keras.Model) -> int | None:
        """The epoch ``BackupAndRestore`` restored, read once: it sets ``model._initial_epoch`` in
        ``on_train_begin``, and every later ``fit`` would start there instead of at its ``initial_epoch``."""
        epoch, model._initial_epoch = getattr(model, "_initial_epoch", None), None
        return epoch

    def check_callbacks(self, callbacks) -> None:
        """Keras 3's callbacks all see one training through ``one_training``."""

    def build_default_model(self, batch: tuple):
        return common.build_default_model(keras, batch, "Keras 3")

    def describe_model(self, model: keras.Model) -> str:
        return f"{model.name}: {len(model.layers)} layers, {model.count_params():,} parameters"

    def owns_model(self, model) -> bool:
        return isinstance(model, keras.Model)
