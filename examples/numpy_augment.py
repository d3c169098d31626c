"""numpy image augmentation: random crops, flips and colour jitter on uint8 images.

Vectorised numpy work that releases the GIL for its inner loops.

    tune-loader examples/numpy_augment.py
"""

import keras
import numpy as np

BATCH_SIZE = 32
IMAGE = 72
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
        out = np.empty((BATCH_SIZE, CROP, CROP, 3), dtype=np.float32)
        for slot, pick in enumerate(picks):
            top, left = rng.integers(0, IMAGE - CROP + 1, size=2)
            image = self.images[pick, top:top + CROP, left:left + CROP].astype(np.float32) / 255.0
            if rng.random() < 0.5:
                image = image[:, ::-1]
            image = image * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
            out[slot] = np.clip(image, 0.0, 1.0)
        return out, self.labels[picks].astype("float32")


def make_dataset():
    return AugmentedImages()
