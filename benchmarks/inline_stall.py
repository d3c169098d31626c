"""Keras 3's inline path: epochs that wait for tf.data's autotuner before their first batch.

Without a pool, Keras 3 feeds a PyDataset through ``from_generator`` and
``prefetch(tf.data.AUTOTUNE)``, and makes a new tf.data iterator at every
epoch start. Deleting the previous one sometimes blocks the training loop
(``IteratorResource`` destruction waiting on a thread of the iterator's
pool, seen with ``py-spy dump --native``) until the autotuner's next
optimization: tf.data optimizes 10 ms after an iterator starts and then at
doubling periods, so at 10 ms x (2^k - 1) after its creation (5.11 s,
10.23 s, 20.47 s, ...): an 11 s epoch that stalls starts its successor
9 s late (docs/keras-behaviours.md).

One ``fit(epochs=N)`` per setting, in one process: inline as Keras builds
it, inline with autotuning off (``autotune_switch``), and 2
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

from benchmarks import record  # noqa: E402
from benchmarks.workloads import KERAS3_WORKLOADS, keras3_workload  # noqa: E402
from tuner.analysis.advice import AUTOTUNE_TICKS_SECONDS  # noqa: E402

STALL_SECONDS = 0.5  # an epoch's first batch normally starts within 0.03 s of on_epoch_begin
INLINE = "inline (Keras: prefetch AUTOTUNE)"
INLINE_NO_AUTOTUNE = "inline, tf.data autotuning off"


def autotune_switch():
    """Patches Keras's adapter, for this benchmark only, so that inline datasets can have tf.data's
    autotuning turned off the way Keras turns it off for a pool."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters import py_dataset_adapter

    switch = {"off": False}
    original = py_dataset_adapter.PyDatasetAdapter.get_tf_dataset

    def get_tf_dataset(adapter):
        dataset = original(adapter)
        if switch["off"] and adapter.enqueuer is None:
            options = tf.data.Options()
            options.autotune.enabled = False
            dataset = dataset.with_options(options)
        return dataset

    py_dataset_adapter.PyDatasetAdapter.get_tf_dataset = get_tf_dataset
    return switch


def dataset_with(module, knobs: dict):
    """A fresh dataset with Keras's knobs set (PyDataset's knobs are properties with setters)."""
    dataset = module.make_dataset()
    for knob, value in knobs.items():
        setattr(dataset, knob, value)
    return dataset


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
    switch = autotune_switch()
    module, model = keras3_workload(args.workload)
    model.fit(module.make_dataset(), epochs=1, verbose=0)  # traces the step
    waits = {}
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
        waits[name] = [first - begin for begin, first, _ in clock.epochs[1:]]
    saved = record.save(record.run_file("inline_stall"), "inline_stall", {"workload": args.workload, "waits": waits})
    print(f"wrote {saved.relative_to(record.ROOT)}")


if __name__ == "__main__":
    main()
