"""Batches of 7 MB: 3-D patches cut from an in-memory scan, flipped, and normalised per patch.

A uint16 volume is held in memory; each batch cuts 16 patches of 48^3
voxels, flips some, and scales each to zero mean and unit variance as
float32: 7 MB a batch, in numpy calls that release the GIL. Process
workers pay for every batch twice more, pickled through a pipe and copied
into the queue; threads share it. The model pools the volume first, so an
epoch of 80 batches lasts about 2 s.
"""

import keras
import numpy as np

BATCH_SIZE = 16
PATCH = 48
VOLUME = (160, 160, 160)


class VolumePatches(keras.utils.PyDataset):
    def __init__(self, batches: int = 80, **kwargs):
        super().__init__(**kwargs)
        self.volume = np.random.default_rng(0).integers(0, 4096, size=VOLUME, dtype=np.uint16)
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        corners = rng.integers(0, np.array(VOLUME) - PATCH, size=(BATCH_SIZE, 3))
        patches = np.stack([self.volume[a:a + PATCH, b:b + PATCH, c:c + PATCH] for a, b, c in corners])
        patches = patches.astype(np.float32)
        flips = rng.random(BATCH_SIZE) < 0.5
        patches[flips] = patches[flips, ::-1]
        mean = patches.mean(axis=(1, 2, 3), keepdims=True)
        std = patches.std(axis=(1, 2, 3), keepdims=True) + 1e-6
        x = ((patches - mean) / std)[..., None]
        return x, mean.reshape(BATCH_SIZE, 1) / 4096.0


def make_dataset():
    return VolumePatches()


def make_model():
    model = keras.Sequential([
        keras.Input((PATCH, PATCH, PATCH, 1)),
        keras.layers.AveragePooling3D(4),
        keras.layers.Conv3D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling3D(),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    return model
