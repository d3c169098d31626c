"""Does a warm-up fit change how often inline epochs wait for tf.data's autotuner? One fresh process per call.

Keras 3's inline path under TensorFlow: an epoch sometimes ends at the
autotuner's tick (5.11 s after its iterator began: docs/keras-behaviours.md)
instead of when its batches are done. A user's training is a fresh process
whose first ``fit`` is the training itself; tune-loader's trial process
runs a one-epoch warm-up ``fit`` first (it traces the graph). This runs
``--warm`` (no warm-up, one inline epoch, or one epoch of 2 threads), then
inline fits of ``--fits`` epochs, and prints every epoch's seconds and the
epochs that waited (over 1.5 times the median epoch).

    for i in 1 2 3; do python benchmarks/warm_start_waits.py benchmarks/workloads/closure_pipeline.py --warm none; done
    for i in 1 2 3; do python benchmarks/warm_start_waits.py benchmarks/workloads/closure_pipeline.py --warm inline; done
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WAITED = 1.5  # an epoch this many times the median waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a Keras 3 PyDataset workload (make_dataset, maybe make_model)")
    parser.add_argument("--warm", choices=("none", "inline", "threads"), default="none")
    parser.add_argument("--fits", type=int, nargs="+", default=[4, 4, 4], help="epochs of each timed fit")
    args = parser.parse_args()
    import keras

    from tuner.engines.common import standardize
    from tuner.engines.keras3 import Keras3Engine
    from tuner.userfile import import_user_file

    module = import_user_file(args.file)
    dataset = module.make_dataset()
    model = module.make_model() if hasattr(module, "make_model") else Keras3Engine().build_default_model(
        standardize(dataset[0]))[0]
    if args.warm != "none":
        dataset.workers = 2 if args.warm == "threads" else 1
        model.fit(dataset, epochs=1, verbose=0)
        dataset.workers = 1
    seconds = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.began)

    for epochs in args.fits:
        model.fit(dataset, epochs=epochs, verbose=0, callbacks=[Clock()])
    median = statistics.median(seconds)
    waited = [index for index, value in enumerate(seconds) if value > WAITED * median]
    print(f"warm-up {args.warm}: epochs {' '.join(f'{value:.2f}' for value in seconds)}; "
          f"{len(waited)} of {len(seconds)} waited")


if __name__ == "__main__":
    main()
