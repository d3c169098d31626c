"""Where the knee of a thread pool lies, and how flat the plateau above it is: whole epochs side by side.

The race's rule for data code that waits (``race.confirmed_best``) and the
cap on waiting workers (``SearchSpace.for_profiles``) rest on an asymmetry:
a thread short of the knee loses throughput, one above it a few percent at
most (docs/search.md). This times one workload's thread pools round-robin
(order reversed every other round, so no setting always follows the same
one) and prints each as a paired ratio to a reference pool.

    python benchmarks/plateau.py                                   # io_bound, 8 to 39 threads
    python benchmarks/plateau.py --threads 4 8 16 32 --reference 8 --rounds 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import record  # noqa: E402
from benchmarks.workloads import WORKLOADS, Session  # noqa: E402
from probes.stats import paired_ratio_interval, summarize  # noqa: E402
from tuner.core import LoaderConfig  # noqa: E402


def thread_pool(workers: int) -> LoaderConfig:
    """``workers`` threads with a queue that keeps them all busy (Keras keeps ``max_queue_size + 1`` in flight)."""
    return LoaderConfig(workers, False, max(10, workers - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=sorted(set(WORKLOADS) - {"legacy_generator"}), default="io_bound")
    parser.add_argument("--threads", type=int, nargs="+", default=[8, 12, 16, 22, 32, 39])
    parser.add_argument("--reference", type=int, default=16, help="the thread count the others are compared to")
    parser.add_argument("--rounds", type=int, default=24)
    args = parser.parse_args()
    configs = [thread_pool(workers) for workers in sorted(set(args.threads) | {args.reference})]
    session = Session(WORKLOADS[args.workload])
    try:
        rounds = [{c.label(): session.whole_epoch(c) for c in (configs if r % 2 == 0 else configs[::-1])}
                  for r in range(args.rounds)]
    finally:
        session.close()
    reference = thread_pool(args.reference).label()
    print(f"{args.workload}: whole epochs of {session.epoch} batches, {args.rounds} rounds; "
          f"ratio = median of per-round ratios to {reference}, 95% bootstrap over rounds")
    for config in configs:
        rates = [r[config.label()] for r in rounds]
        ratio, low, high = paired_ratio_interval(rates, [r[reference] for r in rounds])
        print(f"  {config.label():24s} {summarize(rates).median:7.1f} batches/s   {ratio:.3f} [{low:.3f}, {high:.3f}]")
    saved = record.save(record.run_file("plateau"), "plateau", {"workload": args.workload, "rounds": rounds})
    print(f"wrote {saved.relative_to(record.ROOT)}")


if __name__ == "__main__":
    main()
