"""BLAS-heavy: sensor windows whitened per batch with an eigen-decomposition of their covariance.

Each batch draws 32 windows of 64 channels x 512 steps, estimates the
channels' covariance over time, decomposes it (LAPACK's eigh) and whitens
every window with it, then takes a random projection: matrix products and
a decomposition per sample, on OpenBLAS, which runs a thread per core in
every worker. The grid times each pool also at one BLAS thread per worker.
"""

import keras
import numpy as np

BATCH_SIZE = 32
CHANNELS, STEPS, FEATURES = 64, 512, 96
PROJECTION = np.random.default_rng(1).standard_normal((CHANNELS * CHANNELS, FEATURES)).astype("float32") / CHANNELS


class WhitenedWindows(keras.utils.PyDataset):
    def __init__(self, batches: int = 60, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        mixing = rng.standard_normal((BATCH_SIZE, CHANNELS, CHANNELS)).astype("float32")
        windows = mixing @ rng.standard_normal((BATCH_SIZE, CHANNELS, STEPS)).astype("float32")
        covariance = windows @ windows.transpose(0, 2, 1) / STEPS
        values, vectors = np.linalg.eigh(covariance)
        whitener = vectors @ (vectors.transpose(0, 2, 1) / np.sqrt(values + 1e-3)[..., None])
        white = whitener @ windows
        gram = (white @ white.transpose(0, 2, 1)).reshape(BATCH_SIZE, -1) / STEPS
        x = np.tanh(gram @ PROJECTION)
        return x, values[:, -1:] / values.sum(axis=1, keepdims=True)


def make_dataset():
    return WhitenedWindows()
