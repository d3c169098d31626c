"""How well a window shorter than the epoch predicts the epoch: each way of splitting a window, side by side.

For each setting, in one process: fits of whole epochs (3 epochs, the later
two timed from the end of the one before, as ``EpochClock`` does) give the
epoch's real throughput; fits of two epochs of a shorter window (the second
timed) are read three ways and extended to the whole epoch:

- ``middle``: the slope from the window's middle to its last queue-full
  (``epoch_model.window_timing`` with ``drain_batches``), or the capped
  reading where that stretch is too short: what tune-loader uses;
- ``capped``: the slope to the end, re-read with a known fixed cost capped
  at the first batch (``with_fixed_cost``: what tune-loader does where the
  middle is too short);
- ``to the end``: the slope to the end as it is, which a final drain
  inflates.

It prints each prediction's median over ``--rounds`` and its ratio to the
whole epochs' median.

    python benchmarks/window_split.py examples/numpy_augment.py --window 60 --settings 2x10 4x10 8x16
    python benchmarks/window_split.py benchmarks/workloads/closure_pipeline.py --window 56 --settings 2x10p 8x10p
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--window", type=int, required=True, help="batches of the shorter window")
    parser.add_argument("--settings", nargs="+", default=["2x10", "4x10", "8x16"],
                        help="WORKERSxQUEUE: threads; WORKERSxQUEUEp: processes")
    parser.add_argument("--fixed", type=float, default=0.16, help="the known fixed cost the capped reading takes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from tuner import engines
    from tuner.measure.epoch_model import drain_batches, window_timing, with_fixed_cost
    from tuner.engines.common import standardize
    from tuner.engines.keras3 import WindowView, _EpochClock
    from tuner.core import LoaderConfig
    from tuner.userfile import find_dataset, import_user_file

    module = import_user_file(args.file)
    dataset = find_dataset(module, None, is_dataset=engines.is_dataset,
                           is_dataset_class=engines.is_dataset_class).build()
    model = engines.resolve(dataset, None).build_default_model(standardize(dataset[0]))[0]
    whole = len(dataset)
    model.fit(dataset, epochs=1, verbose=0)  # tracing

    def epochs_of(config: LoaderConfig, batches: int, count: int):
        clock = _EpochClock()
        model.fit(WindowView(dataset, batches, 0, config), epochs=count, verbose=0, callbacks=[clock])
        return clock.epochs

    print(f"{args.file.name}: epochs of {whole} batches, windows of {args.window}")
    for setting in args.settings:
        workers, queue = map(int, setting.rstrip("p").split("x"))
        config = LoaderConfig(workers, setting.endswith("p"), queue)
        real, readings = [], {"middle": [], "capped": [], "to the end": []}
        for _ in range(args.rounds):
            epochs = epochs_of(config, whole, 3)
            real += [whole / (after[2] - before[2]) for before, after in zip(epochs, epochs[1:])]
            (_, _, previous_end), (_, ends, end) = epochs_of(config, args.window, 2)
            plain = window_timing(previous_end, ends, end)
            middle = window_timing(previous_end, ends, end, drain_batches(config))
            for name, timing in (("middle", with_fixed_cost(middle, args.fixed)),
                                 ("capped", with_fixed_cost(plain, args.fixed)), ("to the end", plain)):
                readings[name].append(whole / timing.predicted_epoch_seconds(whole))
        truth = statistics.median(real)
        cells = "  ".join(f"{name} {statistics.median(values):6.1f} ({statistics.median(values) / truth:.2f})"
                          for name, values in readings.items())
        print(f"  {config.label():24} whole epochs {truth:6.1f} b/s   {cells}", flush=True)


if __name__ == "__main__":
    main()
