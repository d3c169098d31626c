"""A torch DataLoader that Keras 3 trains on: pure-Python feature hashing per sample, about 15 ms a batch.

Keras 3's fit() takes a torch.utils.data.DataLoader under every backend. Its
workers are processes, so pure-Python work that holds the GIL scales with
num_workers; persistent_workers keeps them alive across epochs instead of
starting them at every epoch.

    pip install -e ".[torch]"
    KERAS_BACKEND=torch tune-loader examples/torch_dataloader.py
"""

import random
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

BATCH_SIZE = 32
FEATURES = 128
WORDS = ["data", "loader", "torch", "epoch", "batch", "worker", "persistent", "prefetch", "sampler", "collate",
         "tensor", "shuffle", "pin", "memory", "gradient", "keras"]


class HashedText(Dataset):
    """Sample i: the character-trigram counts of a generated document, hashed into FEATURES buckets."""

    def __init__(self, samples: int = 2560):
        self.samples = samples

    def __len__(self):
        return self.samples

    def __getitem__(self, index):
        rng = random.Random(index)
        words = [rng.choice(WORDS) for _ in range(240)]
        counts = [0.0] * FEATURES
        for word in words:
            padded = f"#{word}#"
            for i in range(len(padded) - 2):
                code = 0
                for char in padded[i:i + 3]:  # not hash(): its seed differs in a spawned worker
                    code = (code * 131 + ord(char)) & 0xFFFFFF
                counts[code % FEATURES] += 1.0
        x = torch.tensor(counts, dtype=torch.float32) / len(words)
        y = torch.tensor(float(sum(len(w) for w in words) % 5), dtype=torch.float32)
        return x, y


def make_dataset():
    """80 batches of 32, as most users write it: the DataLoader's defaults (no workers)."""
    return DataLoader(HashedText(), batch_size=BATCH_SIZE, shuffle=False)


def make_model():
    import keras

    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


if __name__ == "__main__":
    started = time.perf_counter()
    batch = next(iter(make_dataset()))
    print(np.shape(batch[0]), f"{time.perf_counter() - started:.3f} s for the first batch")
