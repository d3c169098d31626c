"""Is a Grain epoch's time linear in its length? The engine's two-length reading assumes so.

Fits of 3 epochs of ``examples/grain_pipeline.py`` (its model), at each length given: the engine's window
(``GrainSource.pipeline``) of that many batches, and the user's own pipeline under the same knobs (length 0,
as the stopwatch builds it). Prints the seconds of each epoch after the first, under ``KERAS_BACKEND``.

    KERAS_BACKEND=tensorflow python benchmarks/grain_lengths.py --workers 2 20 80 160 0
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples"), str(ROOT / "benchmarks")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="mp_prefetch workers, each holding 4 batches")
    parser.add_argument("lengths", type=int, nargs="+", help="batches per epoch; 0: the user's whole pipeline")
    args = parser.parse_args()
    import grain_pipeline as user
    import keras
    from absl import flags
    from stopwatch import grain_with_knobs

    from tuner.core import LoaderConfig
    from tuner.engines.grain_data import taken

    flags.FLAGS.mark_as_parsed()
    warnings.filterwarnings("ignore")
    source, model = taken(user.make_dataset()), user.make_model()
    config = LoaderConfig(args.workers, True, 4 * args.workers) if args.workers else LoaderConfig()

    class EpochEnds(keras.callbacks.Callback):
        ends: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    for length in args.lengths:
        data = source.pipeline(config, length, 0) if length else grain_with_knobs(user.make_dataset(), config)
        clock = EpochEnds()
        clock.ends = []
        model.fit(data, epochs=3, verbose=0, callbacks=[clock], shuffle=False)
        seconds = [round(b - a, 2) for a, b in zip(clock.ends, clock.ends[1:])]
        print(f"{keras.backend.backend()}: {length or f'your pipeline ({source.num_batches})'} batches: {seconds}",
              flush=True)


if __name__ == "__main__":
    main()
