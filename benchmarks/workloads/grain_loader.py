"""A grain.DataLoader (a data source, a sampler and operations), the way Grain's older API builds a pipeline:
3,200 records of about 0.35 ms of pure Python each, in 100 batches of 32. Its batches have no index, so
tune-loader times it as a stream, and Keras trains on a DataLoader more slowly than on its dataset
(docs/engines.md). Not in the README's table:

    python benchmarks/truth.py --examples grain_loader@jax
"""

import random

import grain
import numpy as np

RECORDS = 3200
FEATURES = 64


class Source:
    """Record i: counts of 1,500 draws from a generator seeded by i, in FEATURES buckets."""

    def __len__(self):
        return RECORDS

    def __getitem__(self, index):
        rng = random.Random(index)
        counts = [0.0] * FEATURES
        for _ in range(1500):
            counts[rng.randrange(FEATURES)] += 1.0
        return np.asarray(counts, np.float32), np.float32(index % 3)[None]


class Scale(grain.transforms.Map):
    def map(self, record):
        x, y = record
        return x / 1500.0, y


def make_dataset():
    sampler = grain.samplers.IndexSampler(RECORDS, shuffle=True, seed=1, num_epochs=1,
                                          shard_options=grain.sharding.NoSharding())
    return grain.DataLoader(data_source=Source(), sampler=sampler, operations=[Scale(), grain.transforms.Batch(32)],
                            worker_count=0)
