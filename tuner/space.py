"""The search space for the three knobs, and the configurations tried first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from probes.profiles import DatasetProfile, MachineProfile
from tuner.results import KERAS_DEFAULTS, LoaderConfig

MAX_QUEUE = 64
WORKERS_PER_CORE = 4
WAITING_WORKERS_PER_CORE = 16
BASELINE_SHARE = 0.5


DUPLICATED_DATA = (
    "with processes, tf-keras gives every worker its own copy of the generator, so each batch is produced once "
    "per worker and the model sees duplicated data"
)


@dataclass(frozen=True)
class SearchSpace:
    """workers in 1..max_workers, processes only where allowed, queue 1..64 (log).

    ``processes_excluded`` says why processes are not searched, and
    ``threads_infeasible`` why thread pools cannot run this data ("" when
    they can): such configurations are recorded as infeasible, not timed.
    """

    max_workers: int
    allow_processes: bool
    max_queue_size: int = MAX_QUEUE
    processes_excluded: str = ""
    threads_infeasible: str = ""

    @classmethod
    def for_profiles(
        cls,
        machine: MachineProfile,
        dataset: DatasetProfile,
        *,
        allow_duplicated_data: bool = False,
    ) -> SearchSpace:
        """Workers up to 4 per usable core; up to 16 per usable core for data code that waits
        (``DatasetProfile.waits``) and gives batch i on demand.

        Waiting code needs as many batches in flight as its throughput times
        its batch latency under load, and the serial probe understates that
        latency: legacy_sequence waits 20 ms per batch, yet under tf-keras 8
        threads at 66 batches/s mean 121 ms per batch, and 16 threads read
        1.09 of 8 side by side (``benchmarks/plateau.py``), where the old cap
        from the model step (1.5 x wall / step) stopped the search at 8. Not
        without bound: every thread wakes to take the GIL on the same cores.
        On 2 cores io_bound's plateau ran from 16 to 44 threads, and past it
        48 threads read 0.979 and 64 threads 0.959 of 16 side by side; 52
        threads read 0.976 of 28 over 60 rounds. A flat cap of 64 let the
        climb (``study.next_climb``) and the race's rule for waiting code
        (``study.confirmed_best``), which both lean to more threads, answer
        64 threads, 0.93 of the grid's best. A plain generator gains nothing:
        its threads take turns in next(). Processes only for a dataset that
        pickles (required by every start method but fork), and for a plain
        generator only when duplicated data is explicitly allowed.
        """
        cap = WORKERS_PER_CORE * machine.usable_cores
        if dataset.waits and dataset.kind != "generator":
            cap = WAITING_WORKERS_PER_CORE * machine.usable_cores
        if dataset.kind == "generator":
            allow = allow_duplicated_data
            excluded = "" if allow else DUPLICATED_DATA + " (pass --allow-duplicated-data to try them anyway)"
        else:
            allow = dataset.picklable
            excluded = "" if allow else f"pickling {dataset.class_name} failed ({dataset.pickle_error})"
        threads = ""
        if dataset.kind == "generator" and dataset.thread_safe is False:
            threads = (
                f"the generator is not thread-safe ({dataset.thread_safety_note}); tf-keras's thread workers all "
                "call next() on it and fail with 'Your generator is NOT thread-safe'. Fix: wrap it in an iterator whose "
                "__next__ holds a threading.Lock, or rewrite it as a Sequence (batch i from __getitem__)"
            )
        return cls(cap, allow, processes_excluded=excluded, threads_infeasible=threads)

    def infeasible(self, config: LoaderConfig) -> str:
        """Why ``config`` cannot run this data, or "" when it can."""
        if self.threads_infeasible and config.parallel and not config.use_multiprocessing:
            return self.threads_infeasible
        return ""

    def suggest(self, trial) -> LoaderConfig:
        """Asks an Optuna trial for one configuration."""
        return LoaderConfig(
            workers=trial.suggest_int("workers", 1, self.max_workers),
            use_multiprocessing=trial.suggest_categorical(
                "use_multiprocessing", [False, True] if self.allow_processes else [False]
            ),
            max_queue_size=trial.suggest_int("max_queue_size", 1, self.max_queue_size, log=True),
        )

    @staticmethod
    def params(config: LoaderConfig) -> dict:
        return {
            "workers": config.workers,
            "use_multiprocessing": config.use_multiprocessing,
            "max_queue_size": config.max_queue_size,
        }


def rule_of_thumb(machine: MachineProfile, dataset: DatasetProfile) -> LoaderConfig:
    """What people usually guess: one worker per core, processes if the code holds the GIL.

    Never processes for a plain generator: that would duplicate the data.
    """
    processes = dataset.gil_bound and dataset.picklable and dataset.kind != "generator"
    return LoaderConfig(workers=machine.usable_cores, use_multiprocessing=processes, max_queue_size=10)


def starting_configs(
    machine: MachineProfile,
    dataset: DatasetProfile,
    predicted_best: tuple[LoaderConfig, ...] = (),
    predicted: Callable[[LoaderConfig], float] | None = None,
) -> list[tuple[str, LoaderConfig]]:
    """Measured before the sampler takes over: the Keras defaults, the rule of
    thumb and the analytic model's best guesses (equivalent ones once).

    With ``predicted`` (the analytic model's epoch throughput), the defaults
    are a start only when they are among the model's guesses: the
    confirmation race times them beside the answer anyway, and recommends
    them when the answer is not significantly faster, so a trial of them
    decided nothing (it cost gil_bound and numpy_augment 2.4 and 3.3 s of
    40 to 55). The rule of thumb, which nothing else times, stays unless the
    model puts it under half of its best guess: it cannot win from there
    (the model's error at few workers was within 2% on io_bound: 2 threads
    predicted 90.8, measured 91.3).
    """
    rule = rule_of_thumb(machine, dataset)
    start_defaults = start_rule = True
    if predicted and predicted_best:
        start_defaults = any(c.equivalence_key() == KERAS_DEFAULTS.equivalence_key() for c in predicted_best)
        start_rule = predicted(rule) >= BASELINE_SHARE * predicted(predicted_best[0])
    starts = [("keras defaults", KERAS_DEFAULTS)] * start_defaults + [("rule of thumb", rule)] * start_rule
    starts += [("prediction", config) for config in predicted_best]
    unique, seen = [], set()
    for origin, config in starts:
        if config.equivalence_key() not in seen:
            seen.add(config.equivalence_key())
            unique.append((origin, config))
    return unique
