"""What training epoch by epoch costs: one ``fit(epochs=E)`` against E calls of ``fit(initial_epoch=e, epochs=e + 1)``.

Training inside ``fit`` one epoch at a time is how the knobs can change between epochs
through Keras's public API (Keras reads a PyDataset's knobs once per ``fit``). This prints
the two wall times side by side, in one process, twice, under the backend ``KERAS_BACKEND``
names: a PyDataset of 100 batches of about 4 ms each, the same small model, one untimed
epoch first for tracing.

    KERAS_BACKEND=tensorflow python benchmarks/per_epoch_fits.py [--epochs 8]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

BATCHES, BATCH_SECONDS = 100, 0.004


class SleepyBatches(keras.utils.PyDataset):
    """The same batch every time, after a short sleep: data code whose cost does not vary."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x, self.y = rng.random((64, 32), "float32"), rng.random((64, 1), "float32")

    def __len__(self) -> int:
        return BATCHES

    def __getitem__(self, index: int):
        time.sleep(BATCH_SECONDS)
        return self.x, self.y


def traced_model() -> keras.Model:
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(SleepyBatches(), epochs=1, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    epochs = parser.parse_args().epochs
    for _ in range(2):
        model, data = traced_model(), SleepyBatches()
        began = time.perf_counter()
        model.fit(data, epochs=epochs, verbose=0)
        one = time.perf_counter() - began
        model = traced_model()
        began = time.perf_counter()
        for epoch in range(epochs):
            model.fit(data, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
        many = time.perf_counter() - began
        print(f"{keras.backend.backend()}: one fit {one:.2f} s, {epochs} fits {many:.2f} s, ratio {many / one:.3f}, "
              f"{(many - one) / epochs * 1000:.0f} ms a fit", flush=True)


if __name__ == "__main__":
    main()
