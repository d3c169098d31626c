"""A dataset that does not pickle: a pipeline of lambdas over records, in pure Python, behind a lock.

Each sample is a record (a dict) run through a list of small transforms
written as lambdas, with a lock around a shared vocabulary: common in
quickly written data code, and neither lambdas nor locks pickle. Under
spawn or forkserver, process workers cannot get this dataset; under fork
they inherit it, and since the transforms hold the GIL (about 20 ms a
batch), processes are what makes it faster.
"""

import random
import threading

import keras
import numpy as np

BATCH_SIZE = 32
WIDTH = 128
COLOURS = ["red", "green", "blue", "amber", "violet", "teal", "black", "white"]


class RecordPipeline(keras.utils.PyDataset):
    def __init__(self, batches: int = 120, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches
        self.vocabulary: dict[str, int] = {}
        self.lock = threading.Lock()
        self.transforms = [
            lambda r: {**r, "name": r["name"].strip().lower()},
            lambda r: {**r, "tokens": [t for t in r["name"].replace("-", " ").split() if t]},
            lambda r: {**r, "price": max(0.0, min(r["price"], 1000.0)) / 1000.0},
            lambda r: {**r, "ids": [self._id(t) for t in r["tokens"] for _ in range(3)]},
        ]

    def _id(self, token: str) -> int:
        with self.lock:
            return self.vocabulary.setdefault(token, len(self.vocabulary) % WIDTH)

    def __len__(self):
        return self.batches

    def _record(self, rng: random.Random) -> dict:
        name = " ".join(f"{rng.choice(COLOURS)}-{rng.randrange(500)}" for _ in range(200))
        return {"name": f"  {name.upper()} ", "price": rng.uniform(-10, 1200)}

    def __getitem__(self, index):
        rng = random.Random(index)
        x = np.zeros((BATCH_SIZE, WIDTH), dtype="float32")
        y = np.zeros((BATCH_SIZE, 1), dtype="float32")
        for row in range(BATCH_SIZE):
            record = self._record(rng)
            for transform in self.transforms:
                record = transform(record)
            for i in record["ids"]:
                x[row, i] += 1.0
            y[row, 0] = record["price"]
        return x, y


def make_dataset():
    return RecordPipeline()
