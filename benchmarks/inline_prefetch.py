"""Keras 3's inline PyDataset path against its worker pools, side by side (model_bound by default).

Keras 3 feeds a PyDataset to TensorFlow through ``from_generator``. Without
a pool (``workers=1, use_multiprocessing=False``, the defaults) it adds
``prefetch(tf.data.AUTOTUNE)``; with one (threads or processes) it turns
tf.data's autotuning off and gives the dataset a one-thread private pool,
since its own enqueuer prefetches (``PyDatasetAdapter.get_tf_dataset``).

Whole epochs of one model in one process, round-robin over: inline as
Keras builds it; inline with tf.data's autotuning turned off the way Keras
turns it off for a pool (this patches Keras's private adapter for this
benchmark only); 2 threads, queue 10; 16 processes, queue 32 (the grid's
best on model_bound in every compare run). Prints every epoch, then each
median over inline's with a 95% bootstrap interval.

    python benchmarks/inline_prefetch.py [--workload model_bound] [--rounds 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare import KERAS3_WORKLOADS, keras3_workload  # noqa: E402
from probes.stats import bootstrap_ratio_interval, summarize  # noqa: E402

INLINE = "inline (Keras: prefetch AUTOTUNE)"
INLINE_NO_AUTOTUNE = "inline, tf.data autotuning off"


def autotune_switch():
    """Patches Keras's adapter so that inline datasets can have tf.data's autotuning turned off."""
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


def traced_workload(name: str):
    """The autotune switch, then the workload's module and model with its train step traced."""
    switch = autotune_switch()
    module, model = keras3_workload(name)
    model.fit(module.make_dataset(), epochs=1, verbose=0)  # traces the step
    return switch, module, model


def dataset_with(module, knobs: dict):
    """A fresh dataset with Keras's knobs set (PyDataset's knobs are properties with setters)."""
    dataset = module.make_dataset()
    for knob, value in knobs.items():
        setattr(dataset, knob, value)
    return dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=KERAS3_WORKLOADS, default="model_bound")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    switch, module, model = traced_workload(args.workload)
    settings = {
        INLINE: (False, {}),
        INLINE_NO_AUTOTUNE: (True, {}),
        "2 threads, queue 10": (False, {"workers": 2, "max_queue_size": 10}),
        "16 processes, queue 32": (False, {"workers": 16, "use_multiprocessing": True, "max_queue_size": 32}),
    }
    rates = {name: [] for name in settings}
    for round_index in range(args.rounds):
        for name, (autotune_off, knobs) in settings.items():
            switch["off"] = autotune_off
            dataset = dataset_with(module, knobs)
            start = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            rates[name].append(len(dataset) / (time.perf_counter() - start))
            print(f"  round {round_index} {name:36} {rates[name][-1]:7.2f} batches/s", flush=True)
    for name, values in rates.items():
        spread = summarize(values)
        ratio, low, high = bootstrap_ratio_interval(values, rates[INLINE])
        print(f"{name:36} median {spread.median:7.2f} batches/s (min {spread.minimum:.2f}, max {spread.maximum:.2f}, "
              f"n={spread.count}); over inline {ratio:.2f} [{low:.2f}, {high:.2f}]")


if __name__ == "__main__":
    main()
