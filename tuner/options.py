"""What a run may be told: one typed object the CLI and ``recommend()`` share, its defaults written once."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tuner.errors import TuneLoaderError

# The trial process holds TensorFlow, Keras and a small model before any data (docs/failures.md).
MIN_MEMORY_BUDGET_BYTES = 2**30


@dataclass(frozen=True)
class Options:
    """How to tune; each field names its CLI flag.

    ``trials`` caps the settings screened (``--trials``); ``time_budget``
    (seconds, ``--time-budget``) bounds the whole tune, from its start to
    the answer: the screen and the race get what start-up and the probes
    leave of it, never under half (``search.schedule.Schedule``);
    ``max_memory`` (bytes, default half the available RAM) makes settings
    above it infeasible. ``window_timeout`` (``--trial-timeout``) stops a
    timed epoch that runs longer, and a step that waits that long for its
    next batch (default: ten times the epoch's expected length, at least
    30 s; a stall after max(30 s, 20 times the slowest batch)). ``load_timeout``
    bounds importing the file and making the dataset. ``quick`` answers from
    the probes and the analytic model alone. ``storage`` is an Optuna
    storage URL, or a function of the study's name that returns one (called
    once the input loaded and was probed); ``study_name`` defaults to the
    file, dataset, class and a hash of the machine. ``engine`` ("keras3",
    "tf-keras") and ``backend`` ("tensorflow", "jax", "torch") override what
    the dataset and the environment imply. ``native_threads`` searches the
    BLAS/OpenMP threads per worker where the probe saw such pools at work.
    ``allow_duplicated_data`` lets a plain generator run in processes, each
    with its own copy; ``compare_keras3`` also tunes a tf-keras Sequence as
    a Keras 3 PyDataset and reports what migrating gains. ``start_method``
    ("fork", "forkserver", "spawn") starts every process pool the trials
    time; by default what ``multiprocessing.get_start_method()`` gives here,
    which is what Keras's pool uses in the user's training.
    """

    dataset_name: str | None = None
    model_name: str | None = None
    trials: int = 24
    time_budget: float = 50.0
    max_memory: int | None = None
    window_timeout: float | None = None
    load_timeout: float = 300.0
    quick: bool = False
    storage: str | Callable[[str], str] | None = None
    study_name: str | None = None
    engine: str | None = None
    backend: str | None = None
    native_threads: bool = True
    allow_duplicated_data: bool = False
    compare_keras3: bool = False
    start_method: str | None = None

    @classmethod
    def of(cls, options: Options | None, overrides: Mapping[str, Any]) -> Options:
        """``options`` (or the defaults) with ``overrides`` applied: ``recommend(path, trials=8)`` reads as
        ``recommend(path, Options(trials=8))``. An unknown name is refused with the known ones."""
        names = {field.name for field in dataclasses.fields(cls)}
        if unknown := sorted(set(overrides) - names):
            raise TuneLoaderError(f"Unknown option(s) {', '.join(unknown)}. Expected any of: {', '.join(sorted(names))}. "
                                  f"Received: {', '.join(f'{name}={overrides[name]!r}' for name in unknown)}")
        return dataclasses.replace(options or cls(), **overrides)

    @staticmethod
    def default(name: str) -> Any:
        """The default of field ``name`` (the CLI's help texts and defaults come from here)."""
        return next(field.default for field in dataclasses.fields(Options) if field.name == name)

    def check(self) -> None:
        """Refuses a limit that cannot mean what it says, before anything starts (each names its flag)."""
        problems = [
            (self.trials < 1, f"--trials (trials) must be at least 1. Received: {self.trials}"),
            (self.time_budget < 1,
             f"--time-budget (time_budget) must be at least 1 second. Received: {self.time_budget}"),
            (self.window_timeout is not None and not self.window_timeout > 0,
             f"--trial-timeout (window_timeout) must be a positive number of seconds. Received: {self.window_timeout}"),
            (not self.load_timeout > 0,
             f"--load-timeout (load_timeout) must be a positive number of seconds. Received: {self.load_timeout}"),
            (self.max_memory is not None and self.max_memory < MIN_MEMORY_BUDGET_BYTES,
             f"--max-memory (max_memory) must be at least {MIN_MEMORY_BUDGET_BYTES / 2**30:g} GiB: the trial process "
             f"needs about that for TensorFlow, Keras and a small model before any data. Received: {self.max_memory} bytes"),
            (self.start_method is not None and self.start_method not in multiprocessing.get_all_start_methods(),
             f"--start-method (start_method) must be one of {', '.join(multiprocessing.get_all_start_methods())} "
             f"on this platform. Received: {self.start_method!r}"),
        ]
        for failed, message in problems:
            if failed:
                raise TuneLoaderError(message)
