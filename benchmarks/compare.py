"""Side-by-side benchmark: is tune-loader's answer as good as an exhaustive grid, and cheaper? Does its claim
hold in whole epochs?

For each workload, in one run on one machine:

1. the exhaustive grid (workers 1, 2, 4, 8, 16 x threads/processes x queue
   1, 4, 10, 32, as far as tune-loader allows them for this data), each
   setting timed like a tune-loader trial, in passes over the whole grid so
   the machine's drift hits every setting alike; and its wall time;
2. tune-loader itself (``recommend()`` with its defaults), and its wall time;
3. a final round-robin in one trial process: the Keras defaults, the rule of
   thumb (workers = usable cores, processes if the data code holds the GIL),
   tune-loader's answer (tf.data when its report advises switching), the
   grid's best and tf.data, one whole epoch of the dataset's length each per
   round, timed raw rather than through tune-loader's epoch model. Ratios to
   the grid's best come with a bootstrap 95% interval.

The grid's best is re-measured in step 3 rather than taken from step 1: the
maximum of 40 noisy measurements is biased upwards (the winner's curse).
"Claim" compares the throughput tune-loader reported for its answer with
that setting's whole epochs here.

    python benchmarks/compare.py                       # every workload
    python benchmarks/compare.py --workloads io_bound gil_bound

Writes the raw results to benchmarks/results/ (git-ignored, by machine and
commit) and its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import record  # noqa: E402
from probes import probe_machine  # noqa: E402
from probes.profiles import DataKind  # noqa: E402
from probes.serde import to_dict  # noqa: E402
from probes.stats import bootstrap_ratio_interval, summarize  # noqa: E402
from tuner import recommend  # noqa: E402
from tuner.analysis.epoch_model import epoch_throughputs  # noqa: E402
from tuner.api import Facts, configure_measurer, provenance_of  # noqa: E402
from tuner.results import KERAS_DEFAULTS, LoaderConfig  # noqa: E402
from tuner.search.measurer import TrialStopped  # noqa: E402
from tuner.search.space import SearchSpace, rule_of_thumb  # noqa: E402
from tuner.search.study import StudySettings, windows_agree  # noqa: E402
from tuner.trial.parent import TrialMeasurer  # noqa: E402
from tuner.trial.protocol import FileSource, Window  # noqa: E402

WORKLOADS = {
    "io_bound": ROOT / "examples" / "io_bound.py",
    "gil_bound": ROOT / "examples" / "gil_bound.py",
    "numpy_augment": ROOT / "examples" / "numpy_augment.py",
    "model_bound": ROOT / "benchmarks" / "workloads" / "model_bound.py",
    "legacy_sequence": ROOT / "examples" / "legacy_sequence.py",
    "legacy_generator": ROOT / "examples" / "legacy_generator.py",
}
KERAS3_WORKLOADS = ("model_bound", "numpy_augment", "gil_bound", "io_bound")
GRID_WORKERS = (1, 2, 4, 8, 16)
GRID_QUEUES = (1, 4, 10, 32)
FINAL_ROUNDS = 5
WINDOW_TIMEOUT_SECONDS = 300.0
RESULTS_BEGIN, RESULTS_END = "<!-- compare: written by benchmarks/compare.py -->", "<!-- end of compare -->"


def keras3_workload(name: str):
    """A Keras 3 workload's module and model, in this process: the file's ``make_model`` when it has one,
    else the small model tune-loader trains by default."""
    from tuner.engines.common import standardize
    from tuner.engines.keras3 import Keras3Engine
    from tuner.userfile import import_user_file

    module = import_user_file(WORKLOADS[name])
    if hasattr(module, "make_model"):
        return module, module.make_model()
    model, _ = Keras3Engine().build_default_model(standardize(module.make_dataset()[0]))
    return module, model


class Session:
    """A trial process for one workload, its windows sized the way tune-loader sizes them."""

    def __init__(self, path: Path):
        machine = probe_machine()
        source = FileSource(str(path))
        self.measurer = TrialMeasurer(source, memory_budget_bytes=None)
        self.measurer.start()
        dataset, model = self.measurer.probe(machine.usable_cores)
        loaded = self.measurer.loaded
        self.facts = Facts(machine, dataset, model, loaded.dataset_name, loaded.class_name, loaded.engine,
                           SearchSpace.for_profiles(machine, dataset, backend=loaded.backend), 0, time.monotonic(),
                           provenance_of(source), loaded.backend)
        configure_measurer(self.measurer, self.facts, WINDOW_TIMEOUT_SECONDS)
        self.epoch = self.facts.epoch_batches

    def whole_epoch(self, config: LoaderConfig) -> float:
        """Batches per second over one real epoch of the dataset's length, from its first batch: the raw
        epoch, not a short window read through the epoch model, so the yardstick does not share what it
        checks. Only the cost after ``on_epoch_end`` (tf-keras's Sequence stall) comes from the probes."""
        (timing, _), _ = self.measurer.process.call(Window(config, self.epoch, 0), timeout=WINDOW_TIMEOUT_SECONDS)
        _, after_epoch = self.facts.fixed_cost(config)
        return self.epoch / (timing.epoch_seconds + after_epoch)

    def close(self) -> None:
        self.measurer.close()


def grid(session: Session) -> dict:
    """Every grid setting tune-loader would allow for this data, timed in passes over the whole grid: every
    setting's first window, then every second, then a third for those whose two disagree."""
    space = session.facts.space
    kinds = (False, True) if space.allow_processes else (False,)
    candidates = [LoaderConfig(w, p, q) for p in kinds for w in GRID_WORKERS for q in GRID_QUEUES]
    configs = [c for c in candidates if not space.infeasible(c)]
    windows = {config: [] for config in configs}
    stopped: set[LoaderConfig] = set()
    trial = StudySettings(epoch_batches=session.epoch)  # windows per setting exactly as a tune-loader trial
    for index in range(trial.windows_per_trial):
        for config in configs:
            done = len(windows[config]) >= trial.min_windows_per_trial and windows_agree(windows[config], trial)
            if config in stopped or done:
                continue
            try:
                windows[config].append(session.measurer.measure(config, index).timing)
            except TrialStopped as stop:
                stopped.add(config)
                print(f"    grid {config.label()}: {stop.reason}", flush=True)
    results = [(config, None if config in stopped else epoch_throughputs(windows[config], session.epoch).median)
               for config in configs]
    best = max((r for r in results if r[1] is not None), key=lambda r: r[1])
    return {"configs": [(to_dict(c), v) for c, v in results], "best": best[0]}


def final_rounds(session: Session, contenders: dict[str, LoaderConfig], rounds: int) -> dict[str, list[float]]:
    """Each contender's whole-epoch throughputs, round-robin (one that stopped misses its round)."""
    timed = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, config in contenders.items():
            try:
                timed[name].append(session.whole_epoch(config))
            except TrialStopped as stop:
                print(f"    {name}: {stop.reason}", flush=True)
    return timed


def run_workload(name: str, path: Path, rounds: int) -> dict:
    print(f"\n== {name}", flush=True)
    began = time.monotonic()
    session = Session(path)
    grid_result = grid(session)
    grid_seconds = time.monotonic() - began
    session.close()
    print(f"  grid: best {grid_result['best'].label()} in {grid_seconds:.0f} s", flush=True)

    began = time.monotonic()
    answer = recommend(str(path))
    tune_seconds = time.monotonic() - began
    advised = LoaderConfig.tf_data() if answer.tf_data_is_faster else answer.config
    print(f"  tune-loader: {advised.label()} in {tune_seconds:.0f} s", flush=True)

    session = Session(path)
    contenders = {"keras defaults": KERAS_DEFAULTS, "rule of thumb": rule_of_thumb(session.facts.machine,
                                                                                  session.facts.dataset),
                  "tune-loader": advised, "grid best": grid_result["best"]}
    if session.facts.dataset.kind != DataKind.GENERATOR:  # tf.data's parallel map needs batch i on demand
        contenders["tf.data AUTOTUNE"] = LoaderConfig.tf_data()
    timed = final_rounds(session, contenders, rounds)
    session.close()
    rows = {}
    for contender, values in timed.items():
        ratio, low, high = bootstrap_ratio_interval(values, timed["grid best"]) if values else (None, None, None)
        rows[contender] = {"label": contenders[contender].label(), "ratio_to_grid_best": ratio, "interval": [low, high],
                           "batches_per_second": to_dict(summarize(values)) if values else None}
    claimed = answer.recommended_batches_per_second
    measured = rows["tune-loader"]["batches_per_second"]
    claim = claimed.median / measured["median"] if claimed and measured and advised == answer.config else None
    return {"workload": name, "grid_seconds": grid_seconds, "tune_loader_seconds": tune_seconds,
            "tuning_time_ratio": tune_seconds / grid_seconds, "claim_over_whole_epochs": claim,
            "predicted_over_whole_epochs": (answer.predicted_batches_per_second / measured["median"]
                                            if measured and advised == answer.config else None),
            "grid": grid_result | {"best": to_dict(grid_result["best"])}, "tune_loader_trials": len(answer.trials),
            "tune_loader_reasons": answer.reasons, "tune_loader_stopped_because": answer.search_stopped_because,
            "rows": rows, "rounds": timed}


def table(results: list[dict]) -> str:
    """The results as a Markdown table: each contender's ratio to the grid's best, with its interval."""
    lines = ["| workload | contender | setting | batches/s | ratio to grid's best [95% interval] |",
             "|---|---|---|---:|---|"]
    for result in results:
        for contender, row in result["rows"].items():
            if row["ratio_to_grid_best"] is not None:
                low, high = row["interval"]
                lines.append(f"| {result['workload']} | {contender} | {row['label']} | "
                             f"{row['batches_per_second']['median']:.1f} | {row['ratio_to_grid_best']:.2f} "
                             f"[{low:.2f}, {high:.2f}] |")
    lines += ["", "| workload | tuning time / grid's | claimed / whole epochs | trials |", "|---|---:|---:|---:|"]
    for result in results:
        claim = result["claim_over_whole_epochs"]
        lines.append(f"| {result['workload']} | {result['tune_loader_seconds']:.0f} s / {result['grid_seconds']:.0f} s "
                     f"= {result['tuning_time_ratio']:.2f} | {'n/a' if claim is None else f'{claim:.2f}'} | "
                     f"{result['tune_loader_trials']} |")
    return "\n".join(lines)


def publish(results: list[dict], rounds: int, saved: Path) -> None:
    """Replaces this benchmark's section of benchmarks/RESULTS.md (the README shows the truth benchmark's)."""
    machine = probe_machine()
    context = (f"{machine.usable_cores} usable cores, Python {machine.python_version}, "
               + ", ".join(f"{name} {version}" for name, version in machine.package_versions.items())
               + f"; {rounds} whole epochs per contender, interleaved")
    record.write_summary_section(RESULTS_BEGIN, RESULTS_END, (
        f"## Against an exhaustive grid\n\nGenerated by `{' '.join(['python'] + sys.argv)}` at commit "
        f"{saved.parent.name} (the code the run started with) on {time.strftime('%Y-%m-%d')}; raw results in "
        f"`{saved.relative_to(ROOT)}` (not committed).\n\n{context}.\n\n{table(results)}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=FINAL_ROUNDS, help="whole epochs per contender in the final "
                        f"round-robin (default {FINAL_ROUNDS}); more rounds narrow the intervals")
    args = parser.parse_args()
    results, saved = record.run_and_save("compare", args.workloads,
                                         lambda name: run_workload(name, WORKLOADS[name], args.rounds))
    print("\n" + table(results))
    publish(results, args.rounds, saved)
    print(f"\nwrote {saved.relative_to(ROOT)} and benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
