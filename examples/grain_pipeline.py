"""A Grain pipeline that Keras 3 trains on: pure-Python feature hashing per record, about 60 ms a batch.

Keras 3 (3.11 and later) takes a Grain MapDataset or IterDataset under every
backend, and JAX users hold them. Grain's mp_prefetch runs the pipeline in
worker processes, so pure-Python work that holds the GIL scales with its
workers; but Keras iterates the dataset anew at every epoch, and every
iterator spawns its workers afresh, which costs seconds an epoch.

    pip install -e ".[grain,jax]"
    tune-loader examples/grain_pipeline.py --backend jax
"""

import random

import grain
import numpy as np

BATCH_SIZE = 32
RECORDS = 5120
FEATURES = 128
WORDS = ["grain", "record", "source", "shuffle", "batch", "worker", "prefetch", "buffer", "spawn", "shard",
         "jax", "keras", "epoch", "iterator", "options", "map"]


def featurize(index: int):
    """Record ``index``: the character-trigram counts of a generated document, hashed into FEATURES buckets."""
    rng = random.Random(index)
    words = [rng.choice(WORDS) for _ in range(1000)]
    counts = [0.0] * FEATURES
    for word in words:
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            code = 0
            for char in padded[i:i + 3]:  # not hash(): its seed differs in a spawned worker
                code = (code * 131 + ord(char)) & 0xFFFFFF
            counts[code % FEATURES] += 1.0
    x = np.asarray(counts, dtype=np.float32) / len(words)
    y = np.float32(sum(len(w) for w in words) % 5)[None]
    return x, y


def make_dataset():
    """160 batches of 32, shuffled once, as most users write it: the MapDataset itself, no mp_prefetch."""
    return grain.MapDataset.range(RECORDS).shuffle(seed=0).map(featurize).batch(BATCH_SIZE)


def make_model():
    import keras

    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model
