"""Is tune-loader's answer the best setting, the same every run, and does its claim hold by a stopwatch?

For each example: tune it three times (``recommend()`` at its defaults), then time every answer beside a
broad grid with ``benchmarks/stopwatch.py``: a fresh process per setting, a plain multi-epoch ``fit``, no
code shared with tune-loader's timing. The grid is workers 1 (processes), 2, 4, 8, 16 and 32, threads
and processes where the data allows them, each with Keras's queue of 10 and a queue of twice the
workers, each also at one BLAS/OpenMP thread where tune-loader searched that knob, the defaults, the
rule of thumb and tf.data. Settings are interleaved over rounds (A B C, A B C, ...); each stopwatch
speed-up is the geometric mean of the per-round ratios to the defaults.

It prints, per example and run: the answer over the grid's best, the claim error (claimed / stopwatch
- 1), the time to an answer, and the spread of the runs' answers by the stopwatch; then whether each of
issue 30's goals held. With ``--under-load`` each example is also tuned once beside a process spinning
one core, and that answer is judged against the same quiet stopwatch. A row ``EXAMPLE@jax`` tunes and
times under JAX (no processes there); ``torch_dataloader@torch`` tunes a torch DataLoader under the torch
backend against ``num_workers`` 0, 1, 2 and 4, each with and without ``persistent_workers``;
``grain_pipeline@jax`` a Grain pipeline against ``mp_prefetch`` ``worker_count`` 0, 1, 2 and 4, each at
``worker_buffer_size`` 1 and 4. With ``--start-method forkserver`` (or spawn) every tune and every
stopwatch fit starts its process pools so, and the grid's process pools stop at 8 workers: each worker
imports TensorFlow at every epoch start.

    python benchmarks/truth.py                                    # what the README shows
    python benchmarks/truth.py --examples image_files io_bound --rounds 3 --runs 2
    python benchmarks/truth.py --examples gil_bound image_files --start-method forkserver
    python benchmarks/truth.py --examples log_lines volume_patches closure_pipeline whitened_windows
    python benchmarks/truth.py --from benchmarks/results/MACHINE/COMMIT/truth-TIME.json ...   # re-render

Writes the raw results to benchmarks/results/ (git-ignored), its section of benchmarks/RESULTS.md, and the
README's table.
"""

from __future__ import annotations

import argparse
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
from tuner.core import KERAS_DEFAULTS, LoaderConfig  # noqa: E402
from tuner.engines import backend as backends  # noqa: E402
from tuner.engines import registry  # noqa: E402
from tuner.engines.knobs import PYDATASET_IN_DATALOADER_KNOBS  # noqa: E402
from tuner.results import Recommendation  # noqa: E402
from tuner.search.space import SearchSpace, rule_of_thumb  # noqa: E402

EXAMPLES = ("io_bound", "gil_bound", "numpy_augment", "image_files", "flow_from_directory", "legacy_sequence",
            "legacy_generator", "blas_features", "io_bound@jax", "gil_bound@jax", "torch_dataloader@torch")
# Other engines' examples, tuned and timed on request (--examples), not in the README's table.
ENGINE_ROWS = ("grain_pipeline@jax", "grain_pipeline@tensorflow", "grain_loader@jax")  # grain_loader: a workload
# Data code the examples lack, in benchmarks/workloads/ (issue 40): epochs of 1.5 to 5 s with a model step over
# 20 ms (log_lines), 7 MB batches (volume_patches), a dataset that does not pickle (closure_pipeline), and a
# BLAS-heavy loader timed also at one BLAS thread a worker (whitened_windows). They are not in the README's table.
WORKLOADS = ("log_lines", "volume_patches", "closure_pipeline", "whitened_windows")
STOPWATCH = ROOT / "benchmarks" / "stopwatch.py"
GRID_WORKERS = (1, 2, 4, 8, 16, 32)
LOADER_WORKERS = (1, 2, 4)
GRAIN_WORKERS = (0, 1, 2, 4)  # mp_prefetch's worker_count, each at worker_buffer_size 1 and 4  # a torch DataLoader's num_workers, each with and without persistent workers
# "never below the rule of thumb or tf.data, within the intervals": two stopwatch rounds vary by a few percent
RULE_NOISE = TF_DATA_NOISE = 1.05
FRESH_WORKERS_MOST = 8  # process pools under forkserver or spawn: each worker imports TensorFlow every epoch
TIMED_SECONDS = 5.0  # the defaults' timed fit lasts about this long; every setting runs as many epochs
MIN_EPOCHS, MAX_EPOCHS = 4, 10
GOALS = {"answer / best": 0.97, "answer / best, every run": 0.95, "defaults kept below": 1.05, "claim error": 0.10, "spread": 0.05, "median seconds": 60.0, "most seconds": 90.0,
         "under load / best": 0.90}
README_BEGIN, README_END = "<!-- truth table: written by benchmarks/truth.py -->", "<!-- end of truth table -->"
RESULTS_BEGIN, RESULTS_END = "<!-- truth: written by benchmarks/truth.py -->", "<!-- end of truth -->"


def stopwatch(path: Path, config: LoaderConfig, epochs: int, backend: str, start_method: str | None,
              tries: int = 2) -> dict | None:
    """Batches per second of the epochs after the first of one plain ``fit``, in a fresh process
    (``batches_per_second``, and ``median_epoch_batches_per_second``: the owner's stopwatch); None when
    that ``fit`` failed ``tries`` times in a row (each error is printed), as it could in the user's
    training (CPython 3.11.7's AST race fails threads that call np.load now and then)."""
    workers = 0 if config.is_tf_data else config.workers  # the stopwatch's word for tf.data
    command = [sys.executable, str(STOPWATCH), str(path), str(workers), str(config.use_multiprocessing),
               str(config.max_queue_size), str(epochs), str(config.native_threads or "default"),
               str(config.persistent_workers)]
    for _ in range(tries):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT,
                              env=os.environ | {"KERAS_BACKEND": backend} | (
                                  {"STOPWATCH_START_METHOD": start_method} if start_method else {}))
        if done.returncode == 0:
            return json.loads(done.stdout.strip().splitlines()[-1])
        errors = [line for line in done.stderr.splitlines() if re.match(r"^\w+(Error|Exception)\b", line)]
        print(f"  stopwatch: {config.label()} failed: {(errors or done.stderr.splitlines() or ['?'])[-1]}", flush=True)
    return None


def speedup(values: list[float | None], defaults: list[float | None]) -> float:
    """Geometric mean of the per-round ratios to the defaults; 0 for a setting that failed in any round
    (a setting that crashed the user's training twice running is no answer)."""
    if None in defaults:
        raise RuntimeError("the defaults failed in the stopwatch: nothing to compare with")
    return 0.0 if None in values else statistics.geometric_mean([a / b for a, b in zip(values, defaults)])


def grid(answer: Recommendation) -> dict[str, LoaderConfig]:
    """The broad grid for this data, as far as the data allows each kind of pool (not as far as
    tune-loader's own space reaches), with the defaults, the rule of thumb and tf.data; a PyDataset under
    torch also in a DataLoader with persistent workers, ``LOADER_WORKERS`` of them."""
    knobs = registry.knob_set(answer.engine, answer.backend)
    if answer.engine == "torch-dataloader":
        return loader_grid(answer, knobs)
    if answer.engine == "grain":
        return grain_grid(answer, knobs)
    space = SearchSpace.for_profiles(answer.machine, answer.dataset, backend=answer.backend)
    kinds = [False] * (not space.threads_infeasible) + [True] * space.allow_processes
    forked = answer.machine.start_method == "fork"
    pools = [LoaderConfig(workers, processes, queue) for processes in kinds for workers in GRID_WORKERS
             if (workers > 1 or processes) and (forked or not processes or workers <= FRESH_WORKERS_MOST)
             for queue in sorted({10, 2 * workers})]
    if knobs is PYDATASET_IN_DATALOADER_KNOBS and space.allow_processes:
        pools += [LoaderConfig(workers, True, 2 * workers, persistent_workers=True) for workers in LOADER_WORKERS]
    configs = [KERAS_DEFAULTS] + pools
    if space.native_threads:
        configs += [LoaderConfig(c.workers, c.use_multiprocessing, c.max_queue_size, 1) for c in configs]
    settings = {config.label(): config for config in configs}
    rule = rule_of_thumb(answer.machine, answer.dataset)
    if space.allows(rule) and rule not in configs:
        settings["rule of thumb"] = rule
    if answer.dataset.kind != DataKind.GENERATOR:
        settings["tf.data"] = LoaderConfig.tf_data()
    return settings


def loader_grid(answer: Recommendation, knobs) -> dict[str, LoaderConfig]:
    """A torch DataLoader's grid: no workers (the defaults) and ``LOADER_WORKERS`` at torch's prefetch of 2,
    each with and without persistent workers, and the rule of thumb (a worker per core)."""
    configs = [KERAS_DEFAULTS] + [LoaderConfig(workers, True, 2 * workers, persistent_workers=persistent)
                                  for workers in LOADER_WORKERS for persistent in (False, True)]
    settings = {config.label(): config for config in configs}
    rule = rule_of_thumb(answer.machine, answer.dataset, knobs)
    if rule not in configs:
        settings["rule of thumb"] = rule
    return settings


def grain_grid(answer: Recommendation, knobs) -> dict[str, LoaderConfig]:
    """A Grain pipeline's grid: ``mp_prefetch`` with ``GRAIN_WORKERS`` workers (0: none, the defaults), each
    holding 1 and 4 batches, and the rule of thumb (a worker per core)."""
    configs = [KERAS_DEFAULTS] + [LoaderConfig(workers, True, workers * buffer)
                                  for workers in GRAIN_WORKERS if workers for buffer in (1, 4)]
    settings = {config.label(): config for config in configs}
    rule = rule_of_thumb(answer.machine, answer.dataset, knobs)
    if rule not in configs:
        settings["rule of thumb"] = rule
    return settings


def tune(path: Path, backend: str, start_method: str | None, competing_core: bool = False
         ) -> tuple[Recommendation, float]:
    """tune-loader's answer and its time to answer; with ``competing_core``, beside a process that spins one
    core from start to end (the stopwatch always runs quiet)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing_core else None
    began = time.monotonic()
    try:
        return recommend(str(path), backend=backend, start_method=start_method), time.monotonic() - began
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def run_example(row: str, rounds: int, runs: int, under_load: bool, start_method: str | None = None) -> dict:
    name, _, backend = row.partition("@")
    backend = backend or "tensorflow"
    workload = ROOT / "benchmarks" / "workloads" / f"{name}.py"
    path = workload if workload.exists() else ROOT / "examples" / f"{name}.py"
    print(f"\n== {row}", flush=True)
    tuned = [tune(path, backend, start_method) for _ in range(runs)]
    loaded = tune(path, backend, start_method, competing_core=True) if under_load else None
    answers = [answer for answer, _ in tuned + ([loaded] if loaded else [])]
    settings = grid(answers[0])
    settings |= {f"answer {i}": a.config for i, a in enumerate(answers, 1) if a.config not in settings.values()}
    default_rate = answers[0].default_batches_per_second or answers[0].recommended_batches_per_second
    epochs = max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(TIMED_SECONDS * default_rate.median / answers[0].epoch_batches)))
    print(f"  answers: {'; '.join(f'{a.config.label()} in {t:.0f} s' for a, t in tuned)}"
          + (f"; under load {loaded[0].config.label()}" if loaded else "")
          + f"; stopwatch: {epochs} epochs a fit, {len(settings)} settings, {rounds} rounds", flush=True)
    rates, medians = {label: [] for label in settings}, {label: [] for label in settings}
    for _ in range(rounds):
        for label, config in settings.items():
            timed = stopwatch(path, config, epochs, answers[0].backend, start_method)
            rates[label].append(timed and timed["batches_per_second"])
            medians[label].append(timed and timed["median_epoch_batches_per_second"])
    speedups = {label: speedup(values, rates["inline (no pool)"]) for label, values in rates.items()}
    by_median = {label: speedup(values, medians["inline (no pool)"]) for label, values in medians.items()}
    rule = rule_of_thumb(answers[0].machine, answers[0].dataset, registry.knob_set(answers[0].engine))
    speedups.setdefault("rule of thumb", speedups.get(rule.label(), 1.0))
    shown = f"{name} ({backends.label(answers[0].backend)})" if backend != "tensorflow" else name
    shown += f" ({start_method})" if start_method else ""
    return {"example": shown, "epochs": epochs, "rates": rates, "speedups": speedups, "median_rates": medians,
            "runs": [judge(a, t, settings, speedups, by_median) for a, t in tuned],
            "under_load": judge(*loaded, settings, speedups) if loaded else None}


def judge(answer: Recommendation, seconds: float, settings: dict[str, LoaderConfig], speedups: dict,
          by_median: dict | None = None) -> dict:
    """One answer against the stopwatch: its claim, the stopwatch's speed-up of what it chose, the claim
    error (also against ``by_median``, the speed-ups of median epochs), and its ratio to the grid's best
    Keras setting (tf.data is judged apart: ``tf_data_held``)."""
    best = max((label for label in speedups if label != "tf.data"), key=speedups.get)
    label = next(label for label, config in settings.items() if config.equivalence_key() == answer.config.equivalence_key())
    c = answer.confirmation
    claimed = c.speedup if c and answer.config != KERAS_DEFAULTS else 1.0
    measured = speedups[label]
    return {"answer": answer.config.label(), "seconds": seconds, "claimed": claimed,
            "interval": [c.speedup_low, c.speedup_high] if c else None, "stopwatch": measured,
            "claim_error": claimed / measured - 1.0 if measured else math.inf, "best": best,
            "answer_over_best": measured / speedups[best],
            "median_claim_error": claimed / by_median[label] - 1.0 if by_median and by_median[label] else None,
            "settled": answer.race_settled, "race_stopped_because": answer.race_stopped_because,
            "advises_tf_data": answer.tf_data_is_faster, "warnings": list(answer.warnings),
            "recommendation": json.loads(answer.to_json())}  # the whole answer, to find out why a claim missed


def keras_best(result: dict) -> str:
    """The grid's fastest Keras setting by the stopwatch: what a loader answer is judged against."""
    return max((label for label in result["speedups"] if label != "tf.data"), key=result["speedups"].get)


def over_best(result: dict, run: dict) -> float:
    return run["stopwatch"] / result["speedups"][keras_best(result)]


def tf_data_held(result: dict, run: dict) -> bool:
    """The answer is not below tf.data within the stopwatch's noise, or the run advised tf.data."""
    tf_data = result["speedups"].get("tf.data")
    return tf_data is None or run["advises_tf_data"] or tf_data <= TF_DATA_NOISE * run["stopwatch"]


def spread(result: dict) -> float:
    """How far apart the runs' answers are by the stopwatch: the fastest over the slowest, less 1."""
    measured = [run["stopwatch"] for run in result["runs"]]
    return max(measured) / min(measured) - 1 if min(measured) else math.inf


def joined(runs: list[dict], key: str, form: str) -> str:
    return ", ".join(format(run[key], form) for run in runs)


def table(results: list[dict]) -> str:
    lines = ["| example | answers, one per run | answer / grid's best | claim error | time to answer (s) | spread "
             "of the answers | grid's best (speed-up) | rule of thumb / best | tf.data / best (runs advising it) |",
             "|---|---|---|---|---|---:|---|---|---|"]
    for r in results:
        runs, best = r["runs"], keras_best(r)
        rule = r["speedups"].get("rule of thumb", 0.0) / r["speedups"][best]
        tf_data = (f"{r['speedups']['tf.data'] / r['speedups'][best]:.2f} ({sum(run['advises_tf_data'] for run in runs)})"
                   if "tf.data" in r["speedups"] else "")
        lines.append(f"| {r['example']} | {'; '.join(run['answer'] for run in runs)} | "
                     f"{', '.join(f'{over_best(r, run):.2f}' for run in runs)} | {joined(runs, 'claim_error', '+.0%')} | "
                     f"{joined(runs, 'seconds', '.0f')} | {spread(r):.1%} | {best} ({r['speedups'][best]:.2f}x) | "
                     f"{rule:.2f} | {tf_data} |")
    return "\n".join(lines)


def goals(results: list[dict]) -> str:
    """Each goal (issues 30 and 40) with what this run measured against it."""
    runs = [run for r in results for run in r["runs"]]
    ratios = [over_best(r, run) for r in results for run in r["runs"]]
    seconds = [run["seconds"] for run in runs]
    spreads = [spread(r) for r in results]
    below_rule = sum(r["speedups"].get("rule of thumb", 0.0) > RULE_NOISE * run["stopwatch"] for r in results
                     for run in r["runs"])
    tf_data = sum(tf_data_held(r, run) for r in results for run in r["runs"])
    largest = max(abs(run["claim_error"]) for run in runs)
    kept = [(r, run) for r in results for run in r["runs"] if run["answer"] == KERAS_DEFAULTS.label()]
    wrongly_kept = [f"{r['example']} ({r['speedups'][keras_best(r)]:.2f}x)" for r, _ in kept
                    if r["speedups"][keras_best(r)] > GOALS["defaults kept below"]]
    lines = [
        f"- answer at least {GOALS['answer / best, every run']} of the grid's best in every run: "
        f"{sum(ratio >= GOALS['answer / best, every run'] for ratio in ratios)} of {len(runs)} runs; at least "
        f"{GOALS['answer / best']} in 3 of every 4: {sum(ratio >= GOALS['answer / best'] for ratio in ratios)} of "
        f"{len(runs)} (lowest {min(ratios):.2f})",
        f"- the defaults kept only where no grid setting beats them by more than "
        f"{GOALS['defaults kept below'] - 1:.0%}: {len(kept) - len(wrongly_kept)} of {len(kept)} runs that kept them"
        + (f" (not: {', '.join(wrongly_kept)})" if wrongly_kept else ""),
        f"- claim within {GOALS['claim error']:.0%} of the stopwatch: "
        f"{sum(abs(run['claim_error']) <= GOALS['claim error'] for run in runs)} of {len(runs)} runs (largest {largest:.0%})",
        median_claims(runs),
        f"- answers within {GOALS['spread']:.0%} of each other: {sum(s <= GOALS['spread'] for s in spreads)} of "
        f"{len(spreads)} examples (largest {max(spreads):.1%})",
        f"- answer not below the rule of thumb (beyond {RULE_NOISE - 1:.0%}): {len(runs) - below_rule} of {len(runs)} "
        f"runs; not below tf.data, or tf.data advised: {tf_data} of {len(runs)}",
        f"- time to an answer: median {statistics.median(seconds):.0f} s (goal {GOALS['median seconds']:.0f}), most "
        f"{max(seconds):.0f} s (goal {GOALS['most seconds']:.0f})",
    ]
    loaded = [(r, r["under_load"]) for r in results if r["under_load"]]
    if loaded:
        loaded = [(r, run, over_best(r, run)) for r, run in loaded]
        held = sum(ratio >= GOALS["under load / best"] for _, _, ratio in loaded)
        said = sum(ratio < GOALS["under load / best"] and undecided_under_load(run) for _, run, ratio in loaded)
        each = ", ".join(f"{r['example']} {run['answer']} {ratio:.2f}" for r, run, ratio in loaded)
        lines.append(f"- under a competing core, answer at least {GOALS['under load / best']} of the quiet best: "
                     f"{held} of {len(loaded)}, and {said} more whose report says the race did not decide "
                     f"({each})")
    return "\n".join(lines)


def median_claims(runs: list[dict]) -> str:
    """The claim against the stopwatch's median epochs, which an inline epoch that waits for tf.data's
    autotuner moves less than the mean (runs saved before the stopwatch kept medians are left out)."""
    errors = [run["median_claim_error"] for run in runs if run.get("median_claim_error") is not None]
    if not errors:
        return "- claim against the stopwatch's median epochs: not recorded in these runs"
    return (f"- claim within {GOALS['claim error']:.0%} of the stopwatch's median epochs: "
            f"{sum(abs(e) <= GOALS['claim error'] for e in errors)} of {len(errors)} runs "
            f"(largest {max(map(abs, errors)):.0%})")


def undecided_under_load(run: dict) -> bool:
    """The report says the busy machine kept the race from deciding: it did not settle, and it warned of
    the load (runs saved without their warnings count by the first alone)."""
    warned = "warnings" not in run or any(w.startswith("The machine was busy") for w in run["warnings"])
    return not run["settled"] and warned


def publish(results: list[dict], rounds: int, saved: list[Path], start_method: str | None = None,
            chosen: list[str] | None = None) -> None:
    """Replaces this benchmark's section of benchmarks/RESULTS.md and the README's table; a run under another
    start method than this Python's, or over ``chosen`` examples (``--examples``), has a section of its own
    and leaves the README alone, whose rows it would drop."""
    machine = probe_machine()
    body = (f"{machine.usable_cores} usable cores, Python {machine.python_version}; stopwatch: a fresh process per "
            f"setting, {rounds} interleaved rounds, the epochs after the first of one fit, speed-ups as geometric "
            f"means of per-round ratios to the defaults.\n\n{table(results)}\n\n{goals(results)}")
    runs = "; ".join(f"at commit {path.parent.name}, raw results in `{path.relative_to(ROOT)}`" for path in saved)
    under = f" --start-method {start_method}" * bool(start_method) + f" --examples {' '.join(chosen)}" * bool(chosen)
    record.write_summary_section(RESULTS_BEGIN.replace("-->", under + " -->"), RESULTS_END.replace("-->", under + " -->"), (
        f"## Truth{under}: answers against a broad grid, by a stopwatch\n\nGenerated by `python benchmarks/truth.py"
        f"{under}` ({runs}; the commit is the code a run started with; raw results are not committed).\n\n{body}"))
    if under:
        return
    readme = ROOT / "README.md"
    block = f"{README_BEGIN}\n{body}\n{README_END}"
    readme.write_text(re.sub(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), lambda _: block,
                             readme.read_text(), flags=re.DOTALL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", nargs="+", choices=EXAMPLES + WORKLOADS + ENGINE_ROWS,
                        help="these examples (or benchmarks/workloads/) only, in a section of their own (default: "
                             "every example, and the README's table)")
    parser.add_argument("--rounds", type=int, default=2, help="stopwatch rounds per setting (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="tune-loader runs per example (default 3)")
    parser.add_argument("--under-load", action="store_true",
                        help="also tune each example beside a process spinning one core (the stopwatch runs quiet)")
    parser.add_argument("--start-method", choices=("fork", "forkserver", "spawn"),
                        help="tune and time with process pools started so (its own section of RESULTS.md)")
    parser.add_argument("--from", dest="saved", type=Path, nargs="+", metavar="SAVED",
                        help="re-render the tables from saved runs instead (a later file's row replaces an earlier's)")
    args = parser.parse_args()
    chosen, args.examples = args.examples, args.examples or list(EXAMPLES)
    if args.saved:
        saved = [path.resolve() for path in args.saved]
        rows = {row["example"]: row for path in saved for row in json.loads(path.read_text())["results"]}
        results = list(rows.values())
        publish(results, len(results[0]["rates"]["inline (no pool)"]), saved, args.start_method, chosen)
        print(table(results) + "\n\n" + goals(results))
        return
    results, saved = record.run_and_save(
        "truth", args.examples, lambda row: run_example(row, args.rounds, args.runs, args.under_load, args.start_method))
    print("\n" + table(results) + "\n\n" + goals(results))
    publish(results, args.rounds, [saved], args.start_method, chosen)
    print(f"\nwrote {saved.relative_to(ROOT)}, benchmarks/RESULTS.md and the README's table")


if __name__ == "__main__":
    main()
