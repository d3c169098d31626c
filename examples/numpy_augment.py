"""numpy image augmentation: random crops, flips, colour jitter and a blur, vectorised over the batch.

Each step is one numpy operation on the whole batch (about 1.5 MB), and numpy
releases the GIL inside such loops, so threads can run batches in parallel.
(A per-image Python loop over small arrays would not: there the interpreter's
bookkeeping between tiny numpy calls holds the GIL most of the time.)

    tune-loader examples/numpy_augment.py
"""

import keras
import numpy as np

BATCH_SIZE = 32
IMAGE = 80
CROP = 64


class AugmentedImages(keras.utils.PyDataset):
    def __init__(self, batches: int = 120, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, size=(256, IMAGE, IMAGE, 3), dtype=np.uint8)
        self.labels = rng.integers(0, 10, size=256)

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        picks = rng.integers(0, len(self.images), size=BATCH_SIZE)
        top, left = rng.integers(0, IMAGE - CROP + 1, size=2)
        images = self.images[picks, top:top + CROP, left:left + CROP].astype(np.float32) / 255.0
        flip = rng.random(BATCH_SIZE) < 0.5
        images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
        gain = rng.uniform(0.8, 1.2, size=(BATCH_SIZE, 1, 1, 3)).astype(np.float32)
        bias = rng.uniform(-0.1, 0.1, size=(BATCH_SIZE, 1, 1, 1)).astype(np.float32)
        images = images * gain + bias
        # A 7x7 box blur as shifted sums: 49 passes over the whole batch.
        padded = np.pad(images, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="edge")
        blurred = np.zeros_like(images)
        for dy in range(7):
            for dx in range(7):
                blurred += padded[:, dy:dy + CROP, dx:dx + CROP]
        np.clip(blurred / 49.0, 0.0, 1.0, out=blurred)
        return blurred, self.labels[picks].astype("float32")


def make_dataset():
    return AugmentedImages()
