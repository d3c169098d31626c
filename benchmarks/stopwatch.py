"""A plain stopwatch around a user's training, in its own process: what a user would time by hand.

    python benchmarks/stopwatch.py FILE WORKERS USE_MULTIPROCESSING MAX_QUEUE_SIZE EPOCHS [NATIVE_THREADS [PERSISTENT]]

Loads FILE's dataset and model as tune-loader does (its make_model, else the same small default model),
sets the three knobs the way the user would (PyDataset properties under Keras 3, fit_generator arguments
under tf-keras), and NATIVE_THREADS as the recommendation tells the user to (``threadpool_limits`` first
thing in every ``__getitem__``). WORKERS 0 means the tf.data pipeline the report hands over instead
(``map`` of the batch code with ``num_parallel_calls=AUTOTUNE``, then ``prefetch(AUTOTUNE)``). It runs one
untimed epoch (tracing), then one plain ``fit`` of EPOCHS epochs with ``time.perf_counter`` around the
call and a callback that only notes when each epoch ended, and prints as JSON ``batches_per_second``
(epochs after the first, from the end of the first to the end of the last: a long training's rate, as
the owner's stopwatch excludes the first epoch), ``median_epoch_batches_per_second`` (the median epoch
after the first: an inline epoch that waits for tf.data's autotuner counts once, not by its length) and ``whole_fit_batches_per_second`` (the whole call).
It shares no timing code with tune-loader: no windows, no epoch model. The Keras backend is whatever
``KERAS_BACKEND`` says, and process pools start by ``STOPWATCH_START_METHOD`` (fork, forkserver, spawn;
default this Python's), as in the user's own training. NATIVE_THREADS patches the dataset's class in this
process, which workers started by forkserver or spawn do not see, so it needs fork. A torch DataLoader is
rebuilt as its user would edit the line: the same dataset, batches and collate, with ``num_workers``,
``prefetch_factor`` and ``persistent_workers`` (PERSISTENT) from the pool the three knobs describe
(``tuner.engines.knobs.DataLoaderKnobs``), and ``multiprocessing_context`` the start method; a PyDataset
with PERSISTENT is handed to a DataLoader so (``batch_size=None``), as the report's code does.
A Grain pipeline gets ``mp_prefetch`` with ``worker_count`` WORKERS and ``worker_buffer_size``
MAX_QUEUE_SIZE / WORKERS (``knobs.GrainKnobs``) on its MapDataset of batches or its transformed IterDataset,
and a ``grain.DataLoader`` is rebuilt with those two, as the report's code does.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    """Runs under ``if __name__ == "__main__"``: Grain's mp_prefetch spawns workers that import this script."""
    path, workers, processes, queue, epochs = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "True", int(sys.argv[4]), int(sys.argv[5])
    native = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] != "default" else None
    persistent = len(sys.argv) > 7 and sys.argv[7] == "True"
    if method := os.environ.get("STOPWATCH_START_METHOD"):
        import multiprocessing

        multiprocessing.set_start_method(method, force=True)
        if native is not None and method != "fork":
            sys.exit(f"NATIVE_THREADS needs fork: workers started by {method} do not see the patched class")
    from tuner import engines
    from tuner.engines.common import standardize
    from tuner.core import LoaderConfig
    from tuner.userfile import find_dataset, find_model, import_user_file

    module = import_user_file(path)
    dataset = find_dataset(module, None, is_dataset=engines.is_dataset, is_dataset_class=engines.is_dataset_class).build()
    model_found = find_model(module, None, is_model=engines.is_model)
    engine = engines.resolve(dataset, None)
    if native is not None:
        limit_each_batch(type(dataset), native)
    model = model_found.build() if model_found else engine.build_default_model(
        standardize(engine.batch(engine.adopt(dataset), 0)))[0]
    knobs = {"workers": workers, "use_multiprocessing": processes, "max_queue_size": queue}
    callback = epoch_ends(engine.name)
    batches = engine.num_batches(engine.adopt(dataset))
    if engine.name == "grain":
        data = grain_with_knobs(dataset, LoaderConfig(workers, processes, queue))
        fit = lambda count, cb: model.fit(data, epochs=count, verbose=0, callbacks=cb)  # noqa: E731
    elif engine.name == "torch-dataloader" or persistent:
        loader = with_knobs(dataset, LoaderConfig(workers, processes, queue, persistent_workers=persistent))
        fit = lambda count, cb: model.fit(loader, epochs=count, verbose=0, callbacks=cb)  # noqa: E731
    elif workers == 0:
        data = tf_data_pipeline(dataset)
        fit = lambda count, cb: model.fit(data, epochs=count, verbose=0, callbacks=cb)  # noqa: E731
    elif engine.name == "keras3":
        for knob, value in knobs.items():
            setattr(dataset, knob, value)
        fit = lambda count, cb: model.fit(dataset, epochs=count, verbose=0, callbacks=cb)  # noqa: E731
    else:
        fit = lambda count, cb: model.fit_generator(dataset, epochs=count, verbose=0, callbacks=cb, **knobs)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(1, [])
        started = time.perf_counter()
        fit(epochs, [callback])
        seconds = time.perf_counter() - started
    ends = callback.ends
    each = [later - earlier for earlier, later in zip(ends, ends[1:])]
    print(json.dumps({"batches_per_second": (epochs - 1) * batches / (ends[-1] - ends[0]),
                      "median_epoch_batches_per_second": batches / statistics.median(each),
                      "whole_fit_batches_per_second": epochs * batches / seconds, "seconds": seconds}))


def with_knobs(user, config):
    """The user's DataLoader (or its Dataset's ``make_dataloader``) with the knobs ``config`` describes."""
    import multiprocessing

    from torch.utils.data import DataLoader

    from tuner.engines.knobs import DATALOADER_KNOBS

    knobs = DATALOADER_KNOBS.recorded(config, multiprocessing.get_start_method())
    if hasattr(user, "num_batches"):  # a PyDataset, as the report hands it over: batch i is dataset[i]
        return DataLoader(user, batch_size=None, shuffle=True, **knobs)
    if not isinstance(user, DataLoader):
        return user.make_dataloader(**knobs)
    batching = {"batch_sampler": user.batch_sampler} if user.batch_sampler is not None else {
        "batch_size": None, "sampler": user.sampler}
    return DataLoader(user.dataset, collate_fn=user.collate_fn, worker_init_fn=user.worker_init_fn,
                      timeout=user.timeout, **batching, **knobs)


def grain_with_knobs(user, config):
    """The user's Grain pipeline as the report's code edits it: a ``grain.DataLoader`` rebuilt with
    ``worker_count`` and ``worker_buffer_size``, else ``mp_prefetch`` with those knobs on what the user's
    ``mp_prefetch`` (if any) runs: the MapDataset of batches through ``to_iter_dataset`` with the user's read
    options, or the transformed ``IterDataset``; with no workers, a dataset as handed over."""
    import grain
    from absl import flags

    from tuner.engines import grain_data
    from tuner.engines.knobs import GRAIN_KNOBS

    knobs = GRAIN_KNOBS.values(config)
    if knobs["worker_count"] and not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # the pasted code's line (google/grain#1355)
    if isinstance(user, grain.DataLoader):
        return grain.DataLoader(data_source=user._data_source, sampler=user._sampler, operations=user._operations,
                                worker_count=knobs["worker_count"], worker_buffer_size=knobs["worker_buffer_size"],
                                shard_options=user._shard_options, read_options=user._read_options)
    if not knobs["worker_count"]:
        return user
    taken = grain_data.taken(user)
    below = (taken.chain if isinstance(taken, grain_data.GrainStream)
             else taken.batches.to_iter_dataset(taken.read_options))
    return below.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=knobs["worker_count"], per_worker_buffer_size=knobs["worker_buffer_size"]))


def epoch_ends(engine: str):
    """A callback that notes when each epoch ended, nothing else."""
    if engine in ("keras3", "torch-dataloader", "grain"):
        import keras as module
    else:
        import tf_keras as module

    class EpochEnds(module.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    return EpochEnds()


def tf_data_pipeline(dataset):
    """The tf.data code the report hands over, over the dataset's ``__getitem__``."""
    import numpy as np
    import tensorflow as tf

    example = dataset[0]
    dtypes = [tf.as_dtype(np.asarray(part).dtype) for part in example]

    def load(index):
        return [np.asarray(part) for part in dataset[int(index)]]

    def load_tensor(index):
        parts = tf.py_function(load, [index], Tout=dtypes)
        for part, sample in zip(parts, example):
            part.set_shape(np.asarray(sample).shape)
        return tuple(parts)

    return (tf.data.Dataset.range(len(dataset)).map(load_tensor, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def limit_each_batch(cls: type, native: int) -> None:
    """The recommendation's pasted line: ``threadpool_limits(limits=N)`` first thing in ``__getitem__``."""
    from threadpoolctl import threadpool_limits

    original = cls.__getitem__

    def __getitem__(self, index):
        threadpool_limits(limits=native)
        return original(self, index)

    cls.__getitem__ = __getitem__


if __name__ == "__main__":
    main()
