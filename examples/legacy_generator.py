"""Legacy Keras 2: a plain Python generator, the way much fit_generator code feeds a model.

Each batch parses CSV-like text rows in pure Python (about 10 ms), then
yields arrays. A plain generator is not thread-safe, so tf-keras's thread
workers cannot share it, and with processes every worker would run its own
copy and duplicate the data: tune-loader records the first as infeasible,
leaves the second out unless ``--allow-duplicated-data`` is given, and says
what a Sequence or a Keras 3 PyDataset would gain.

    tune-loader examples/legacy_generator.py
"""

import numpy as np
import tf_keras  # noqa: F401  (the code this example stands for trains with tf-keras)

BATCH_SIZE = 32
FEATURES = 16


def csv_batches(batches: int = 150):
    rng = np.random.default_rng(0)
    lines = [",".join(f"{v:.4f}" for v in row) for row in rng.normal(size=(BATCH_SIZE * 8, FEATURES))]
    for index in range(batches):
        rows = [lines[(index * BATCH_SIZE + i) % len(lines)] for i in range(BATCH_SIZE)]
        for _ in range(60):  # parsing, cleaning and feature crosses, all in Python
            parsed = [[float(field) for field in row.split(",")] for row in rows]
        x = np.asarray(parsed, dtype="float32")
        yield x, x[:, :1] * 2.0


def make_dataset():
    return csv_batches()
