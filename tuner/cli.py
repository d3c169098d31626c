"""``tune-loader my_gen.py``: tune, print the answer, write the report."""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tuner import engines
from tuner.core import Label, LoaderConfig
from tuner.engines import registry
from tuner.errors import TuneLoaderError
from tuner.options import Options
from tuner.outdir import OutputFolder
from tuner.results import Recommendation, TrialResult
from tuner.version import VERSION

EXIT_USER_ERROR = 2
UNWRAPPED_WIDTH = 10_000
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # what timeout, systemd, Docker and a closed terminal send
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``8G``, ``512MiB``, ``1.5GB`` or a plain number of bytes (powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size like 4G or 512M. Received: {text!r}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** ("kmgt".index(unit.lower()) + 1 if unit else 0))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tune-loader",
        description="Measure real Keras epochs and recommend workers, use_multiprocessing and max_queue_size.",
    )
    parser.add_argument("--version", action="version", version=f"tune-loader {VERSION}")
    parser.add_argument("file", help="Python file defining make_dataset() (or a PyDataset), optionally make_model()")
    parser.add_argument("--dataset", metavar="NAME", help="attribute of FILE to tune when it has several")
    parser.add_argument("--model", metavar="NAME", help="attribute of FILE that builds the compiled model")
    trials, budget, load = (Options.default(name) for name in ("trials", "time_budget", "load_timeout"))
    parser.add_argument("--trials", type=int, default=trials, help=f"most settings to screen (default {trials})")
    parser.add_argument("--time-budget", type=float, default=budget, metavar="SECONDS",
                        help=f"time for the whole tune, start-up and probes included; the screen and the race "
                             f"get what those leave, at least half (default {budget:g})")
    parser.add_argument("--max-memory", type=parse_size, metavar="SIZE",
                        help="memory budget for the process tree, e.g. 4G (default: half the available RAM)")
    parser.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                        help="stop a timed epoch after this long (default: 10x its expected length, at least 30 s)")
    parser.add_argument("--load-timeout", type=float, default=load, metavar="SECONDS",
                        help="stop any step before the first trial after this long: importing FILE, making the "
                        f"dataset, the warm-up epoch, the probes (default {load:g})")
    parser.add_argument("--out", type=Path, metavar="FOLDER",
                        help="where report.html, results.json, trials.csv, windows.csv and study.db go (default tune-loader-out/FILE); "
                        "one run at a time, and an earlier run's files move to FOLDER/previous/TIME/")
    parser.add_argument("--resume", action="store_true", help="continue the study saved in FOLDER/study.db "
                        "(or in --storage)")
    parser.add_argument("--storage", metavar="URL", help="keep the study in this Optuna storage instead of "
                        "FOLDER/study.db: any RDB URL, e.g. postgresql+psycopg://user@host/db; several machines "
                        "can share one, each with its own study")
    parser.add_argument("--study-name", metavar="NAME", help="the study's name (default: file, dataset, class "
                        "and a hash of this machine)")
    parser.add_argument("--quick", action="store_true",
                        help="answer in seconds from the probes and the analytic model alone: a prediction, not a measurement")
    parser.add_argument("--engine", choices=registry.NAMES,
                        help="engine to tune under (default: what the dataset is: PyDataset -> keras3, "
                        "tf_keras Sequence or generator -> tf-keras, torch DataLoader -> torch-dataloader)")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                        help="the Keras 3 backend to time under (default: the one Keras loads here, from "
                        "KERAS_BACKEND or ~/.keras/keras.json); under jax processes are not tried")
    parser.add_argument("--no-native-threads", dest="native_threads", action="store_false",
                        help="do not search BLAS/OpenMP threads per worker (the fourth knob): the three Keras knobs only")
    parser.add_argument("--allow-duplicated-data", action="store_true",
                        help="let a plain generator run in processes, each with its own copy (duplicates batches)")
    parser.add_argument("--compare-keras3", action="store_true",
                        help="for a tf-keras Sequence, also tune it as a Keras 3 PyDataset and compare")
    parser.add_argument("--start-method", choices=("fork", "forkserver", "spawn"),
                        help="how process pools start in your training (default: this Python's, "
                             f"{multiprocessing.get_start_method()}); every process pool is timed so")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress; print one line: the settings and their speed-up over the defaults")
    parser.add_argument("--json", action="store_true", help="print results.json to stdout instead of tables "
                        "(progress still goes to stderr)")
    return parser


class _Stopped(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C raises KeyboardInterrupt: on the way out the
    trial process group is killed, and the measured trials stay in the study."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame) -> None:
    raise _Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return _compare(argv[1:])
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, quiet=args.quiet)  # progress; stdout carries only the result
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS}
    kept_in = "--storage" if args.storage else "study.db"
    resume_hint = f"Measured trials are kept in {kept_in}; rerun with --resume to continue."
    try:
        recommendation, folder = _run(args, console)
    except TuneLoaderError as error:
        return _user_error(error)
    except KeyboardInterrupt:
        Console(stderr=True).print(f"Interrupted. {resume_hint}")
        return 130
    except _Stopped as stop:
        Console(stderr=True).print(f"Stopped by {signal.Signals(stop.signum).name}. {resume_hint}")
        return 128 + stop.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if args.json:
        print(recommendation.to_json())
    elif args.quiet:
        print(one_line(recommendation))
    else:
        print_summary(_result_console(), recommendation, folder, args.storage)
    return 0


def _compare(argv: list[str]) -> int:
    """``tune-loader compare OLD.json NEW.json``: user errors end as the tuning command's do."""
    from tuner import compare

    try:
        return compare.main(argv)
    except TuneLoaderError as error:
        return _user_error(error)


def _user_error(error: TuneLoaderError) -> int:
    """One line on stderr, no traceback, exit code 2."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", markup=True, highlight=False, soft_wrap=True)
    return EXIT_USER_ERROR


def _result_console() -> Console:
    """At a terminal, its width; piped to a file or another program, lines are never wrapped."""
    console = Console()
    return console if console.is_terminal else Console(width=UNWRAPPED_WIDTH, soft_wrap=True)


def one_line(r: Recommendation) -> str:
    """--quiet's whole output: the settings and what they measured against the defaults."""
    from reports.summary import speedup_text

    return f"{r.settings_text()}: {speedup_text(r)}"


def _run(args, console: Console) -> tuple[Recommendation, Path]:
    from reports import write_reports
    from tuner.api import recommend
    from tuner.engines import backend as backends

    path = Path(args.file)
    if not path.is_file():
        raise TuneLoaderError(
            f"No such file: {path}. Expected a Python file that defines make_dataset() or a keras.utils.PyDataset. "
            f"Received: file={args.file}"
        )
    options = options_of(args)
    options.check()
    backends.configured(args.backend)  # a backend that cannot train, or is not installed, fails before the lock
    with OutputFolder.claim(args.out or Path("tune-loader-out") / path.stem) as folder:
        if folder.took_over_from:
            console.print(f"[dim]•[/] {escape(str(folder.path))} was locked by a run that is gone "
                          f"({escape(folder.took_over_from)}); this run takes it over.")
        fresh_start = _FreshStart(folder, console, keep=not args.resume)
        storage = _study_storage(args, folder, fresh_start)
        with _LiveProgress(console) as progress:
            recommendation = recommend(path, options=dataclasses.replace(options, storage=storage), progress=progress)
        fresh_start()  # --quick never opens the study, but its report replaces the old one
        write_reports(recommendation, folder.path)
    return recommendation, folder.path


def options_of(args: argparse.Namespace) -> Options:
    """The parsed flags as the options ``recommend()`` takes (the study's storage is added once the folder
    is claimed)."""
    return Options(dataset_name=args.dataset, model_name=args.model, trials=args.trials, time_budget=args.time_budget,
                   max_memory=args.max_memory, window_timeout=args.trial_timeout, load_timeout=args.load_timeout,
                   quick=args.quick, study_name=args.study_name, engine=args.engine, backend=args.backend,
                   native_threads=args.native_threads, allow_duplicated_data=args.allow_duplicated_data,
                   compare_keras3=args.compare_keras3, start_method=args.start_method)


def _study_storage(args, folder: OutputFolder, fresh_start: _FreshStart) -> Callable[[str], str]:
    """Where the study goes, as a function of its name that ``recommend`` calls once the input proved good:
    ``FOLDER/study.db``, or ``--storage`` (opened here, so a bad URL fails before TensorFlow starts). A study
    of that name already in ``--storage`` is continued only with ``--resume``, never replaced."""
    if not args.storage:
        database = folder.path / "study.db"
        if args.resume and database.exists() and not os.access(database, os.W_OK):
            raise TuneLoaderError(f"--resume needs to write {database}, which is read-only. Fix: make it writable "
                                  f"(chmod u+w), or drop --resume to start a new study. Received: --out {folder.path}")

        def local(name: str) -> str:
            fresh_start()
            return f"sqlite:///{database.resolve()}"

        return local
    existing = _study_names(args.storage)

    def shared(name: str) -> str:
        if name in existing and not args.resume:
            raise TuneLoaderError(f"The study {name} already exists in --storage. Fix: pass --resume to continue "
                                  f"it, or --study-name NAME to start another. Received: --storage {args.storage}")
        fresh_start()  # the report files in FOLDER still move aside
        return args.storage

    return shared


def _study_names(url: str) -> set[str]:
    import optuna

    try:
        return {study.study_name for study in optuna.get_all_study_summaries(url, include_best_trial=False)}
    except Exception as error:  # SQLAlchemy and its drivers: a bad URL, a server down, a driver not installed
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise TuneLoaderError(f"Cannot open --storage ({type(error).__name__}: {first}). Expected an Optuna "
                              "storage URL such as postgresql+psycopg://user@host/db or sqlite:///path/study.db. "
                              f"Received: --storage {url}") from None


class _FreshStart:
    """Moves an earlier run's results aside, once, when this run is about to write its own: only after the
    file, the dataset and the model proved good, so a run that fails early destroys nothing."""

    def __init__(self, folder: OutputFolder, console: Console, keep: bool):
        self.folder, self.console, self.pending = folder, console, keep

    def __call__(self) -> None:
        if self.pending and (kept := self.folder.keep_previous()):
            self.console.print(f"[dim]•[/] The previous run's results were moved to {escape(str(kept))}")
        self.pending = False


class _LiveProgress:
    """A rich progress line: during each stage its elapsed time, during the search trial k of n, the current
    best and the budget left."""

    def __init__(self, console: Console):
        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[budget]}"),
            console=console,
            transient=True,
        )
        self.task = None
        self.time_budget = 0.0
        self.search_started = 0.0
        self.trials = 0
        self.label: Label = LoaderConfig.label

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def stage(self, text: str) -> None:
        """Prints the stage and shows it, with its elapsed time, until the next one starts."""
        self.console.print(f"[dim]•[/] {escape(text)}")
        self._replace_task(escape(_shorten(text)), total=None)

    def searching(self, trials: int, time_budget: float, label: Label) -> None:
        self.search_started, self.time_budget, self.trials, self.label = time.monotonic(), time_budget, trials, label
        self._replace_task("screen", total=trials, count=f"0/{trials}", budget=f"budget {time_budget:.0f} s")

    def race_round(self, number: int, leader: str, racing: int) -> None:
        """One line per race round: the leader so far and how many settings still race."""
        left = max(0.0, self.time_budget - (time.monotonic() - self.search_started))
        self.console.print(f"  round {number:>2}: leading {leader}, {racing} still racing", highlight=False,
                           markup=False, soft_wrap=True)
        self._replace_task("race", total=None, count=f"round {number}", best=leader, budget=f"budget {left:.0f} s left")

    def _replace_task(self, description: str, total: int | None, **fields) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(description, total=total, **{"count": "", "best": "", "budget": "", **fields})

    def trial(self, result: TrialResult, measured: int, best: TrialResult | None) -> None:
        rate = result.epoch_batches_per_second
        value = f"{rate.median:.1f} batches/s" if rate else result.reason  # in full: it names the line
        if rate and result.predicted_batches_per_second:
            value += f" (predicted {result.predicted_batches_per_second:.1f})"
        self.console.print(f"  screen {result.number:>2} {self.label(result.config):<26} {result.status:<10} {value}", highlight=False, markup=False, soft_wrap=True)
        leader = f"best {best.epoch_batches_per_second.median:.1f} b/s ({self.label(best.config)})" if best else ""
        left = max(0.0, self.time_budget - (time.monotonic() - self.search_started))
        self.bar.update(self.task, completed=measured, count=f"{measured}/{self.trials}", best=leader,
                        budget=f"budget {left:.0f} s left")


def _shorten(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_summary(console: Console, r: Recommendation, folder: Path, storage: str | None = None) -> None:
    from reports.summary import headline, summary_rows, trained_on

    title = f"tune-loader: {r.dataset.class_name} ({trained_on(r)}, {r.dataset.kind})" + (
        "" if r.measured else " (PREDICTION, nothing timed: --quick)"
    )
    table = Table(title=Text(title), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    label, _, setting = headline(r).partition(": ")
    for row_label, value in [(label, setting)] + [(row.label, row.value) for row in summary_rows(r)]:
        _add_row(table, row_label, value)
    console.print(table)
    for reason in r.reasons:
        console.print(f"• {reason}", highlight=False, markup=False)
    for warning in r.warnings:
        console.print(Text(f"! {warning}", style="yellow"))
    for line in r.other_machines:
        console.print(f"• {line}", highlight=False, markup=False)
    _print_code(console, r)
    console.print(f"\nReport: {folder / 'report.html'}  (results.json, trials.csv, windows.csv beside it)")
    storage = storage or ((folder / "study.db").exists() and f"sqlite:///{(folder / 'study.db').resolve()}")
    if r.measured and storage:
        console.print(f"Study:  optuna-dashboard {storage}", soft_wrap=True, highlight=False, markup=False)


def _print_code(console: Console, r: Recommendation) -> None:
    """The settings as code to paste, for the Keras the data is written for, and tf.data when it won."""
    for block in engines.code_blocks(r):
        if not block.brief:
            continue
        console.print(f"\n{block.title}:")
        console.print(block.code, highlight=False, markup=False, soft_wrap=True)
        if block.after:
            console.print(f"    {block.after}", highlight=False, markup=False, soft_wrap=True)


def _add_row(table: Table, label: str, value: str) -> None:
    """A summary row whose value is plain text: values carry the user's names, error messages and
    [low, high] intervals, and rich would read "[uid]" in one as markup and drop it."""
    table.add_row(label, Text(value))




if __name__ == "__main__":
    sys.exit(main())
