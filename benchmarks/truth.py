"""Does tune-loader's claim hold when you time your own training? The truth benchmark.

For each example: run tune-loader, then time the defaults, its answer and the settings a user would try
next to it (2 and 4 threads, 2 processes when the dataset pickles, the rule of thumb) with
``benchmarks/stopwatch.py``: a fresh process per setting, a plain multi-epoch ``fit``, no code shared with
tune-loader's timing. Settings are interleaved over rounds (A B C, A B C, ...), and each stopwatch
speed-up is the median of the per-round ratios to the defaults.

It prints, per example: the claimed speed-up with its interval, the stopwatch's, the claim error
(claimed / stopwatch - 1), and the answer's ratio to the best stopwatch setting. With ``--under-load``
each example is also tuned beside a process spinning one core, and that claim is judged against the
same quiet stopwatch; an example named by ``--repeat`` is tuned three times, and every answer is timed.

A row ``EXAMPLE@jax`` tunes and times under the JAX backend, where the settings timed leave out processes
(tune-loader does not allow them there). Where tune-loader searched BLAS/OpenMP threads per worker, every
setting is also timed at one native thread (the four-knob grid), and tune-loader runs once more with
``native_threads=False``: the three-knob answer, timed beside the four-knob one.

    python benchmarks/truth.py --under-load --repeat flow_from_directory image_files   # what the README shows
    python benchmarks/truth.py --examples image_files io_bound --rounds 3
    python benchmarks/truth.py --from benchmarks/results/MACHINE/COMMIT/truth-TIME.json ...   # re-render

Writes the raw results to benchmarks/results/ (git-ignored), its section of benchmarks/RESULTS.md, and the
README's table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import record  # noqa: E402
from probes import probe_machine  # noqa: E402
from probes.profiles import DataKind  # noqa: E402
from tuner import recommend  # noqa: E402
from tuner.results import KERAS_DEFAULTS, LoaderConfig, Recommendation  # noqa: E402
from tuner.engines import backend as backends  # noqa: E402
from tuner.search.space import native_limits, rule_of_thumb  # noqa: E402

EXAMPLES = ("io_bound", "gil_bound", "numpy_augment", "image_files", "flow_from_directory", "legacy_sequence",
            "blas_features", "io_bound@jax", "gil_bound@jax")
STOPWATCH = ROOT / "benchmarks" / "stopwatch.py"
REPEATED_RUNS = 3
TIMED_SECONDS = 5.0  # the defaults' timed fit lasts about this long; every setting runs as many epochs
README_BEGIN, README_END = "<!-- truth table: written by benchmarks/truth.py -->", "<!-- end of truth table -->"
RESULTS_BEGIN, RESULTS_END = "<!-- truth: written by benchmarks/truth.py -->", "<!-- end of truth -->"


def stopwatch(path: Path, config: LoaderConfig, epochs: int, backend: str) -> float:
    """Batches per second of one plain ``fit`` of ``epochs`` epochs under ``config``, in a fresh process."""
    command = [sys.executable, str(STOPWATCH), str(path), str(config.workers), str(config.use_multiprocessing),
               str(config.max_queue_size), str(epochs), str(config.native_threads or "default")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env=os.environ | {"KERAS_BACKEND": backend})
    if done.returncode != 0:
        raise RuntimeError(f"stopwatch failed for {config.label()}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["batches_per_second"]


def settings_to_time(answer: Recommendation, *others: LoaderConfig) -> dict[str, LoaderConfig]:
    """The defaults, the answer, what a user would try by hand (each also at one native thread where the
    fourth knob was searched), and ``others`` (answers of the repeated, loaded and three-knob runs), each
    setting once, processes only where tune-loader allows them."""
    processes = (answer.dataset.picklable and answer.dataset.kind != DataKind.GENERATOR
                 and not backends.processes_excluded(answer.backend))
    by_hand = {"defaults": KERAS_DEFAULTS, "2 threads": LoaderConfig(2, False, 10), "4 threads": LoaderConfig(4, False, 10)}
    if processes:
        by_hand["2 processes"] = LoaderConfig(2, True, 10)
    if native_limits(answer.machine, answer.dataset):
        by_hand |= {f"{name}, 1 native thread": dataclasses.replace(config, native_threads=1)
                    for name, config in by_hand.items()}
    rule = rule_of_thumb(answer.machine, answer.dataset)
    candidates = {"defaults": KERAS_DEFAULTS, "tune-loader": answer.config} | by_hand
    if processes or not rule.use_multiprocessing:
        candidates["rule of thumb"] = rule
    candidates |= {f"other answer {number}": config for number, config in enumerate(others, 1)}
    unique, seen = {}, set()
    for name, config in candidates.items():
        if config.equivalence_key() not in seen:
            seen.add(config.equivalence_key())
            unique[name] = config
    return unique


def tune(path: Path, backend: str, competing_core: bool = False, native_threads: bool = True
         ) -> tuple[Recommendation, float]:
    """tune-loader's answer and its time to answer; with ``competing_core``, beside a process that spins one
    core from start to end (the stopwatch always runs quiet)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing_core else None
    began = time.monotonic()
    try:
        return recommend(str(path), backend=backend, native_threads=native_threads), time.monotonic() - began
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def run_example(row: str, rounds: int, runs: int, under_load: bool) -> dict:
    name, _, backend = row.partition("@")
    backend = backend or "tensorflow"
    path = ROOT / "examples" / f"{name}.py"
    print(f"\n== {row}", flush=True)
    quiet = [tune(path, backend) for _ in range(runs)]
    loaded = tune(path, backend, competing_core=True) if under_load else None
    answer, tuning_seconds = quiet[0]
    three = tune(path, backend, native_threads=False) if native_limits(answer.machine, answer.dataset) else None
    others = ([a.config for a, _ in quiet[1:]] + ([loaded[0].config] if loaded else [])
              + ([three[0].config] if three else []))
    settings = settings_to_time(answer, *others)
    default_rate = answer.default_batches_per_second or answer.recommended_batches_per_second
    epoch_seconds = answer.epoch_batches / default_rate.median
    epochs = max(2, min(10, math.ceil(TIMED_SECONDS / epoch_seconds)))
    print(f"  tune-loader: {', '.join(a.config.label() for a, _ in quiet)} in "
          f"{', '.join(f'{t:.0f} s' for _, t in quiet)}"
          + (f"; under load {loaded[0].config.label()} in {loaded[1]:.0f} s" if loaded else "")
          + f"; stopwatch: {epochs} epochs a fit, {len(settings)} settings, {rounds} rounds", flush=True)
    timed = {label: [] for label in settings}
    for _ in range(rounds):
        for label, config in settings.items():
            timed[label].append(stopwatch(path, config, epochs, answer.backend))
    speedups = {label: statistics.median(a / b for a, b in zip(rates, timed["defaults"])) for label, rates in timed.items()}
    shown = f"{name} ({backends.label(answer.backend)})" if backend != "tensorflow" else name
    result = {"example": shown, "backend": answer.backend, "epochs": epochs, "speedups": speedups, "rates": timed,
              **judge(answer, tuning_seconds, settings, speedups)}
    result["three_knob"] = judge(*three, settings, speedups) if three else None
    result["repeats"] = [judge(a, t, settings, speedups) for a, t in quiet[1:]]
    result["under_load"] = judge(*loaded, settings, speedups) if loaded else None
    return result


def judge(answer: Recommendation, tuning_seconds: float, settings: dict[str, LoaderConfig],
          speedups: dict[str, float]) -> dict:
    """One tune-loader answer against the stopwatch: its claim, the stopwatch's speed-up of the setting it
    chose (median of per-round ratios to the defaults), the claim error, and its ratio to the best setting."""
    best_label = max(speedups, key=speedups.get)
    key = answer.config.equivalence_key()
    measured = speedups[next(label for label, config in settings.items() if config.equivalence_key() == key)]
    c = answer.confirmation
    claimed = c.speedup if c and answer.config != KERAS_DEFAULTS else 1.0
    return {"answer": answer.config.label(), "tuning_seconds": tuning_seconds,
            "claimed": claimed, "claimed_interval": [c.speedup_low, c.speedup_high] if c else None,
            "claimed_is_range": c.is_range if c else None, "stopwatch": measured,
            "claim_error": claimed / measured - 1.0, "best_setting": best_label,
            "answer_over_best": measured / speedups[best_label],
            "advises_tf_data": answer.tf_data_is_faster, "race_stopped_because": answer.race_stopped_because,
            "race_load": {"dropped": answer.race_load.dropped_rounds, "loaded": answer.race_load.loaded_rounds,
                          "peak_foreign_cores": answer.race_load.peak_foreign_cores}}


def table(results: list[dict]) -> str:
    loaded = any(r.get("under_load") for r in results)
    head = ("| example | answer | claimed speed-up [interval] | stopwatch speed-up | claim error | "
            "answer / best stopwatch setting | time to answer |")
    rule = "|---|---|---|---:|---:|---|---:|"
    if loaded:
        head += " under a competing core: answer, claim, claim error, answer / best |"
        rule += "---|"
    lines = [head, rule]
    for r in results:
        line = (f"| {r['example']} | {r['answer']} | {claimed_text(r)} | {r['stopwatch']:.2f}x | "
                f"{r['claim_error']:+.0%} | {r['answer_over_best']:.2f} ({r['best_setting']}) | "
                f"{r['tuning_seconds']:.0f} s |")
        if loaded:
            u = r.get("under_load")
            line += (f" {u['answer']}, {claimed_text(u)}, {u['claim_error']:+.0%}, {u['answer_over_best']:.2f} |"
                     if u else " |")
        lines.append(line)
    return "\n".join(lines)


def three_knob_text(results: list[dict]) -> str:
    """For examples where the fourth knob was searched: the answer with and without it, by the stopwatch."""
    return "\n".join(
        f"- {r['example']}: with the fourth knob {r['answer']} reads {r['stopwatch']:.2f}x the defaults; "
        f"with the three Keras knobs only (`--no-native-threads`) {r['three_knob']['answer']} reads "
        f"{r['three_knob']['stopwatch']:.2f}x: the four-knob answer is {r['stopwatch'] / r['three_knob']['stopwatch']:.2f}x "
        f"the three-knob answer; the best setting timed is {r['best_setting']}."
        for r in results if r.get("three_knob"))


def repeats_text(results: list[dict]) -> str:
    """For examples tuned more than once: each run's answer by the stopwatch, and their spread."""
    lines = []
    for r in results:
        if r.get("repeats"):
            runs = [r] + r["repeats"]
            rates = [run["stopwatch"] for run in runs]
            lines.append(f"- {r['example']}, {len(runs)} runs: " + "; ".join(
                f"{run['answer']} {run['stopwatch']:.2f}x" for run in runs)
                + f". Spread of the answers by the stopwatch: {max(rates) / min(rates) - 1:.1%}.")
    return "\n".join(lines)


def claimed_text(r: dict) -> str:
    """The claim as tune-loader made it: a speed-up with its interval (or range), or the defaults kept."""
    if r["answer"] == KERAS_DEFAULTS.label():
        return "1.00x (defaults kept)"
    if not r["claimed_interval"]:
        return f"{r['claimed']:.2f}x"
    low, high = r["claimed_interval"]
    return f"{r['claimed']:.2f}x [{low:.2f}, {high:.2f}]" + (" (range)" if r["claimed_is_range"] else "")


def publish(results: list[dict], rounds: int, saved: list[Path]) -> None:
    """Replaces this benchmark's section of benchmarks/RESULTS.md and the README's table (``saved``: the raw
    results the rows come from, each under the commit its run started with)."""
    machine = probe_machine()
    context = (f"{machine.usable_cores} usable cores, Python {machine.python_version}; stopwatch: a fresh process "
               f"per setting, {rounds} interleaved rounds, speed-ups as medians of per-round ratios to the defaults")
    body = f"{context}.\n\n{table(results)}"
    if fourth := three_knob_text(results):
        body += f"\n\nThe fourth knob, BLAS/OpenMP threads per worker, each answer timed by the same stopwatch rounds:\n\n{fourth}"
    if repeats := repeats_text(results):
        body += f"\n\nRepeated runs, each answer timed by the same stopwatch rounds:\n\n{repeats}"
    runs = "; ".join(f"at commit {path.parent.name}, raw results in `{path.relative_to(ROOT)}`" for path in saved)
    record.write_summary_section(RESULTS_BEGIN, RESULTS_END, (
        f"## Truth: claims against a stopwatch\n\nGenerated by `python benchmarks/truth.py` ({runs}; the commit "
        f"is the code a run started with; raw results are not committed).\n\n{body}"))
    readme = ROOT / "README.md"
    block = f"{README_BEGIN}\n{body}\n{README_END}"
    readme.write_text(re.sub(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), lambda _: block,
                             readme.read_text(), flags=re.DOTALL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", nargs="+", choices=EXAMPLES, default=list(EXAMPLES))
    parser.add_argument("--rounds", type=int, default=3, help="stopwatch rounds per setting (default 3)")
    parser.add_argument("--repeat", nargs="+", choices=EXAMPLES, default=[], metavar="EXAMPLE",
                        help=f"tune these examples {REPEATED_RUNS} times each; every answer is timed by the same "
                        "stopwatch rounds")
    parser.add_argument("--under-load", action="store_true",
                        help="also tune each example beside a process spinning one core (the stopwatch runs quiet)")
    parser.add_argument("--from", dest="saved", type=Path, nargs="+", metavar="SAVED",
                        help="re-render the tables from saved runs instead (their rows in order, each example once: "
                        "a later file's row replaces an earlier one's)")
    args = parser.parse_args()
    if args.saved:
        saved = [path.resolve() for path in args.saved]
        rows = {row["example"]: row for path in saved for row in json.loads(path.read_text())["results"]}
        results = list(rows.values())
        publish(results, len(results[0]["rates"]["defaults"]), saved)
        print(table(results))
        return
    results, saved = record.run_and_save(
        "truth", args.examples, lambda name: run_example(name, args.rounds, REPEATED_RUNS if name in args.repeat else 1, args.under_load))
    print("\n" + table(results))
    publish(results, args.rounds, [saved])
    print(f"\nwrote {saved.relative_to(ROOT)}, benchmarks/RESULTS.md and the README's table")


if __name__ == "__main__":
    main()
