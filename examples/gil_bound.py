"""GIL-bound: pure-Python feature hashing of text, about 20 ms a batch.

Tokenising, hashing n-grams and counting in Python loops holds the GIL the
whole time: threads cannot run it in parallel, processes can.

    tune-loader examples/gil_bound.py
"""

import random

import keras
import numpy as np

BATCH_SIZE = 32
HASH_BUCKETS = 256
WORDS = ["data", "loader", "keras", "epoch", "batch", "queue", "worker", "thread", "process", "model",
         "gradient", "tensor", "shuffle", "cache", "prefetch", "latency", "throughput", "memory"]


def _document(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(120))


def hash_features(text: str) -> list[float]:
    """Character trigram counts hashed into buckets, in plain Python."""
    counts = [0.0] * HASH_BUCKETS
    for word in text.split():
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            counts[hash(padded[i:i + 3]) % HASH_BUCKETS] += 1.0
    total = sum(counts) or 1.0
    return [c / total for c in counts]


class HashedTextDataset(keras.utils.PyDataset):
    def __init__(self, batches: int = 150, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = random.Random(index)
        docs = [_document(rng) for _ in range(BATCH_SIZE)]
        x = np.array([hash_features(d) for d in docs], dtype="float32")
        y = np.array([len(d) % 7 for d in docs], dtype="float32")
        return x, y


def make_dataset():
    return HashedTextDataset()
