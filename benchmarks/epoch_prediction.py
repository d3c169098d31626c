"""Does the epoch model predict a real full epoch? Short windows against whole epochs.

For each example and a few configurations: three short windows (as a trial
times them) give a predicted full-epoch time; then three real full epochs of
the dataset's own length are timed. Prints the relative error of the
prediction against the measured median.

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
    for name in ("io_bound", "gil_bound", "numpy_augment"):
        session = Session(WORKLOADS[name])
        window_size = session.measurer.window_size
        for config in CONFIGS:
            session.measurer.window_size = window_size
            predicted = summarize(
                [session.measurer.measure(config, i).timing.predicted_epoch_seconds(session.epoch) for i in range(3)]
            ).median
            session.measurer.window_size = lambda config: session.epoch
            epochs = [session.measurer.measure(config, 0).timing.epoch_seconds for _ in range(3)]
            measured = summarize(epochs)
            print(
                f"{name:15} {config.label():26} {predicted:12.2f} "
                f"{measured.median:14.2f} ± {measured.mad:.2f} (n=3) {predicted / measured.median - 1:+7.1%}",
                flush=True,
            )
        session.close()


if __name__ == "__main__":
    main()
