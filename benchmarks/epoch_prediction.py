"""Does the epoch model predict a real full epoch? Short windows against whole epochs.

For each example with a length and a few configurations: three short
windows (as a trial times them) give a predicted full-epoch time; then three
real full epochs of the dataset's own length are timed end to end (a whole
``fit`` call, so tf-keras's epoch-end stall is in it). Prints the relative
error of the prediction against the measured median.

    python benchmarks/epoch_prediction.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare import WORKLOADS, Session  # noqa: E402
from probes.stats import summarize  # noqa: E402
from tuner.results import KERAS_DEFAULTS, LoaderConfig  # noqa: E402

CONFIGS = (KERAS_DEFAULTS, LoaderConfig(4, False, 10), LoaderConfig(2, True, 10))


def main() -> None:
    print(f"{'workload':15} {'setting':26} {'predicted s':>12} {'measured s (median of 3)':>26} {'error':>7}")
    for name in ("io_bound", "gil_bound", "numpy_augment", "legacy_sequence"):
        session = Session(WORKLOADS[name])
        for config in CONFIGS:
            predicted = summarize(
                [session.measurer.measure(config, i).timing.predicted_epoch_seconds(session.epoch) for i in range(3)]
            ).median
            measured = summarize([session.measurer.full_epoch(config) for _ in range(3)])
            print(
                f"{name:15} {config.label():26} {predicted:12.2f} "
                f"{measured.median:14.2f} ± {measured.mad:.2f} (n=3) {predicted / measured.median - 1:+7.1%}",
                flush=True,
            )
        session.close()


if __name__ == "__main__":
    main()
