"""Does the epoch model predict a real full epoch? Short windows against whole epochs.

For each example with a length, and the model-bound workload, and a few
configurations (16 processes among them: the start-up furthest from the
probe's pool of two), five rounds of: a
short window (as a trial times it), which gives a predicted full-epoch time,
then a real ``fit(epochs=2)`` over the dataset's own length. Its second epoch,
from the first's ``on_epoch_end`` to its own (pool tear-down and start-up,
tf-keras's epoch-end stall, the pass over the data), is what each epoch of
a user's training costs, and is what the prediction is checked against. The
rest of the call is paid once per ``fit``; the one-epoch call it adds up to
is printed beside it (0.05 to 0.16 s longer on io_bound, 2 to 5% of its
epochs). Alternating the two
keeps slow drift of this shared machine out of the comparison (timed as
three windows and then three epochs, gil_bound read +20% inline and -21%
with processes in one run). Five rounds, not three: pure-Python batches on
this machine run at two speeds (8 and 13 ms), and a median of three
readings lands on whichever state two of them hit. Prints the relative
error of the median prediction against the measured median, and the median
of the per-round errors with a 95% bootstrap interval over rounds: a window
and its epochs are timed back to back, so that one is not moved by the
machine's slow drift, and its width says how much five rounds can tell.

With ``--out``, every round's raw window (its batches, seconds and first
batch), the fixed cost the probes predicted for it and the two epochs are
written as JSON too, so that another way of reading windows can be checked
against the same run.

    python benchmarks/epoch_prediction.py
    python benchmarks/epoch_prediction.py --workloads gil_bound numpy_augment --out rounds.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare import WORKLOADS, Session  # noqa: E402
from probes.stats import paired_ratio_interval, summarize  # noqa: E402
from tuner.predict import predict  # noqa: E402
from tuner.results import KERAS_DEFAULTS, LoaderConfig  # noqa: E402

ROUNDS = 5
CHECKED = ("io_bound", "gil_bound", "numpy_augment", "legacy_sequence", "model_bound")
# 16 processes: the grid's corner, where the start-up cost is furthest from the probe's pool of two.
CONFIGS = (KERAS_DEFAULTS, LoaderConfig(4, False, 10), LoaderConfig(2, True, 10), LoaderConfig(16, True, 32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=CHECKED, default=list(CHECKED))
    parser.add_argument("--out", type=Path, help="also write every round as JSON")
    args = parser.parse_args()
    recorded, errors = [], []
    print(f"{'workload':15} {'setting':24} {'predicted s':>11} {f'epoch of fit(epochs=2), n={ROUNDS}':>30} "
          f"{'error':>7} {'per round, 95%':>24} {'one-epoch fit() call':>21} {'error':>7}")
    for name in args.workloads:
        session = Session(WORKLOADS[name])
        for config in CONFIGS:
            predictions, calls, epochs = [], [], []
            for index in range(ROUNDS):  # window, epochs, window, epochs...: drift hits both sides alike
                window = session.measurer.measure(config, index).timing
                predictions.append(window.predicted_epoch_seconds(session.epoch))
                call, epoch = session.measurer.whole_epochs(config)
                calls.append(call)
                epochs.append(epoch)
                recorded.append({
                    "workload": name, "config": config.label(), "round": index, "epoch_batches": session.epoch,
                    "window_batches": window.batches, "window_seconds": window.epoch_seconds,
                    "first_batch_seconds": window.first_batch_seconds,
                    "predicted_fixed_seconds": session.measurer.fixed_cost(config),
                    "predicted_period_seconds": predict(
                        config, session.machine, session.dataset, session.model, session.epoch
                    ).batch_period_seconds,
                    "predicted_epoch_seconds": predictions[-1], "one_epoch_call_seconds": call, "epoch_seconds": epoch,
                })
            predicted, epoch, call = summarize(predictions).median, summarize(epochs), summarize(calls)
            paired, low, high = paired_ratio_interval(predictions, epochs)
            errors.append((predicted / epoch.median - 1, low - 1, high - 1))
            print(
                f"{name:15} {config.label():24} {predicted:11.2f} {epoch.median:21.2f} ± {epoch.mad:.2f}      "
                f"{errors[-1][0]:+7.1%} {paired - 1:+7.1%} [{low - 1:+6.1%}, {high - 1:+6.1%}] "
                f"{call.median:21.2f} {predicted / call.median - 1:+7.1%}",
                flush=True,
            )
        session.close()
        if args.out:
            args.out.write_text(json.dumps(recorded, indent=1))
    print(f"within 10%: {sum(abs(e) <= 0.10 for e, _, _ in errors)} of {len(errors)} medians; "
          f"{sum(-0.10 <= low and high <= 0.10 for _, low, high in errors)} per-round intervals wholly inside ±10%, "
          f"{sum(high < -0.10 or low > 0.10 for _, low, high in errors)} wholly outside")


if __name__ == "__main__":
    main()
