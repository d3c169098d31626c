"""The classic Keras image pipeline: ImageDataGenerator(rescale, rotation_range, horizontal_flip)
.flow_from_directory over a folder of JPEGs, 320 images at 150 x 150 in two classes, 10 batches an epoch.

In Keras 3 its iterator is a keras.utils.PyDataset, so tune-loader tunes it like any other. Rotation needs
scipy (pip install 'tune-loader[examples]').
"""

import keras
from tensorflow.keras.preprocessing.image import ImageDataGenerator

from _images import jpeg_folder

SIZE = 150


def make_dataset():
    folder = jpeg_folder("flow_from_directory", count=320, size=SIZE)
    augment = ImageDataGenerator(rescale=1.0 / 255, rotation_range=40, horizontal_flip=True)
    return augment.flow_from_directory(folder, target_size=(SIZE, SIZE), batch_size=32, class_mode="binary", seed=0)


def make_model():
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
