"""``tuner.fit`` against ``model.fit`` at the grid's best setting and at the defaults, side by side.

An I/O-bound PyDataset (``--sleep`` seconds of waiting per batch, ``--batches`` per epoch) trains a small
model for ``--epochs`` epochs. Every training runs in a fresh process, in interleaved rounds:

1. the grid: each thread setting in ``GRID`` timed over 4-epoch fits (the epochs after the first), to find
   the grid's best;
2. ``model.fit`` for ``--epochs`` at the grid's best (whole wall time);
3. the defaults: 2 epochs, extrapolated to ``--epochs`` (first epoch + the rest at the second's time), since
   a whole training of them would take most of the run;
4. ``tuner.fit``'s training (``tuner.training.train``: all of it but the report files) for ``--epochs``,
   with no stored study.

It prints, per round, tuner.fit / best and tuner.fit / defaults, and the answer tuner.fit trained on; the
rows go to benchmarks/results/MACHINE/COMMIT/fit_race.json (git-ignored).

    KERAS_BACKEND=jax python benchmarks/fit_race.py [--rounds 2] [--epochs 20] [--batches 800] [--sleep 0.06]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

GRID = ((1, False, 10), (4, False, 10), (8, False, 16), (16, False, 32), (32, False, 64))
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np
sys.path.insert(0, {root!r})
from tuner.training import train

class Remote(keras.utils.PyDataset):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(32, 64)).astype("float32")
        self.y = self.x.sum(axis=1, keepdims=True)
    def __len__(self):
        return {batches}
    def __getitem__(self, index):
        time.sleep({sleep})
        return self.x, self.y

model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
mode, epochs, knobs = {mode!r}, {epochs}, {knobs!r}
data = Remote(workers=knobs[0], use_multiprocessing=knobs[1], max_queue_size=knobs[2])
ends = []
record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append(time.perf_counter()))
began = time.perf_counter()
answer = None
if mode == "tuner":
    history, outcome = train(model, data, epochs, verbose=0, callbacks=[record])
    answer = outcome.chosen.label()
else:
    model.fit(data, epochs=epochs, verbose=0, callbacks=[record])
print(json.dumps({{"wall": time.perf_counter() - began, "epoch_ends": [t - began for t in ends],
                   "answer": answer}}))
"""


def run(mode: str, epochs: int, knobs, args) -> dict:
    """One training in a fresh interpreter; its wall time and epoch ends."""
    code = CHILD.format(root=str(ROOT), batches=args.batches, sleep=args.sleep, mode=mode, epochs=epochs,
                        knobs=tuple(knobs))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd="/tmp", env=os.environ)
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_round(args) -> dict:
    grid = {}
    for knobs in GRID[1:]:
        ends = run("fit", 4, knobs, args)["epoch_ends"]
        grid[knobs] = (ends[-1] - ends[0]) / 3
    best = min(grid, key=grid.get)
    best_wall = run("fit", args.epochs, best, args)["wall"]
    defaults = run("fit", 2, GRID[0], args)["epoch_ends"]
    defaults_wall = defaults[0] + (args.epochs - 1) * (defaults[1] - defaults[0])
    tuned = run("tuner", args.epochs, GRID[0], args)
    return {"grid_epoch_seconds": {str(k): v for k, v in grid.items()}, "best": best, "best_wall": best_wall,
            "defaults_wall_extrapolated": defaults_wall, "tuner_wall": tuned["wall"],
            "tuner_answer": tuned["answer"], "tuner_vs_best": tuned["wall"] / best_wall, "tuner_vs_defaults": tuned["wall"] / defaults_wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batches", type=int, default=800)
    parser.add_argument("--sleep", type=float, default=0.06)
    args = parser.parse_args()
    rows = []
    for number in range(args.rounds):
        row = one_round(args)
        rows.append(row)
        print(f"round {number + 1}: grid best {row['best']} {row['best_wall']:.1f} s; defaults "
              f"{row['defaults_wall_extrapolated']:.1f} s (extrapolated); tuner.fit {row['tuner_wall']:.1f} s = "
              f"{row['tuner_vs_best']:.3f}x best, {row['tuner_vs_defaults']:.3f}x defaults; it chose {row['tuner_answer']}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    folder = ROOT / "benchmarks" / "results" / os.uname().nodename / commit
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fit_race.json").write_text(json.dumps({"args": vars(args), "rounds": rows}, indent=2))
    print(f"written: {folder / 'fit_race.json'} ({time.strftime('%H:%M')})")


if __name__ == "__main__":
    main()
