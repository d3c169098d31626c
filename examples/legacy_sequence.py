"""Legacy Keras 2: a tf_keras.utils.Sequence whose batches wait 20 ms on storage.

The same data code as ``io_bound.py``, written for tf-keras. tune-loader
tunes it under tf-keras (``fit_generator`` with workers, as legacy code calls
it) and, with ``--compare-keras3``, also as a Keras 3 PyDataset, so the
report shows what moving would gain.

    tune-loader examples/legacy_sequence.py
    tune-loader examples/legacy_sequence.py --compare-keras3
"""

import time

import numpy as np
import tf_keras

BATCH_SIZE = 32
FEATURES = 64
STORAGE_LATENCY_SECONDS = 0.020


class RemoteShardsSequence(tf_keras.utils.Sequence):
    def __init__(self, batches: int = 400):
        self.batches = batches
        rng = np.random.default_rng(0)
        self.rows = rng.normal(size=(4096, FEATURES)).astype("float32")

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        time.sleep(STORAGE_LATENCY_SECONDS)  # one round trip to the storage service
        start = (index * BATCH_SIZE) % (len(self.rows) - BATCH_SIZE)
        x = self.rows[start:start + BATCH_SIZE]
        return x, x.sum(axis=1, keepdims=True)


def make_dataset():
    return RemoteShardsSequence()
