"""Does the epoch model predict a real full epoch? Short windows against whole epochs.

For each example with a length and a few configurations, five rounds of: a
short window (as a trial times it), which gives a predicted full-epoch time,
then a real full epoch of the dataset's own length timed end to end (a whole
``fit`` call, so tf-keras's epoch-end stall is in it). Alternating the two
keeps slow drift of this shared machine out of the comparison (timed as
three windows and then three epochs, gil_bound read +20% inline and -21%
with processes in one run). Five rounds, not three: pure-Python batches on
this machine run at two speeds (8 and 13 ms), and a median of three
readings lands on whichever state two of them hit. Prints the relative
error of the median prediction against the measured median.

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

ROUNDS = 5
CONFIGS = (KERAS_DEFAULTS, LoaderConfig(4, False, 10), LoaderConfig(2, True, 10))


def main() -> None:
    print(f"{'workload':15} {'setting':26} {'predicted s':>12} {f'measured s (median of {ROUNDS})':>26} {'error':>7}")
    for name in ("io_bound", "gil_bound", "numpy_augment", "legacy_sequence"):
        session = Session(WORKLOADS[name])
        for config in CONFIGS:
            predictions, epochs = [], []
            for index in range(ROUNDS):  # window, epoch, window, epoch...: drift hits both sides alike
                predictions.append(session.measurer.measure(config, index).timing.predicted_epoch_seconds(session.epoch))
                epochs.append(session.measurer.full_epoch(config))
            predicted, measured = summarize(predictions).median, summarize(epochs)
            print(
                f"{name:15} {config.label():26} {predicted:12.2f} "
                f"{measured.median:14.2f} ± {measured.mad:.2f} (n={measured.count}) {predicted / measured.median - 1:+7.1%}",
                flush=True,
            )
        session.close()


if __name__ == "__main__":
    main()
