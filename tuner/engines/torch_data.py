"""The torch DataLoader engine's data side: the user's batches by index, and the loaders that time them.

It imports no Keras: under forkserver or spawn each DataLoader worker unpickles
a window of these, and a user's own workers import no Keras either, so neither
does a timed one (``probes.start_cost`` measures what they do import).

The user's loader fixes what a batch is: its dataset, its batch sampler's
index lists (drawn once, so every setting times the same batches) and its
``collate_fn``. A window's loader makes exactly those batches, one item per
batch, so a worker does what the user's workers do, plus the heartbeat.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_convert

from tuner.core import LoaderConfig
from tuner.engines import common
from tuner.engines.knobs import DATALOADER_KNOBS
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat


class LoaderSource:
    """The user's loader as batches by index: from a ``DataLoader``, or from a torch ``Dataset``'s
    ``make_dataloader()`` called with no arguments (its defaults)."""

    def __init__(self, user: DataLoader | Dataset):
        template = user if isinstance(user, DataLoader) else user.make_dataloader()
        if not isinstance(template, DataLoader):
            raise TuneLoaderError(f"{type(user).__name__}.make_dataloader() must return a torch DataLoader. "
                                  f"Received: {type(template).__name__}")
        if isinstance(template.dataset, IterableDataset):
            raise TuneLoaderError(
                f"{type(template.dataset).__name__} is an IterableDataset: its batches have no index, so every "
                "worker would stream its own copy, and tune-loader cannot time settings on the same batches. "
                "Fix: give a map-style Dataset (__len__ and __getitem__). Received: an IterableDataset")
        self.dataset = template.dataset
        self.class_name = type(self.dataset).__name__
        self.collate_fn = template.collate_fn
        self.worker_init_fn = template.worker_init_fn
        self.timeout = template.timeout
        self.batched = template.batch_sampler is not None  # batch_size=None: every sample is a batch
        sampler = template.batch_sampler if self.batched else template.sampler
        self.indices = [list(batch) if self.batched else batch for batch in sampler]
        self.num_batches = len(self.indices)
        self.user_knobs = {"num_workers": template.num_workers, "prefetch_factor": template.prefetch_factor,
                           "persistent_workers": template.persistent_workers}

    def batch(self, index: int) -> Any:
        """Batch ``index`` as the user's loader makes it: the samples, then its ``collate_fn``."""
        chosen = self.indices[index]
        if self.batched:
            return self.collate_fn([self.dataset[i] for i in chosen])
        return self.collate_fn(self.dataset[chosen])

    def loader(self, config: LoaderConfig, batches: int, offset: int) -> DataLoader:
        return loader_for(_Window(self, batches, offset, config.native_threads), config, self.worker_init_fn,
                       self.timeout)


class PyDatasetSource:
    """A Keras PyDataset as a DataLoader with ``batch_size=None`` sees it: batch i is ``dataset[i]``, its
    arrays made tensors (``default_convert``), in the worker."""

    def __init__(self, dataset):
        self.dataset, self.num_batches = dataset, dataset.num_batches

    def batch(self, index: int) -> Any:
        return default_convert(self.dataset[index])

    def loader(self, config: LoaderConfig, batches: int, offset: int) -> DataLoader:
        return loader_for(_Window(self, batches, offset, config.native_threads), config)


class _Window(Dataset):
    """``batches`` of the source's batches from ``offset`` on (wrapping), one item each, watched."""

    def __init__(self, source: LoaderSource | PyDatasetSource, batches: int, offset: int, native_threads: int | None):
        self.source, self.batches, self.offset, self.native_threads = source, batches, offset, native_threads

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        common.limit_native_threads(self.native_threads)
        position = (self.offset + index) % self.source.num_batches
        with heartbeat.batch(position):
            return self.source.batch(position)


class Repeated(Dataset):
    """One batch at every index: free data for the pipeline probe."""

    def __init__(self, batch, batches: int):
        self.batch, self.batches = batch, batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        return self.batch


def _as_is(batch):
    """The loader's collate: a window's items are already batches."""
    return batch


def loader_for(items: Dataset, config: LoaderConfig, worker_init_fn=None, timeout: float = 0) -> DataLoader:
    knobs = DATALOADER_KNOBS.setting(config)
    pool = {} if not knobs.num_workers else {
        "prefetch_factor": knobs.prefetch_factor, "persistent_workers": knobs.persistent_workers,
        "multiprocessing_context": multiprocessing.get_start_method(), "worker_init_fn": worker_init_fn,
        "timeout": timeout}
    return DataLoader(items, batch_size=None, shuffle=False, collate_fn=_as_is, num_workers=knobs.num_workers,
                      **pool)


def retuned(user: DataLoader | Dataset, config: LoaderConfig) -> DataLoader:
    """The user's loader under ``config``: the same dataset, sampler (so each epoch is shuffled as the
    user's is), collate function and worker settings, with the setting's knobs; a Dataset's
    ``make_dataloader`` is called with them."""
    knobs = DATALOADER_KNOBS.values(config)
    if not isinstance(user, DataLoader):
        return user.make_dataloader(**knobs)
    pool = {} if not knobs["num_workers"] else {
        "prefetch_factor": knobs["prefetch_factor"], "persistent_workers": knobs["persistent_workers"],
        "multiprocessing_context": user.multiprocessing_context, "worker_init_fn": user.worker_init_fn,
        "timeout": user.timeout}
    order = ({"batch_sampler": user.batch_sampler} if user.batch_sampler is not None
             else {"sampler": user.sampler, "batch_size": None})
    return DataLoader(user.dataset, **order, collate_fn=user.collate_fn, pin_memory=user.pin_memory,
                      generator=user.generator, num_workers=knobs["num_workers"], **pool)


def shut_down(loader: DataLoader) -> None:
    """Ends a persistent loader's workers now, as its garbage collection would (torch has no public call)."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


def to_numpy(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.numpy()
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_numpy(item) for item in batch)
    if isinstance(batch, dict):
        return {key: to_numpy(value) for key, value in batch.items()}
    return batch
