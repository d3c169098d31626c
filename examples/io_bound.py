"""I/O-bound: every batch is one shard file fetched from storage with 20 ms latency.

Think of a bucket or a network file system: the data code spends nearly all
its time waiting for the storage round trip, not computing. The shards are
written to a temporary folder on first use; the latency of remote storage is
simulated with a sleep, since the local page cache would hide it.

    tune-loader examples/io_bound.py
"""

import tempfile
import time
from pathlib import Path

import keras
import numpy as np

BATCH_SIZE = 32
FEATURES = 64
STORAGE_LATENCY_SECONDS = 0.020


class RemoteShardsDataset(keras.utils.PyDataset):
    def __init__(self, batches: int = 240, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches
        self.folder = Path(tempfile.gettempdir()) / "tune_loader_io_example"
        self.folder.mkdir(exist_ok=True)
        if not self._shard(batches - 1).exists():
            rng = np.random.default_rng(0)
            for index in range(batches):
                np.save(self._shard(index), rng.normal(size=(BATCH_SIZE, FEATURES)).astype("float32"))

    def _shard(self, index: int) -> Path:
        return self.folder / f"shard_{index:05d}.npy"

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        time.sleep(STORAGE_LATENCY_SECONDS)  # one round trip to the storage service
        x = np.load(self._shard(index))
        y = x.sum(axis=1, keepdims=True)
        return x, y


def make_dataset():
    return RemoteShardsDataset()
