"""Keras 3's inline path: epochs that wait for tf.data's autotuner before their first batch.

Without a pool, Keras 3 feeds a PyDataset through ``from_generator`` and
``prefetch(tf.data.AUTOTUNE)``, and makes a new tf.data iterator at every
epoch start. Deleting the previous one sometimes blocks the training loop
(``IteratorResource`` destruction waiting on a thread of the iterator's
pool, seen with ``py-spy dump --native``) until the autotuner's next
optimization: tf.data optimizes 10 ms after an iterator starts and then at
doubling periods, so at 10 ms x (2^k - 1) after its creation (5.11 s,
10.23 s, 20.47 s, ...). An 11 s epoch of model_bound that stalls starts
its successor 9 s late: the "half-speed" inline epochs of earlier runs
(README, "Keras 3's inline path runs some epochs at half speed").

One ``fit(epochs=N)`` per setting, in one process: inline as Keras builds
it, inline with autotuning off (``inline_prefetch.autotune_switch``), and 2
threads (Keras turns autotuning off for a pool). For each epoch after the
first it prints how long the epoch waited before its first batch and when
the previous epoch's iterator was let go, counted from its creation: a
stall ends at one of the times above.

    python benchmarks/inline_stall.py [--workload model_bound] [--epochs 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare import KERAS3_WORKLOADS  # noqa: E402
from benchmarks.inline_prefetch import INLINE, INLINE_NO_AUTOTUNE, dataset_with, traced_workload  # noqa: E402
from tuner.advice import AUTOTUNE_TICKS_SECONDS  # noqa: E402

STALL_SECONDS = 0.5  # an epoch's first batch normally starts within 0.03 s of on_epoch_begin


def epoch_clock():
    import keras

    class Clock(keras.callbacks.Callback):
        """Per epoch: its start, its first batch's start and its end."""

        def __init__(self):
            super().__init__()
            self.epochs: list[tuple[float, float, float]] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.begin, self.first = time.perf_counter(), None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first is None:
                self.first = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append((self.begin, self.first, time.perf_counter()))

    return Clock()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=KERAS3_WORKLOADS, default="model_bound")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    switch, module, model = traced_workload(args.workload)
    settings = {INLINE: (False, {}), INLINE_NO_AUTOTUNE: (True, {}), "2 threads, queue 10": (False, {"workers": 2})}
    for name, (autotune_off, knobs) in settings.items():
        switch["off"] = autotune_off
        dataset = dataset_with(module, knobs)
        clock = epoch_clock()
        model.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[clock])
        stalls = 0
        print(f"{name} ({len(dataset)} batches an epoch):")
        for (begin, first, _), (previous_begin, previous_first, _) in zip(clock.epochs[1:], clock.epochs):
            waited = first - begin
            # The previous iterator was made just before that epoch's first batch and let go at this one's start + wait.
            released = begin + waited - previous_first
            stalled = waited > STALL_SECONDS
            stalls += stalled
            tick = min(AUTOTUNE_TICKS_SECONDS, key=lambda t: abs(t - released))
            print(f"  waited {waited:5.2f} s before its first batch; previous iterator let go {released:6.2f} s after "
                  f"its creation" + (f" (autotune tick {tick:.2f} s)" if stalled else ""), flush=True)
        print(f"  {stalls} of {len(clock.epochs) - 1} epochs stalled over {STALL_SECONDS} s", flush=True)


if __name__ == "__main__":
    main()
