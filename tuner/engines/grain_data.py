"""The Grain engine's data side: the user's Grain pipeline as batches by index, and the pipelines that time them.

It imports no Keras: Grain's ``mp_prefetch`` starts every worker by spawn and
sends it the pipeline with cloudpickle, so a timed worker imports what the
user's own workers import (the user's module, Grain, numpy) and no more.

A pipeline is taken where its batches have an index, which lets every
setting time the same batches: a ``MapDataset`` whose elements are batches
(``.batch()`` before ``to_iter_dataset``), or an ``IterDataset`` that is
such a ``MapDataset``'s ``to_iter_dataset(read_options)``, with or without an
``mp_prefetch`` on top. The knobs timed are ``mp_prefetch``'s: its worker
count and each worker's buffer (``knobs.GrainKnobs``). The read options stay
the user's (Grain's default: 16 threads, a buffer of 500), in the training
process and in each worker, as the user's pipeline has them.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle
import grain

from tuner.core import LoaderConfig
from tuner.engines import common
from tuner.engines.knobs import GRAIN_KNOBS
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat

# mp_prefetch's machinery between the user's to_iter_dataset and the pipeline's top (grain 0.2).
_MP_WRAPPERS = ("_MpContextIterDataset", "_LazyWorkerSliceIterDataset")


def allow_flag_access() -> None:
    """Grain 0.2.18 reads absl flags when ``mp_prefetch`` starts a worker and raises
    ``UnparsedFlagAccessError`` unless a program parsed them (google/grain#1355): marks them parsed, as the
    pasted code does, where nothing has parsed them yet."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class GrainSource:
    """The user's Grain pipeline as batches by index (``MapDataset[i]``), with the read options and the
    ``mp_prefetch`` it was handed over with."""

    def __init__(self, user: grain.MapDataset | grain.IterDataset):
        self.batches, self.read_options, workers, buffer = _unwrap(user)
        self.class_name = type(user).__name__
        try:
            self.num_batches = len(self.batches)
        except TypeError as error:
            raise TuneLoaderError(
                f"{self.class_name} has no length ({error}), so an epoch has no end and settings cannot be timed "
                "on the same batches. Fix: hand over the pipeline without repeat(), as one epoch. "
                f"Received: {self.batches}") from error
        if self.num_batches >= 2**62:
            raise TuneLoaderError(
                f"{self.class_name} repeats without end (repeat() with no count), so an epoch has no end. Fix: "
                "hand over one epoch of the pipeline, without repeat(). Received: len() = " + str(self.num_batches))
        self.user_knobs = {"worker_count": workers, "worker_buffer_size": buffer}

    def batch(self, index: int) -> Any:
        return self.batches[index]

    def pipeline(self, config: LoaderConfig, batches: int, offset: int) -> grain.IterDataset:
        """``batches`` of the user's batches from ``offset`` on (wrapping), through the user's read options
        and, for a process pool, ``mp_prefetch`` with the knobs ``config`` describes."""
        window = grain.MapDataset.range(batches).map(_Window(self, offset, config.native_threads))
        return with_knobs(window.to_iter_dataset(self.read_options), config)

    def __reduce__(self):
        """Pickled as Grain sends a pipeline to its workers, by cloudpickle, so the probes' pickling test
        (plain pickle) refuses only what Grain's workers could not receive."""
        return _restore, (cloudpickle.dumps(self.__dict__),)


def _restore(payload: bytes) -> GrainSource:
    source = GrainSource.__new__(GrainSource)
    source.__dict__.update(pickle.loads(payload))
    return source


class _Window:
    """Batch ``offset + i`` of the source (wrapping) for element i, watched, under the native-thread limit."""

    def __init__(self, source: GrainSource, offset: int, native_threads: int | None):
        self.source, self.offset, self.native_threads = source, offset, native_threads

    def __call__(self, index: int) -> Any:
        common.limit_native_threads(self.native_threads)
        position = (self.offset + int(index)) % self.source.num_batches
        with heartbeat.batch(position):
            return self.source.batches[position]


def with_knobs(pipeline: grain.IterDataset, config: LoaderConfig) -> grain.IterDataset:
    """``pipeline`` under ``mp_prefetch`` with the worker count and buffer ``config`` describes (none: as is)."""
    knobs = GRAIN_KNOBS.values(config)
    if not knobs["worker_count"]:
        return pipeline
    allow_flag_access()
    return pipeline.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=knobs["worker_count"], per_worker_buffer_size=knobs["worker_buffer_size"]))


def _unwrap(user: Any) -> tuple[grain.MapDataset, grain.ReadOptions, int, int]:
    """The ``MapDataset`` of batches under the user's pipeline, its read options, and the worker count and
    buffer of an ``mp_prefetch`` on top (0 and 1: none)."""
    if isinstance(user, grain.MapDataset):
        return user, grain.ReadOptions(), 0, 1
    if isinstance(user, grain.DataLoader):
        raise TuneLoaderError(
            "tune-loader times a Grain pipeline by its batches' index, so every setting runs the same batches, and "
            "a grain.DataLoader makes its batches from its sampler and operations, which it does not take apart. "
            "Fix: build the same pipeline as a dataset, make_dataset() returning grain.MapDataset.source(source)"
            ".shuffle(seed=...).map(...).batch(...), whose mp_prefetch takes the DataLoader's worker_count and "
            "worker_buffer_size. Received: a grain.DataLoader")
    node, workers, buffer = _below_mp_prefetch(user)
    parents = getattr(node, "parents", ())
    if type(node).__name__ == "PrefetchIterDataset" and len(parents) == 1 and isinstance(parents[0], grain.MapDataset):
        return parents[0], node._read_options, workers, buffer
    raise TuneLoaderError(
        f"tune-loader times a Grain pipeline by its batches' index, so every setting runs the same batches, and "
        f"this {type(user).__name__} has transformations after to_iter_dataset() ({node}), whose batches have "
        "none. Fix: batch on the MapDataset and end with to_iter_dataset() (and mp_prefetch, if any), or hand "
        "over the MapDataset itself: make_dataset() returning dataset.map(...).batch(...). "
        f"Received: {user}")


def _below_mp_prefetch(node: Any) -> tuple[Any, int, int]:
    """What an ``mp_prefetch`` on top of ``node`` prefetches, its worker count and buffer; ``node``, 0 and 1
    where there is none. Reads Grain 0.2's structure: options over an interleave of one process prefetch
    per worker, each over the parent (sliced, for two or more workers)."""
    inner = node.parents[0] if type(node).__name__ == "WithOptionsIterDataset" else node
    shards = getattr(inner, "_datasets", None)
    if type(inner).__name__ != "InterleaveIterDataset" or not shards or not all(
            type(shard).__name__ == "ProcessPrefetchIterDataset" for shard in shards):
        return node, 0, 1
    below = shards[0].parents[0]
    while type(below).__name__ in _MP_WRAPPERS:
        below = below.parents[0]
    return below, len(shards), shards[0]._buffer_size
