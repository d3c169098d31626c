"""Tuning inside training: ``tuner.fit`` trains a model on an I/O-bound PyDataset as ``model.fit`` would,
races the loader's settings on its own epochs, and trains the rest with the fastest.

Each batch waits 20 ms for remote storage (simulated with a sleep), so the defaults (one batch at a time)
leave the model idle most of the time.

    python examples/train_and_tune.py            # 12 epochs, then the report in tune-loader-out/fit
    python examples/train_and_tune.py --epochs 20
"""

import argparse
import time

import keras
import numpy as np

import tuner

FEATURES = 64


class RemoteBatches(keras.utils.PyDataset):
    """Batch ``i`` after a 20 ms round trip to storage; made here, so nothing is downloaded."""

    def __init__(self, batches: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(batches, 32, FEATURES)).astype("float32")
        self.y = self.x.sum(axis=2, keepdims=True)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        time.sleep(0.020)
        return self.x[index], self.y[index]


def make_model() -> keras.Model:
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batches", type=int, default=120, help="batches per epoch")
    args = parser.parse_args()
    model = make_model()
    history = tuner.fit(model, RemoteBatches(args.batches), epochs=args.epochs,
                        validation_data=RemoteBatches(20, seed=1),
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)])
    print(f"val_loss by epoch: {[round(v, 3) for v in history.history['val_loss']]}")


if __name__ == "__main__":
    main()
