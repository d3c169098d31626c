"""Long epochs and a slow model step: web-server log lines parsed in Python, a model of about 25 ms a step.

Each batch parses 2,304 log lines with a regular expression and builds
per-line features in Python loops (about 35 ms, holding the GIL); the model
is a stack of wide dense layers, about 25 ms a step on two cores. An epoch
of 60 batches lasts about 3.5 s inline. Process workers can hide the
parsing behind the model, so the settings differ by up to about 1.4x, and
the race has few rounds of such epochs to tell them apart.
"""

import random
import re

import keras
import numpy as np

BATCH_SIZE = 48
FEATURES = 64
LINES_PER_SAMPLE = 48
LINE = re.compile(r'(?P<ip>\S+) - - \[(?P<day>\d+)/(?P<month>\w+)/(?P<year>\d+):(?P<time>[\d:]+)\] '
                  r'"(?P<method>\w+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d+) (?P<size>\d+)')
PATHS = ["/", "/index.html", "/api/v1/items", "/api/v1/users/42", "/static/app.js", "/login", "/search?q=keras"]


def _line(rng: random.Random) -> str:
    ip = ".".join(str(rng.randrange(256)) for _ in range(4))
    return (f'{ip} - - [{rng.randrange(1, 29)}/Dec/2026:{rng.randrange(24):02d}:{rng.randrange(60):02d}:00] '
            f'"{rng.choice(["GET", "POST"])} {rng.choice(PATHS)}{"/x" * rng.randrange(12)} HTTP/1.1" '
            f'{rng.choice([200, 200, 304, 404, 500])} {rng.randrange(100000)}')


def features(line: str) -> list[float]:
    fields = LINE.match(line).groupdict()
    row = [0.0] * FEATURES
    for i in range(len(line) - 1):  # character bigrams of the whole line, hashed
        row[(ord(line[i]) * 31 + ord(line[i + 1])) % (FEATURES - 4)] += 1.0
    row[-4] = int(fields["status"]) / 500.0
    row[-3] = int(fields["size"]) / 1e5
    row[-2] = sum(int(x) for x in fields["time"].split(":")) / 100.0
    row[-1] = fields["method"] == "POST"
    return row


class LogLines(keras.utils.PyDataset):
    def __init__(self, batches: int = 60, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = random.Random(index)
        lines = [_line(rng) for _ in range(BATCH_SIZE * LINES_PER_SAMPLE)]
        rows = np.array([features(line) for line in lines], dtype="float32")
        x = rows.reshape(BATCH_SIZE, 4, LINES_PER_SAMPLE // 4, FEATURES).sum(axis=2).reshape(BATCH_SIZE, 4 * FEATURES)
        return x, x[:, -1:] * 2.0 - x[:, :1]


def make_dataset():
    return LogLines()


def make_model():
    model = keras.Sequential([keras.Input((4 * FEATURES,))]
                             + [keras.layers.Dense(1792, activation="relu") for _ in range(3)]
                             + [keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model
