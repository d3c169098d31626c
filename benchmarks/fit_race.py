"""``tuner.fit`` against ``model.fit`` at the grid's best setting and at the defaults, side by side.

A workload (``--workload io``: ``--sleep`` seconds of waiting per batch, so many threads win; ``numpy``: a
BLAS decomposition per batch; ``model``: free batches and a model step that takes the cores, so the
defaults win or tie) of ``--batches`` batches per epoch
trains a small model for ``--epochs`` epochs. Every training runs in a fresh process and folder, in rounds:

1. the grid (``GRIDS``): each setting timed over a 4-epoch fit (the epochs after the first): the best;
2. ``model.fit`` for ``--epochs`` at the grid's best (its whole wall time);
3. the defaults: 2 epochs, extrapolated to ``--epochs`` (the first epoch, then the second's time for each
   of the rest), since a whole training of them would take most of the run (timed whole when best; not
   timed with ``--stored``, whose goal is against the best);
4. ``tuner.fit`` for ``--epochs``, in a fresh folder (no stored study), or with ``--stored`` in one where
   the CLI tuned the same workload first (it starts from that study).

It prints, per round, tuner.fit over the best and over the defaults, and the setting tuner.fit trained
on; the rounds go to benchmarks/results/MACHINE/COMMIT/fit_race_WORKLOAD[_stored].json (git-ignored).

    KERAS_BACKEND=jax python benchmarks/fit_race.py [--rounds 2] [--epochs 20] [--batches 11000] [--sleep 0.0055]
    KERAS_BACKEND=tensorflow python benchmarks/fit_race.py --workload model --batches 640
    KERAS_BACKEND=jax python benchmarks/fit_race.py --stored
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRIDS = {  # the defaults first
    "io": ((1, False, 10), (4, False, 10), (8, False, 16), (16, False, 32), (32, False, 64)),
    "numpy": ((1, False, 10), (2, False, 10), (4, False, 10), (2, True, 10)),
    "model": ((1, False, 10), (2, False, 10), (4, False, 10), (2, True, 10)),
}
ROOT = Path(__file__).resolve().parent.parent

# The workloads, as files the CLI can tune too: "io" waits --sleep seconds per batch (I/O-bound: many
# threads win); "numpy" decomposes a matrix per batch with BLAS on every core; "model" makes its batches
# for free and trains a model whose step takes the cores (the defaults win or tie).
WORKLOAD = """
import time
import keras
import numpy as np

BATCHES, SLEEP, KIND = {batches}, {sleep}, {kind!r}

class Remote(keras.utils.PyDataset):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(256 if KIND == "model" else 32, 64)).astype("float32")
        self.y = self.x.sum(axis=1, keepdims=True)
        self.m = rng.normal(size=(160, 160))
    def __len__(self):
        return BATCHES
    def __getitem__(self, index):
        if KIND == "io":
            time.sleep(SLEEP)
        elif KIND == "numpy":
            np.linalg.svd(self.m + index)
        return self.x + 0.0, self.y

def make_dataset():
    return Remote()

def make_model():
    hidden = [512, 512] if KIND == "model" else [64]
    model = keras.Sequential([keras.Input((64,)), *(keras.layers.Dense(n, activation="relu") for n in hidden),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model
"""

CHILD = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path[:0] = [os.getcwd(), {root!r}]
import keras
import tuner
from workload import Remote, make_model

model = make_model()
mode, epochs, knobs = {mode!r}, {epochs}, {knobs!r}
data = Remote(workers=knobs[0], use_multiprocessing=knobs[1], max_queue_size=knobs[2])
ends = []
record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append(time.perf_counter()))
began = time.perf_counter()
answer = None
if mode == "tuner":
    tuner.fit(model, data, epochs=epochs, verbose=0, callbacks=[record], report_dir="tune-loader-out/fit")
    answer = json.load(open("tune-loader-out/fit/training.json"))["chosen"]
    answer = [answer["workers"], answer["use_multiprocessing"], answer["max_queue_size"]]
else:
    model.fit(data, epochs=epochs, verbose=0, callbacks=[record])
print(json.dumps({{"wall": time.perf_counter() - began, "epoch_ends": [t - began for t in ends], "answer": answer}}))
"""


def folder(args) -> Path:
    """A fresh working folder with the workload file: no stored study in it yet."""
    where = Path(tempfile.mkdtemp(prefix="fit_race_"))
    (where / "workload.py").write_text(WORKLOAD.format(batches=args.batches, sleep=args.sleep, kind=args.workload))
    return where


def run(mode: str, epochs: int, knobs, args, where: Path | None = None) -> dict:
    """One training in a fresh interpreter, in ``where`` (default: a fresh folder); its wall time, epoch
    ends and (for tuner.fit) the setting it chose."""
    code = CHILD.format(root=str(ROOT), mode=mode, epochs=epochs, knobs=tuple(knobs))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=where or folder(args), env=os.environ)
    return json.loads(done.stdout.strip().splitlines()[-1])


def stored_folder(args) -> Path:
    """A folder where the CLI tuned the workload: tuner.fit there starts from its stored study."""
    where = folder(args)
    subprocess.run([sys.executable, "-m", "tuner.cli", "workload.py", "--quiet"], cwd=where, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return where


def one_round(args) -> dict:
    grid_settings = GRIDS[args.workload]
    grid = {}
    for knobs in grid_settings:
        ends = run("fit", 4, knobs, args)["epoch_ends"]
        grid[knobs] = (ends[-1] - ends[0]) / 3
    best = min(grid, key=grid.get)
    best_wall = run("fit", args.epochs, best, args)["wall"]
    if best == grid_settings[0]:
        defaults_wall = best_wall  # timed whole already
    elif args.stored:
        defaults_wall = math.nan  # its goal is against the best alone
    else:
        defaults = run("fit", 2, grid_settings[0], args)["epoch_ends"]
        defaults_wall = defaults[0] + (args.epochs - 1) * (defaults[1] - defaults[0])
    tuned = run("tuner", args.epochs, grid_settings[0], args, stored_folder(args) if args.stored else None)
    return {"grid_epoch_seconds": {str(k): v for k, v in grid.items()}, "best": best, "best_wall": best_wall,
            "defaults_wall": defaults_wall, "tuner_wall": tuned["wall"], "tuner_answer": tuned["answer"],
            "tuner_vs_best": tuned["wall"] / best_wall, "tuner_vs_defaults": tuned["wall"] / defaults_wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batches", type=int, default=11000)  # 5 s epochs at the io grid's best, here
    parser.add_argument("--sleep", type=float, default=0.0055)  # the defaults then about 13x slower
    parser.add_argument("--workload", choices=sorted(GRIDS), default="io")
    parser.add_argument("--stored", action="store_true", help="run the CLI on the workload first, so tuner.fit "
                        "starts from its stored study")
    args = parser.parse_args()
    rows = []
    for number in range(args.rounds):
        row = one_round(args)
        rows.append(row)
        print(f"round {number + 1}: grid best {row['best']} {row['best_wall']:.1f} s; defaults "
              f"{row['defaults_wall']:.1f} s; tuner.fit {row['tuner_wall']:.1f} s = "
              f"{row['tuner_vs_best']:.3f}x best, {row['tuner_vs_defaults']:.3f}x defaults; it chose {row['tuner_answer']}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    out = ROOT / "benchmarks" / "results" / os.uname().nodename / commit
    out.mkdir(parents=True, exist_ok=True)
    (out / f"fit_race_{args.workload}{'_stored' * args.stored}.json").write_text(json.dumps({"args": vars(args), "rounds": rows}, indent=2))
    print(f"written to {out} ({time.strftime('%H:%M')})")


if __name__ == "__main__":
    main()
