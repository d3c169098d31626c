"""Image files: a keras.utils.PyDataset over JPEG paths that opens, decodes, augments and resizes each image
with PIL, the pattern of Keras's own PyDataset docs. Short epochs: 20 batches.

PIL releases the GIL while it decodes and resizes, so threads help partly; the Python around it holds it.
"""

import keras
import numpy as np
from PIL import Image

from _images import jpeg_folder

BATCH_SIZE = 16
TARGET = 96


class JpegFiles(keras.utils.PyDataset):
    def __init__(self, batches: int = 20, **kwargs):
        super().__init__(**kwargs)
        folder = jpeg_folder("image_files", count=BATCH_SIZE * batches, size=224)
        self.paths = sorted(folder.glob("*/*.jpg"))
        self.labels = np.array([path.parent.name == "squares" for path in self.paths], dtype="float32")
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        rows = range(index * BATCH_SIZE, (index + 1) * BATCH_SIZE)
        images = [self._load(self.paths[row], rng) for row in rows]
        return np.stack(images), self.labels[list(rows)]

    @staticmethod
    def _load(path, rng):
        with Image.open(path) as image:
            image = image.convert("RGB")
            left, top = (int(v) for v in rng.integers(0, 32, size=2))
            image = image.crop((left, top, left + 192, top + 192)).resize((TARGET, TARGET), Image.BILINEAR)
            if rng.random() < 0.5:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            return np.asarray(image, dtype="float32") / 255.0


def make_dataset():
    return JpegFiles()


def make_model():
    model = keras.Sequential([
        keras.Input((TARGET, TARGET, 3)),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
