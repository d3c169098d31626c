"""Would the screen's windows sharpen the race's decision? Each pair of settings the race timed, read both ways.

For every ``results.json`` given, each pair of raced Keras settings is
compared twice: by the screen (the ratio of their predicted epoch
throughputs, one window each) and by the race (the mean log ratio of their
interleaved rounds). Counting a screen window as evidence beside the rounds
helps only where the screen's ratio scatters about the race's without a
sign of its own; the summary gives the log differences for pairs against
the defaults and for pairs of pools.

    tune-loader benchmarks/workloads/whitened_windows.py --out /tmp/ww1   # and more tunes
    python benchmarks/screen_vs_race.py /tmp/ww*/results.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuner.core import KERAS_DEFAULTS, LoaderConfig  # noqa: E402


def pairs(answer: dict) -> list[tuple[str, str, float, float]]:
    """(a, b, screen log ratio, race mean log ratio) for each pair of Keras settings both raced and screened."""
    screened = {LoaderConfig(**trial["config"]).label(): trial["predicted_batches_per_second"]
                for trial in answer["trials"] if trial["status"] == "ok" and trial["predicted_batches_per_second"]}
    race = {label: epochs for label, epochs in (answer.get("race_epochs") or {}).items() if label in screened}
    found = []
    for a, b in itertools.combinations(sorted(race, key=lambda label: label != KERAS_DEFAULTS.label()), 2):
        shared = min(len(race[a]), len(race[b]))
        if shared:
            rounds = statistics.fmean(math.log(x / y) for x, y in zip(race[b][:shared], race[a][:shared]))
            found.append((b, a, math.log(screened[b] / screened[a]), rounds))
    return found


def summary(name: str, differences: list[float]) -> str:
    if len(differences) < 2:
        return f"{name}: {len(differences)} pair(s)"
    return (f"{name}: {len(differences)} pairs, screen / race {math.exp(min(differences)):.2f} to "
            f"{math.exp(max(differences)):.2f}, log difference mean {statistics.fmean(differences):+.3f}, "
            f"sd {statistics.stdev(differences):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="results.json files of tune-loader runs")
    against_defaults, between_pools = [], []
    for path in parser.parse_args().results:
        for a, b, screen, race in pairs(json.loads(path.read_text())):
            print(f"{path.parent.name}: {a} / {b}: screen {math.exp(screen):.2f}, race {math.exp(race):.2f}")
            (against_defaults if b == KERAS_DEFAULTS.label() else between_pools).append(screen - race)
    print(summary("against the defaults", against_defaults))
    print(summary("between pools", between_pools))


if __name__ == "__main__":
    main()
