"""Side-by-side benchmark: is tune-loader's answer as good as an exhaustive grid, and cheaper?

For each workload, in one run on one machine:

1. the exhaustive grid (workers 1, 2, 4, 8, 16 x threads/processes x queue
   1, 4, 10, 32), each configuration timed like a tune-loader trial (two
   windows, a third when they differ by more than 3%; median) in passes over
   the whole grid, and its wall time;
2. tune-loader itself (``recommend()`` with its defaults), and its wall time;
3. a final round-robin in one trial process: the Keras defaults, the rule of
   thumb (workers = usable cores, processes if the data code holds the GIL),
   tune-loader's answer (the tf.data pipeline when its report advises switching
   to it), the grid's best and a tf.data pipeline over the same
   ``__getitem__``, one whole epoch of the dataset's length each per round
   (A B C D E, A B C D E, ...), timed raw rather than through tune-loader's
   epoch model (``Session.whole_epoch``). Ratios to the grid's best come
   with a bootstrap 95% interval.

The grid's best is re-measured in step 3 rather than taken from step 1: the
maximum of 40 noisy measurements is biased upwards (the winner's curse).

    python benchmarks/compare.py                       # every workload
    python benchmarks/compare.py --workloads io_bound  # one
    python benchmarks/compare.py --repeat 3 --workloads gil_bound   # stability of the answer
    python benchmarks/compare.py --repeat 3 --rounds 60 --workloads io_bound   # ... with narrower intervals

Writes the table to stdout and everything to benchmarks/results/compare.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes import probe_machine  # noqa: E402
from probes.serde import to_dict  # noqa: E402
from probes.stats import bootstrap_ratio_interval, paired_ratio_interval, summarize  # noqa: E402
from tuner import recommend  # noqa: E402
from tuner.epoch_model import epoch_throughputs  # noqa: E402
from tuner.isolation import TrialStopped  # noqa: E402
from tuner.recommend import fixed_coster, window_sizer  # noqa: E402
from tuner.results import KERAS_DEFAULTS, LoaderConfig  # noqa: E402
from tuner.runner import FileSource  # noqa: E402
from tuner.space import SearchSpace, rule_of_thumb  # noqa: E402
from tuner.study import StudySettings, windows_agree  # noqa: E402
from tuner.workload import RunnerMeasurer  # noqa: E402

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
STABILITY_ROUNDS = 30


def keras3_workload(name: str):
    """A Keras 3 workload's module and model, in this process: the file's ``make_model`` when it has one,
    else the small model tune-loader trains by default (the examples define only the dataset)."""
    from tuner.engines import keras3, standardize
    from tuner.userfile import import_user_file

    module = import_user_file(WORKLOADS[name])
    if hasattr(module, "make_model"):
        return module, module.make_model()
    model, _ = keras3.build_default_model(standardize(module.make_dataset()[0]))
    return module, model


class Session:
    """A trial process for one workload, sized the way tune-loader sizes its windows."""

    def __init__(self, path: Path):
        self.machine = probe_machine()
        self.measurer = RunnerMeasurer(FileSource(str(path)), memory_budget_bytes=None)
        self.measurer.window_timeout = lambda batches: 300.0
        self.measurer.start()
        self.dataset, self.model = self.measurer.probe(self.machine.usable_cores)
        self.measurer.window_size = window_sizer(self.machine, self.dataset, self.model)
        self.measurer.fixed_cost = fixed_coster(self.machine, self.dataset, self.model)
        self.measurer.epoch_batches = self.dataset.batches_per_epoch
        self.epoch = self.dataset.batches_per_epoch or self.measurer.window_size(KERAS_DEFAULTS)

    def whole_epoch(self, config: LoaderConfig) -> float:
        """Batches per second over one real epoch of the dataset's length, from its first batch.

        The raw epoch, not a short window read through tune-loader's epoch
        model: the yardstick must not share the thing it checks. Read through
        the model, 16 processes beat the defaults 1.1 to 1.3x on model_bound
        in every run, partly because the model overstated their start-up and
        so their rate (``epoch_model.with_fixed_cost``); in whole epochs they
        read 6.6 batches/s against the defaults' 8.8. Only the cost after
        ``on_epoch_end`` (tf-keras's Sequence stall) comes from the probes.
        For a generator without a length the "epoch" is one window.
        """
        (timing, _), _ = self.measurer.runner.call("window", config, self.epoch, 0,
                                                    timeout=self.measurer.window_timeout(self.epoch))
        _, after_epoch = self.measurer.fixed_cost(config)
        return self.epoch / (timing.epoch_seconds + after_epoch)

    def close(self) -> None:
        self.measurer.close()


def grid(session: Session) -> dict:
    """Every grid setting tune-loader would allow for this data (no unpicklable processes, no duplicated data).

    Timed in passes over the whole grid (every setting's first window, then
    every setting's second, then a third for those whose two disagree), so
    the machine's slow drift hits every setting alike. Timed one setting
    after another, model_bound's process settings, which came last, read 9.8
    to 10.3 batches/s against about 7.5 for threads and inline; in whole
    epochs side by side, 2 processes read 8.0 and the defaults 8.8.
    """
    space = SearchSpace.for_profiles(session.machine, session.dataset)
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
    return {"configs": [(to_dict(c), v) for c, v in results], "best": best[0], "best_first_pass": best[1]}


def final_rounds(session: Session, contenders: dict[str, LoaderConfig], rounds: int = FINAL_ROUNDS) -> list[dict[str, float]]:
    """Each round's whole-epoch throughputs by contender (one that stopped is missing from its round)."""
    timed = []
    for _ in range(rounds):
        timed.append({})
        for name, config in contenders.items():
            try:
                timed[-1][name] = session.whole_epoch(config)
            except TrialStopped as stop:
                print(f"    {name}: {stop.reason}", flush=True)
    return timed


def by_contender(timed: list[dict[str, float]], names) -> dict[str, list[float]]:
    """Each contender's epochs across the rounds, for the unpaired statistics."""
    return {name: [epochs[name] for epochs in timed if name in epochs] for name in names}


def paired(timed: list[dict[str, float]], numerator: str, denominator: str) -> tuple[float, float, float]:
    """``numerator`` over ``denominator`` from the rounds that timed both (``paired_ratio_interval``)."""
    both = [epochs for epochs in timed if numerator in epochs and denominator in epochs]
    return paired_ratio_interval([e[numerator] for e in both], [e[denominator] for e in both])


def run_workload(name: str, path: Path, rounds: int = FINAL_ROUNDS) -> dict:
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
    print(f"  tune-loader: {answer.config.label()}" + (", and advises tf.data" if answer.tf_data_is_faster else "")
          + f" in {tune_seconds:.0f} s", flush=True)

    session = Session(path)
    # When tf.data beat the recommended Keras setting in its own race, tune-loader's advice is tf.data (with code).
    advised = LoaderConfig.tf_data() if answer.tf_data_is_faster else answer.config
    contenders = {
        "keras defaults": KERAS_DEFAULTS,
        "rule of thumb": rule_of_thumb(session.machine, session.dataset),
        "tune-loader": advised,
        "grid best": grid_result["best"],
    }
    if session.dataset.kind != "generator":  # tf.data's parallel map needs batch i on demand
        contenders["tf.data AUTOTUNE"] = LoaderConfig.tf_data()
    timed = final_rounds(session, contenders, rounds)
    session.close()
    samples = by_contender(timed, contenders)
    reference = samples["grid best"]
    rows = {}
    for contender, values in samples.items():
        ratio, low, high = bootstrap_ratio_interval(values, reference) if values else (None, None, None)
        rows[contender] = {
            "config": to_dict(contenders[contender]),
            "label": contenders[contender].label(),
            "batches_per_second": to_dict(summarize(values)) if values else None,
            "ratio_to_grid_best": ratio,
            "interval": [low, high],
        }
    measured = rows["tune-loader"]["batches_per_second"]
    prediction_error = (answer.predicted_batches_per_second / measured["median"] - 1.0
                        if measured and advised == answer.config else None)  # the model does not predict tf.data
    print(f"  analytic prediction for tune-loader's Keras setting: {answer.predicted_batches_per_second:.1f} batches/s"
          + (f", {prediction_error:+.0%} off the measured median" if prediction_error is not None else ""), flush=True)
    return {
        "workload": name,
        "predicted_batches_per_second": answer.predicted_batches_per_second,
        "prediction_error": prediction_error,
        "grid_seconds": grid_seconds,
        "tune_loader_seconds": tune_seconds,
        "tuning_time_ratio": tune_seconds / grid_seconds,
        "grid": grid_result | {"best": to_dict(grid_result["best"])},
        "tune_loader_trials": len(answer.trials),
        "tune_loader_trial_log": trial_log(answer),
        "tune_loader_search_stopped_because": answer.search_stopped_because,
        # The race's medians and the rule that chose among them are in the reasons: a run at babf0a2 answered
        # 14 threads beside a 28-thread trial, and without them could not say whether the two had raced.
        "tune_loader_reasons": answer.reasons,
        # Its own race: what it chose before the confirmation, and the epochs behind the claim (None when that
        # was the defaults). Without them a run that kept the defaults could not say what the race had timed.
        "tune_loader_best_tried": to_dict(answer.best_tried),
        "tune_loader_confirmation": to_dict(answer.confirmation),
        "tune_loader_keras_setting": to_dict(answer.config),
        "tune_loader_advises_tf_data": answer.tf_data_is_faster,
        "rows": rows,
        "rounds": timed,
    }


def trial_log(answer) -> list[dict]:
    """What the search tried and why (origin: prediction, headroom, rule of thumb, sampler, climb), in order."""
    return [{"config": t.config.label(), "origin": t.origin, "status": t.status, "wall_seconds": t.wall_seconds,
             "batches_per_second": t.epoch_batches_per_second.median if t.epoch_batches_per_second else None}
            for t in answer.trials]


def stability(name: str, path: Path, repeats: int, rounds: int = STABILITY_ROUNDS) -> dict:
    """Runs tune-loader ``repeats`` times, then times the distinct answers side by side.

    Answers that are the same setting are timed once: two copies of one
    setting differ only by the measurement's noise. Run 1's answer is also
    timed a second time, as a control: how far apart the two copies read is
    this measurement's noise floor, against which the answers' spread is
    judged. ``STABILITY_ROUNDS`` epochs each: with five, two copies of one
    io_bound setting read 10 to 11% apart, and with ten 8.5% apart
    ([0.83, 1.26]), too coarse to judge a 5% goal. Ratios are paired by
    round (``paired_ratio_interval``): the machine's slow phases move every
    setting in a round together.
    """
    runs = [recommend(str(path), seed=seed) for seed in range(repeats)]
    answers = [run.config for run in runs]
    print(f"\n== stability of {name}: " + "; ".join(a.label() for a in answers), flush=True)
    distinct = list(dict.fromkeys(answers))
    session = Session(path)
    contenders = {a.label(): a for a in distinct}
    control = f"{distinct[0].label()} again (control)"
    timed = final_rounds(session, contenders | {control: distinct[0]}, rounds=rounds)
    session.close()
    samples = by_contender(timed, [*contenders, control])
    medians = {label: summarize(values).median for label, values in samples.items()}
    # The widest gap between two answers, either way round: with ratios paired by round, the answer with
    # the highest median is not always the one the others trail most.
    pairs = {(a, b): paired(timed, a, b) for a in contenders for b in contenders if a != b}
    one_answer = ((None, None), (1.0, 1.0, 1.0))
    (faster, slower), (spread, low, high) = max(pairs.items(), key=lambda item: item[1][0], default=one_answer)
    floor, floor_low, floor_high = paired(timed, control, distinct[0].label())
    for label, median in medians.items():
        print(f"  {label:40} {median:8.1f} batches/s")
    widest = f"{faster} / {slower} = {spread:.3f} [{low:.3f}, {high:.3f}]" if faster else "one answer"
    print(f"  {len(distinct)} distinct answer(s) in {repeats} runs; widest gap: {widest}; the same setting timed "
          f"twice: {floor:.3f} [{floor_low:.3f}, {floor_high:.3f}] ({rounds} interleaved epochs each; "
          "median of per-round ratios, 95% bootstrap over rounds)")
    # Each run's trials and reasons (the race's medians among them): why it answered what it did.
    return {"workload": name, "answers": [to_dict(a) for a in answers],
            "runs": [{"trials": trial_log(run), "reasons": run.reasons, "tuning_seconds": run.tuning_seconds}
                     for run in runs],
            "medians": medians, "rounds": timed,
            "widest_gap": [faster, slower], "spread": spread - 1.0, "spread_interval": [low - 1.0, high - 1.0],
            "same_setting_ratio": floor, "same_setting_interval": [floor_low, floor_high]}


def print_table(results: list[dict]) -> None:
    print("\nThroughput as a ratio to the grid's best (median of interleaved epochs, 95% bootstrap interval)")
    header = f"{'workload':15} {'contender':18} {'setting':28} {'batches/s':>10} {'ratio':>7} {'interval':>16}"
    print(header)
    print("-" * len(header))
    for result in results:
        for contender, row in result["rows"].items():
            if row["ratio_to_grid_best"] is None:
                continue
            low, high = row["interval"]
            print(
                f"{result['workload']:15} {contender:18} {row['label']:28} "
                f"{row['batches_per_second']['median']:10.1f} {row['ratio_to_grid_best']:7.2f} [{low:5.2f}, {high:5.2f}]"
            )
        print(
            f"{result['workload']:15} tuning time: tune-loader {result['tune_loader_seconds']:.0f} s "
            f"({result['tune_loader_trials']} trials) / grid {result['grid_seconds']:.0f} s "
            f"= {result['tuning_time_ratio']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=0, help="instead: rerun tune-loader this many times per workload")
    parser.add_argument("--rounds", type=int, help=f"rounds of the final round-robin (default {FINAL_ROUNDS}; "
                        f"{STABILITY_ROUNDS} with --repeat); more rounds narrow the intervals, at one epoch per contender each")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare.json")
    args = parser.parse_args()
    machine = probe_machine()
    if args.repeat:
        results = [stability(name, WORKLOADS[name], args.repeat, args.rounds or STABILITY_ROUNDS) for name in args.workloads]
    else:
        results = []
        for name in args.workloads:  # written after each workload: a failure later keeps what was measured
            results.append(run_workload(name, WORKLOADS[name], args.rounds or FINAL_ROUNDS))
            write(args.out, machine, results)
        print_table(results)
    write(args.out, machine, results)
    print(f"\nwrote {args.out}")


def write(path: Path, machine, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": to_dict(machine), "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
