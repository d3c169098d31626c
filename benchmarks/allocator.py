"""What TensorFlow's ``from_generator`` malloc setting costs a Keras 3 PyDataset's training, side by side.

The first time a process iterates a ``tf.data.Dataset.from_generator`` (every
``fit`` on a PyDataset does), TensorFlow 2.21 logs "Memory patch applied:
M_TRIM_THRESHOLD=128 kb was set" and calls glibc's ``mallopt``. Setting any
threshold by hand turns off glibc's dynamic mmap threshold, so every
allocation over 128 KiB (a 1536 x 1536 float32 gradient is 9 MiB) becomes
an ``mmap`` of fresh pages, page-faulted in and zeroed by the kernel, and is
``munmap``-ed when freed. The model step then spends about as much CPU time
in the kernel as in its own code.

This runs one process, one model and one dataset, and alternates whole
inline epochs between two allocator states, set with ``mallopt`` before
each epoch (followed by ``malloc_trim(0)``):

- "as TensorFlow sets it": mmap threshold frozen at glibc's starting
  128 KiB, trim threshold 128 KiB;
- "large thresholds": mmap threshold 32 MiB (the ceiling of glibc's own
  dynamic threshold), trim threshold 64 MiB (twice it, as glibc's dynamic
  rule keeps them).

It prints each epoch's batches/s, page faults per step and the share of the
process's CPU time spent in the kernel, then the ratio of medians with a 95%
bootstrap interval. tune-loader does not change the allocator of the
process it measures: its numbers are what the user's training gets.

    python benchmarks/allocator.py [--workload model_bound] [--rounds 6]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import record  # noqa: E402
from benchmarks.workloads import KERAS3_WORKLOADS, keras3_workload  # noqa: E402
from probes.stats import bootstrap_ratio_interval, summarize  # noqa: E402

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>
STATES = {
    "as TensorFlow sets it": (128 << 10, 128 << 10),
    "large thresholds": (32 << 20, 64 << 20),
}


def set_allocator(libc, mmap_threshold: int, trim_threshold: int) -> None:
    if not (libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)):
        raise SystemExit("mallopt refused the thresholds: this benchmark needs glibc")
    libc.malloc_trim(0)


def timed_epoch(model, dataset) -> tuple[float, float, float]:
    """Batches/s, minor page faults per batch, and the kernel's share of this process's CPU time."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu, start = os.times(), time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    seconds, cpu_after = time.perf_counter() - start, os.times()
    batches = len(dataset)
    user, system = cpu_after.user - cpu.user, cpu_after.system - cpu.system
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return batches / seconds, faults / batches, system / (user + system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=KERAS3_WORKLOADS, default="model_bound")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    libc = ctypes.CDLL("libc.so.6")
    module, model = keras3_workload(args.workload)
    dataset = module.make_dataset()
    model.fit(dataset, epochs=1, verbose=0)  # traces the step, and TensorFlow applies its setting
    rates = {state: [] for state in STATES}
    print(f"{args.workload}: inline epochs of {len(dataset)} batches, allocator states alternated")
    for round_index in range(args.rounds):
        for state, thresholds in STATES.items():
            set_allocator(libc, *thresholds)
            rate, faults, kernel_share = timed_epoch(model, dataset)
            rates[state].append(rate)
            print(f"  round {round_index} {state:22} {rate:7.2f} batches/s {faults:8.0f} page faults/batch "
                  f"{kernel_share:4.0%} of CPU in the kernel", flush=True)
    for state, values in rates.items():
        spread = summarize(values)
        print(f"{state:22} median {spread.median:7.2f} batches/s (min {spread.minimum:.2f}, max {spread.maximum:.2f}, "
              f"n={spread.count})")
    ratio, low, high = bootstrap_ratio_interval(rates["large thresholds"], rates["as TensorFlow sets it"])
    print(f"large thresholds / as TensorFlow sets it = {ratio:.2f} [{low:.2f}, {high:.2f}] (95% bootstrap interval)")
    saved = record.save(record.run_file("allocator"), "allocator", {"workload": args.workload, "rates": rates})
    print(f"wrote {saved.relative_to(record.ROOT)}")


if __name__ == "__main__":
    main()
