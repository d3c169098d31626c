"""Model-bound: batches cost nothing (slices of an in-memory array), the model is heavy.

Loader settings cannot help here; a tuner should say so and keep the defaults.
"""

import keras
import numpy as np

BATCH_SIZE = 64
FEATURES = 512


class InMemoryBatches(keras.utils.PyDataset):
    def __init__(self, batches: int = 100, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(batches * BATCH_SIZE, FEATURES)).astype("float32")
        self.y = rng.normal(size=(batches * BATCH_SIZE, 1)).astype("float32")
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rows = slice(index * BATCH_SIZE, (index + 1) * BATCH_SIZE)
        return self.x[rows], self.y[rows]


def make_dataset():
    return InMemoryBatches()


def make_model():
    model = keras.Sequential(
        [keras.Input((FEATURES,))] + [keras.layers.Dense(1536, activation="relu") for _ in range(3)] + [keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    return model
