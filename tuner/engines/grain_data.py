"""The Grain engine's data side: the user's Grain pipeline as batches by index, and the pipelines that time them.

It imports no Keras: Grain's ``mp_prefetch`` starts every worker by spawn and
sends it the pipeline with cloudpickle, so a timed worker imports what the
user's own workers import (the user's module, Grain, numpy) and no more.

Where its batches have an index, a pipeline is taken by it (``GrainSource``),
which lets every window time batches of its own: a ``MapDataset`` whose
elements are batches (``.batch()`` before ``to_iter_dataset``), or such a
``MapDataset``'s ``to_iter_dataset(read_options)``, with or without an
``mp_prefetch`` on top. Every other pipeline, a ``grain.DataLoader`` or an
``IterDataset`` transformed after ``to_iter_dataset``, is taken as a stream
(``GrainStream``): every window times its first batches, as every epoch of
the user's training starts a fresh iterator. The knobs timed are
``mp_prefetch``'s (a ``DataLoader``'s ``worker_count`` and
``worker_buffer_size``, ``knobs.GrainKnobs``). The read options stay the
user's (Grain's default: 16 threads, a buffer of 500), in the training
process and in each worker, as the user's pipeline has them.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Iterator
from typing import Any

import cloudpickle
import grain
from grain._src.python.dataset.transformations import limit

from tuner.core import LoaderConfig
from tuner.engines import common
from tuner.engines.knobs import GRAIN_KNOBS
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat

# mp_prefetch's machinery between the user's to_iter_dataset and the pipeline's top (grain 0.2).
_MP_WRAPPERS = ("_MpContextIterDataset", "_LazyWorkerSliceIterDataset")
# Transformations that pass every element on, one for one: a stream's length is its parent's.
_ONE_FOR_ONE = ("MapIterDataset", "WithOptionsIterDataset", "_DataLoaderStateIterDataset",
                "_DataLoaderPipelineMarkerIterDataset") + _MP_WRAPPERS
ENDLESS = 2**62  # a length this long is a repeat() without a count (sys.maxsize for an endless sampler)
_NO_READ_THREADS = grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)


def allow_flag_access() -> None:
    """Grain 0.2.18 reads absl flags when ``mp_prefetch`` starts a worker and raises
    ``UnparsedFlagAccessError`` unless a program parsed them (google/grain#1355): marks them parsed, as the
    pasted code does, where nothing has parsed them yet."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class _Shipped:
    """Pickled as Grain sends a pipeline to its workers, by cloudpickle, so the probes' pickling test (plain
    pickle) refuses only what Grain's workers could not receive."""

    def __reduce__(self):
        return _restore, (type(self), cloudpickle.dumps(self._shipped()))

    def _shipped(self) -> dict:
        return self.__dict__


def _restore(cls: type, payload: bytes) -> Any:
    restored = cls.__new__(cls)
    restored.__dict__.update(pickle.loads(payload))
    return restored


class GrainSource(_Shipped):
    """The user's Grain pipeline as batches by index (``MapDataset[i]``), with the read options and the
    ``mp_prefetch`` it was handed over with."""

    def __init__(self, user: grain.MapDataset | grain.IterDataset):
        indexed = _indexed(user)
        if indexed is None:
            raise ValueError(f"A {type(user).__name__} whose batches have no index is a GrainStream: grain_data.taken")
        self.batches, self.read_options, workers, buffer = indexed
        self.class_name = type(user).__name__
        try:
            self.num_batches = len(self.batches)
        except TypeError as error:
            raise TuneLoaderError(
                f"{self.class_name} has no length ({error}), so an epoch has no end and settings cannot be timed "
                "on the same batches. Fix: hand over the pipeline without repeat(), as one epoch. "
                f"Received: {self.batches}") from error
        _refuse_endless(self.class_name, self.num_batches)
        self.user_knobs = {"worker_count": workers, "worker_buffer_size": buffer}

    def batch(self, index: int) -> Any:
        return self.batches[index]

    def pipeline(self, config: LoaderConfig, batches: int, offset: int) -> grain.IterDataset:
        """``batches`` of the user's batches from ``offset`` on (wrapping), through the user's read options
        and, for a process pool, ``mp_prefetch`` with the knobs ``config`` describes."""
        window = grain.MapDataset.range(batches).map(_Window(self, offset, config.native_threads))
        return with_knobs(window.to_iter_dataset(self.read_options), config)


def _refuse_endless(class_name: str, length: int) -> None:
    if length >= ENDLESS:
        raise TuneLoaderError(
            f"{class_name} repeats without end (repeat() with no count, or a sampler with num_epochs=None), so "
            "an epoch has no end. Fix: hand over one epoch of the pipeline (no repeat(), num_epochs=1). "
            f"Received: len() = {length}")


class GrainStream(_Shipped):
    """A Grain pipeline whose batches come only in order: a ``grain.DataLoader``, or an ``IterDataset``
    transformed after ``to_iter_dataset`` (a batch, a filter). A window is the first batches of a fresh
    iterator, as every epoch of the user's training starts one; the probes read a copy without read threads,
    so each ``next()`` makes its batch in the calling thread and times its own work."""

    def __init__(self, user: grain.DataLoader | grain.IterDataset):
        self.class_name = type(user).__name__
        if isinstance(user, grain.DataLoader):
            self.loader, self.chain = user, None
            options = user.multiprocessing_options
            workers, buffer = options.num_workers, options.per_worker_buffer_size
        else:
            self.loader = None
            self.chain, workers, buffer = _below_mp_prefetch(user)
        self.user_knobs = {"worker_count": workers, "worker_buffer_size": buffer}
        self.probes: Iterator | None = None
        unpooled = _rebuilt(self.loader, 0, 1)._dataset if self.loader is not None else self.chain
        self.records = _records(self.class_name, unpooled)
        known = _structural_length(unpooled)
        # Past a filter, one epoch counted as the user's pipeline reads it, without workers.
        self.num_batches = known if known is not None else sum(1 for _ in unpooled)

    def pipeline(self, config: LoaderConfig, batches: int, offset: int) -> grain.IterDataset | grain.DataLoader:
        """The first ``batches`` of the pipeline under the knobs ``config`` describes (``offset`` has no
        meaning for a stream), each worker under the native-thread limit. A ``DataLoader`` stays one, its
        sampler cut to the records of those batches: Keras trains on a DataLoader more slowly than on its
        dataset (1.2 s an epoch more with two workers, docs/engines.md), and the user's is a DataLoader."""
        knobs = GRAIN_KNOBS.setting(config)
        limit = _NativeLimit(config.native_threads)
        if self.loader is not None:
            records = math.ceil(batches * self.records / self.num_batches) * self.loader._shard_options.shard_count
            return _rebuilt(self.loader, knobs.worker_count, knobs.worker_buffer_size, limit,
                            sampler=_FirstRecords(self.loader._sampler, records))
        return _FirstBatches(with_knobs(self.chain.map(limit), config), batches)

    def fresh(self) -> Iterator:
        """A new iterator that makes each batch in the thread that asks (no read threads, no workers)."""
        if self.loader is not None:
            return iter(_rebuilt(self.loader, 0, 1, read_options=_NO_READ_THREADS))
        return iter(_without_read_threads(self.chain))

    def batch(self, index: int) -> Any:
        """The next batch of one iterator kept for the probes (a stream has no index), from the start again
        after its end."""
        if self.probes is None:
            self.probes = self.fresh()
        try:
            return next(self.probes)
        except StopIteration:
            self.probes = self.fresh()
            return next(self.probes)

    def _shipped(self) -> dict:
        return self.__dict__ | {"probes": None}  # an iterator with threads stays in its process



def _records(class_name: str, node: Any) -> int | None:
    """The records per epoch of the ``MapDataset`` at the root of ``node`` (a DataLoader's: its sampler's,
    on this shard), refused where it has no end; None without such a root."""
    while not isinstance(node, grain.MapDataset) and getattr(node, "parents", ()):
        node = node.parents[0]
    if not isinstance(node, grain.MapDataset):
        return None
    _refuse_endless(class_name, len(node))
    return len(node)


def _structural_length(node: Any) -> int | None:
    """The elements ``node`` yields per epoch, where it is a ``to_iter_dataset`` under batches and one-for-one
    transformations; None where a step's count depends on the data (a filter, a flat_map)."""
    name = type(node).__name__
    if _is_read(node):
        return len(node.parents[0])
    parent = _structural_length(node.parents[0]) if len(getattr(node, "parents", ())) == 1 else None
    if parent is None:
        return None
    if name in _ONE_FOR_ONE:
        return parent
    if name == "BatchIterDataset":
        whole, left = divmod(parent, node._batch_size)
        return whole + (1 if left and not node._drop_remainder else 0)
    return None


def _without_read_threads(node: Any) -> Any:
    """A copy of ``node`` whose ``to_iter_dataset`` reads without threads (the transformations above it
    copied onto the new parent, their functions shared)."""
    if _is_read(node):
        return node.parents[0].to_iter_dataset(_NO_READ_THREADS)
    twin = copy.copy(node)
    twin._parents = tuple(_without_read_threads(parent) if isinstance(parent, grain.IterDataset) else parent
                          for parent in node.parents)
    return twin


def _rebuilt(loader: grain.DataLoader, workers: int, buffer: int, *extra: Any,
             read_options: grain.ReadOptions | None = None, sampler: Any = None) -> grain.DataLoader:
    """``loader`` with other knobs (and ``extra`` operations last, ``sampler`` instead of its own), as Keras's
    own Grain adapter rebuilds one."""
    if workers:
        allow_flag_access()
    return grain.DataLoader(
        data_source=loader._data_source, sampler=sampler or loader._sampler, operations=[*loader._operations, *extra],
        worker_count=workers, worker_buffer_size=buffer, shard_options=loader._shard_options,
        read_options=read_options or loader._read_options)


class _FirstRecords:
    """A sampler's first ``records`` (a grain ``Sampler``: record metadata by index, IndexError past the end)."""

    def __init__(self, sampler: Any, records: int):
        self.sampler, self.records = sampler, records

    def __len__(self) -> int:
        return self.records

    def __getitem__(self, index: int) -> Any:
        if index >= self.records:
            raise IndexError(index)
        return self.sampler[index]


class _FirstBatches(grain.experimental.LimitIterDataset):
    """The first ``count`` elements; the iterator below closed after the last, so a pool's workers stop with
    the epoch, as at the end of the user's, instead of when the iterator is collected."""

    def __iter__(self) -> _ClosingIterator:
        return _ClosingIterator(self._parent.__iter__(), self._count)


class _ClosingIterator(limit._LimitDatasetIterator):  # grain 0.2's private iterator, which LimitIterDataset builds
    def __next__(self) -> Any:
        try:
            return super().__next__()
        except StopIteration:
            self._parent.close()
            raise


class _NativeLimit(grain.transforms.Map):
    """The native-thread limit set in whichever process or thread makes the batch (a no-op without one)."""

    def __init__(self, native_threads: int | None):
        self.native_threads = native_threads

    def map(self, element: Any) -> Any:
        common.limit_native_threads(self.native_threads)
        return element


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
    knobs = GRAIN_KNOBS.setting(config)
    if not knobs.worker_count:
        return pipeline
    allow_flag_access()
    return pipeline.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=knobs.worker_count, per_worker_buffer_size=knobs.worker_buffer_size))


def taken(user: Any) -> GrainSource | GrainStream:
    """The user's pipeline by its batches' index where they have one, else as a stream."""
    return GrainSource(user) if _indexed(user) else GrainStream(user)


def _indexed(user: Any) -> tuple[grain.MapDataset, grain.ReadOptions, int, int] | None:
    """The ``MapDataset`` of batches under the user's pipeline, its read options, and the worker count and
    buffer of an ``mp_prefetch`` on top (0 and 1: none); None where the batches have no index."""
    if isinstance(user, grain.MapDataset):
        return user, grain.ReadOptions(), 0, 1
    if isinstance(user, grain.DataLoader):
        return None
    node, workers, buffer = _below_mp_prefetch(user)
    if _is_read(node):
        return node.parents[0], node._read_options, workers, buffer
    return None


def _is_read(node: Any) -> bool:
    """Whether ``node`` is a ``MapDataset``'s ``to_iter_dataset``."""
    parents = getattr(node, "parents", ())
    return type(node).__name__ == "PrefetchIterDataset" and len(parents) == 1 and isinstance(parents[0], grain.MapDataset)


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
