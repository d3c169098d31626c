"""The search space for the three knobs (and the fourth, native threads per worker): what may be tried."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from probes.profiles import DataKind, DatasetProfile, MachineProfile, ModelProfile
from tuner.core import Backend, LoaderConfig, PoolKind, StartMethod
from tuner.engines import backend as backend_rules
from tuner.engines.knobs import KERAS_KNOBS, MAX_QUEUE, KnobSet, optuna_params
from tuner.measure.predict import START_OUTWEIGHS_EPOCHS, inline_epoch_seconds, start_outweighs_epoch
from tuner.outcomes import PoolsNotTried

WORKERS_PER_CORE = 4
WAITING_WORKERS_PER_CORE = 16

DUPLICATED_DATA = (
    "with processes, tf-keras gives every worker its own copy of the generator, so each batch is produced once "
    "per worker and the model sees duplicated data"
)


@dataclass(frozen=True)
class SearchSpace:
    """workers in 1..max_workers, processes only where allowed, queue 1..64 (log), in ``knobs``'s terms.

    ``processes_excluded`` says why processes are not searched, and
    ``threads_infeasible`` why thread pools cannot run this data (None when
    they can): such settings are recorded as infeasible, not timed.
    ``native_threads`` holds the limits searched for the data code's BLAS
    and OpenMP pools besides their default (empty: the knob is not searched).
    """

    max_workers: int
    allow_processes: bool
    max_queue_size: int = MAX_QUEUE
    processes_excluded: str | None = None
    threads_infeasible: str | None = None
    native_threads: tuple[int, ...] = ()
    knobs: KnobSet = KERAS_KNOBS

    @classmethod
    def for_profiles(cls, machine: MachineProfile, dataset: DatasetProfile, *,
                     allow_duplicated_data: bool = False, backend: Backend = Backend.TENSORFLOW,
                     search_native_threads: bool = True, knobs: KnobSet = KERAS_KNOBS,
                     model: ModelProfile | None = None) -> SearchSpace:
        """Workers up to 4 per usable core, or 16 per core for data code that waits and gives batch i on
        demand.

        Waiting code needs as many batches in flight as its throughput times
        its batch latency under load, which the serial probe understates; but
        every thread wakes to take the GIL on the same cores, so past a
        plateau more threads lose a little (docs/search.md). A plain
        generator gains nothing from more: its threads take turns in next().
        Processes only for a dataset that pickles (every start method but
        fork needs it), and for a plain generator only when duplicated data
        is explicitly allowed; never under a backend that forking endangers
        (``engines.backend.processes_excluded``); and, given the ``model``, not
        for an engine whose pools start at every epoch when a fresh worker's
        start outweighs a whole inline epoch (``predict.start_outweighs_epoch``;
        the probes then time no process pool either). Each reason ends with its fix.
        Native threads per worker are searched when the probe saw the data
        code's pools in use (``native_limits``).
        """
        generator = dataset.kind == DataKind.GENERATOR
        per_core = WAITING_WORKERS_PER_CORE if dataset.waits and not generator else WORKERS_PER_CORE
        if generator and machine.start_method != StartMethod.FORK:
            allow, excluded = False, (f"a plain generator cannot be sent to a worker process started by "
                                      f"{machine.start_method}, as your training starts them (--start-method)")
        elif generator:
            allow = allow_duplicated_data
            excluded = None if allow else DUPLICATED_DATA + " (pass --allow-duplicated-data to try them anyway)"
        else:
            allow = dataset.picklable or (knobs.forked_workers_inherit_data and machine.start_method == StartMethod.FORK)
            excluded = None if allow else (
                f"pickling {dataset.class_name} failed ({dataset.pickle_error}). Make it picklable (no open files, "
                "locks or lambdas as attributes) to let tune-loader try processes"
                + (f"; under {machine.start_method} every worker is sent it by pickle at every epoch start, so "
                   "processes cannot run it in your training either" if machine.start_method != StartMethod.FORK else ""))
        if allow and dataset.start_cost and dataset.start_cost.error:
            allow, excluded = False, (f"a worker started by {machine.start_method}, as your training starts them, "
                                      f"could not unpickle {dataset.class_name}: {dataset.start_cost.error}. Fix: "
                                      "define the class in a module that the workers can import")
        if allow and model and not knobs.persistent_pools and start_outweighs_epoch(dataset, model):
            allow, excluded = False, _start_outweighs_text(dataset, model, knobs)
        if unsafe := backend_rules.processes_excluded(backend, machine.start_method):
            allow, excluded = False, unsafe
        threads = None
        if generator and dataset.thread_safe is False:
            threads = (
                f"the generator is not thread-safe ({dataset.thread_safety_note}); tf-keras's thread workers all "
                "call next() on it and fail with 'Your generator is NOT thread-safe'. Fix: wrap it in an iterator whose "
                "__next__ holds a threading.Lock, or rewrite it as a Sequence (batch i from __getitem__)"
            )
        native = native_limits(machine, dataset) if search_native_threads else ()
        return cls(per_core * machine.usable_cores, allow, processes_excluded=excluded, threads_infeasible=threads,
                   native_threads=native, knobs=knobs)

    @property
    def not_tried(self) -> PoolsNotTried:
        """Why processes were not searched and thread pools not run, for the advice."""
        return PoolsNotTried(self.processes_excluded, self.threads_infeasible)

    @property
    def pool_kinds(self) -> tuple[PoolKind, ...]:
        """The pools the engine has and this data may run in: thread pools the data cannot run are still
        listed (``infeasible`` records them without running)."""
        return tuple(kind for kind in self.knobs.pool_kinds
                     if kind == PoolKind.THREADS or self.allow_processes)

    @property
    def allows_pools(self) -> bool:
        kinds = self.pool_kinds
        return PoolKind.PROCESSES in kinds or (PoolKind.THREADS in kinds and not self.threads_infeasible)

    def allows(self, config: LoaderConfig) -> bool:
        """Whether the search may suggest ``config`` (a start the space excludes is not enqueued)."""
        native = config.native_threads is None or config.native_threads in self.native_threads
        return (config.workers <= self.max_workers and native
                and (self.allow_processes or not config.use_multiprocessing))

    def infeasible(self, config: LoaderConfig) -> str | None:
        """Why ``config`` cannot run this data (a thread pool that a generator without a lock cannot run), or
        None when it can."""
        if self.threads_infeasible and config.parallel and not config.use_multiprocessing:
            return self.threads_infeasible
        return None

    def grid(self) -> list[LoaderConfig]:
        """Every setting the analytic model ranks: inline, then each allowed pool kind by workers and queue."""
        kinds = tuple(k for k in self.pool_kinds if k != PoolKind.THREADS or not self.threads_infeasible)
        return [LoaderConfig()] + self.knobs.model_grid(self.max_workers, kinds)

    def suggest(self, trial) -> LoaderConfig:
        """Asks an Optuna trial for one setting (native threads as an int, 0 for the libraries' default)."""
        native = trial.suggest_categorical("native_threads", [0, *self.native_threads]) if self.native_threads else 0
        config = self.knobs.suggest(trial, self.max_workers, self.pool_kinds)
        return dataclasses.replace(config, native_threads=native or None)

    def params(self, config: LoaderConfig) -> dict:
        """``config`` as the Optuna parameters ``suggest`` asks for (an enqueued trial must fix them all)."""
        params = optuna_params(self.knobs, config)
        if self.native_threads:
            params["native_threads"] = config.native_threads or 0
        return params

    def config_of(self, params: dict) -> LoaderConfig | None:
        """The setting a stored trial's parameters describe (None: not this engine's knobs)."""
        if not {knob.name for knob in self.knobs.knobs} <= set(params):
            return None
        return dataclasses.replace(self.knobs.config_of(params), native_threads=params.get("native_threads") or None)


def _start_outweighs_text(dataset: DatasetProfile, model: ModelProfile, knobs: KnobSet) -> str:
    cost, epoch = dataset.start_cost, inline_epoch_seconds(dataset, model)
    return (f"under {cost.method}, as your training starts them, a process worker takes "
            f"{cost.per_worker_seconds:.1f} s to start, at every epoch, more than {START_OUTWEIGHS_EPOCHS:.0f}x a "
            f"whole epoch made inline (about {epoch:.2f} s for {dataset.batches_per_epoch} batches), so a pool "
            f"started at every epoch cannot beat inline. Fixes: fewer, longer epochs; or {knobs.pool_start.fixes}")


def native_limits(machine: MachineProfile, dataset: DatasetProfile) -> tuple[int, ...]:
    """The native-thread limits worth timing: one thread, and half the cores on a machine with four or more
    (two workers' share); none when the probe saw no pool in use (``NativePools.in_use``)."""
    if dataset.native is None or not dataset.native.in_use:
        return ()
    half = machine.usable_cores // 2
    return (1,) + ((half,) if 1 < half < dataset.native.default_threads else ())


def rule_of_thumb(machine: MachineProfile, dataset: DatasetProfile, knobs: KnobSet = KERAS_KNOBS) -> LoaderConfig:
    """What people usually guess: one worker per core, processes if the code holds the GIL.

    Never processes for a plain generator: that would duplicate the data.
    """
    processes = dataset.gil_bound and dataset.picklable and dataset.kind != DataKind.GENERATOR
    return knobs.rule_of_thumb(machine.usable_cores, processes)
