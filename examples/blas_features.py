"""BLAS-heavy data code: every sample is projected and summarised by its singular values.

Feature extraction that calls numpy's linear algebra per sample (random
projections, whitening, an SVD or eigen-decomposition of a patch) runs on
OpenBLAS, which starts one thread per core in every process. Two Keras
workers on two cores then run four busy BLAS threads; OpenBLAS's threads
spin while they wait, so such oversubscription costs more than it gains.
tune-loader searches BLAS/OpenMP threads per worker as a fourth knob here:
limited to one thread each, the workers share the cores instead.

    tune-loader examples/blas_features.py
"""

import keras
import numpy as np

BATCH_SIZE = 16
PATCH = 192
FEATURES = 32
PROJECTION = np.random.default_rng(0).standard_normal((PATCH, PATCH)).astype("float32") / np.sqrt(PATCH)


class SpectralFeatures(keras.utils.PyDataset):
    def __init__(self, batches: int = 48, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        features = []
        for _ in range(BATCH_SIZE):
            patch = rng.standard_normal((PATCH, PATCH), dtype="float32")
            projected = np.tanh(patch @ PROJECTION)
            features.append(np.linalg.svd(projected, compute_uv=False)[:FEATURES])
        x = np.stack(features).astype("float32")
        return x, x[:, :4].sum(axis=1)


def make_dataset():
    return SpectralFeatures()
