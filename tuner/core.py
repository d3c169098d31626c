"""The ground floor: the words every layer of tune-loader speaks (a loader's setting, how a trial ended, one
timed epoch, the engines), as plain values. It imports nothing of the project's, so anything may import it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class TextEnum(str, Enum):
    """An enum whose members are their text: equal to it, printed as it, and stored as it in JSON."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class PoolKind(TextEnum):
    """How Keras makes the batches: in the training loop, or in a pool of threads or processes."""

    INLINE = "inline"
    THREADS = "threads"
    PROCESSES = "processes"


class EngineName(TextEnum):
    """The engine a dataset is tuned under (``tuner.engines.registry.ENGINES``): --engine NAME and results.json's
    "engine"."""

    KERAS3 = "keras3"
    TF_KERAS = "tf-keras"
    TORCH_DATALOADER = "torch-dataloader"
    GRAIN = "grain"


class Backend(TextEnum):
    """The Keras 3 backend ``fit`` runs on (tf-keras always runs on TensorFlow)."""

    TENSORFLOW = "tensorflow"
    JAX = "jax"
    TORCH = "torch"


class StartMethod(TextEnum):
    """How a process pool starts its workers (``multiprocessing``'s start methods)."""

    FORK = "fork"
    SPAWN = "spawn"
    FORKSERVER = "forkserver"


class Pipeline(TextEnum):
    """What makes the batches: Keras's own loader (inline or its pool), or the same batch code in a tf.data
    pipeline, an alternative the race may time beside Keras's settings."""

    KERAS = "keras"
    TF_DATA = "tf.data"


class TrialOrigin(TextEnum):
    """Why a setting was screened: the claim's reference, the broad grid, or the guess users compare with."""

    DEFAULTS = "keras defaults"
    GRID = "grid"
    RULE_OF_THUMB = "rule of thumb"
    TRAINING = "training"  # raced on the user's own epochs by tuner.fit


class TrialStatus(TextEnum):
    """How a trial ended: measured, stopped early as clearly losing, crashed or hung, or not allowed."""

    OK = "ok"
    PRUNED = "pruned"
    FAILED = "failed"
    INFEASIBLE = "infeasible"


class StopKind(TextEnum):
    """Why a trial's step was stopped before it answered, as the parent saw it (``TrialStopped.kind``)."""

    ERROR = "error"  # the child answered with an error (inside ``fit``, or the user's code raised)
    TIMEOUT = "timeout"  # the step ran past its whole limit
    STALL = "stall"  # no batch came for the stall limit
    CRASH = "crash"  # a worker died in native code, holding a batch
    DIED = "died"  # the trial process itself ended
    MEMORY = "memory"  # the process tree went over the memory budget
    THREAD_UNSAFE = "thread-unsafe"  # not run: a thread pool this data cannot run (a generator without a lock)


@dataclass(frozen=True, order=True)
class LoaderConfig:
    """A loader's pool, in Keras's three knobs, and a fourth it does not have: ``native_threads``, the
    BLAS/OpenMP threads each worker's data code may use (``threadpoolctl.threadpool_limits`` at the start of
    every batch); None leaves the libraries at their default, one thread per core.

    Other engines' knobs map onto the same pool (``tuner.engines.knobs``): ``max_queue_size`` is then the
    batches in flight, and ``persistent_workers`` keeps the workers from one epoch to the next, which
    Keras's own pool never does.
    """

    workers: int = 1
    use_multiprocessing: bool = False
    max_queue_size: int = 10
    native_threads: int | None = None
    persistent_workers: bool = False
    pipeline: Pipeline = Pipeline.KERAS

    @classmethod
    def tf_data(cls) -> LoaderConfig:
        """Not a Keras setting: the same batch code in a tf.data pipeline (map with
        ``num_parallel_calls=AUTOTUNE``, then ``prefetch(AUTOTUNE)``), timed the same way; tf.data's
        autotuner sets its parallelism, so Keras's knobs keep their defaults and mean nothing here."""
        return cls(pipeline=Pipeline.TF_DATA)

    @property
    def is_tf_data(self) -> bool:
        return self.pipeline == Pipeline.TF_DATA

    @property
    def parallel(self) -> bool:
        """Whether Keras builds a worker pool at all (else batches are made inline)."""
        return self.workers > 1 or (self.workers > 0 and self.use_multiprocessing)

    @property
    def kind(self) -> PoolKind:
        if not self.parallel:
            return PoolKind.INLINE
        return PoolKind.PROCESSES if self.use_multiprocessing else PoolKind.THREADS

    @property
    def simplicity(self) -> tuple:
        """Sort key, simplest first: fewest workers, threads before processes, the queue nearest Keras's 10.

        Among settings that measure alike the simplest costs the least memory
        and contention; a queue of 1 or 2 leaves no slack for uneven batches.
        """
        return (self.workers, self.use_multiprocessing, self.persistent_workers, self.native_threads is not None,
                abs(math.log(max(self.max_queue_size, 1) / 10)))

    @property
    def family(self) -> tuple:
        """Settings that differ only in how many batches are in flight: pool kind, native-thread limit,
        persistence."""
        return self.kind, self.native_threads, self.persistent_workers

    @property
    def effective_parallelism(self) -> int:
        """Batches in flight at once: Keras bounds pending tasks by the queue size."""
        if not self.parallel:
            return 1
        return min(self.workers, self.max_queue_size + 1)

    def equivalence_key(self) -> tuple:
        """Configurations Keras runs identically share a key: without a pool the queue is unused."""
        if self.is_tf_data:
            return ("tf.data",)
        native = () if self.native_threads is None else (("native threads", self.native_threads),)
        if not self.parallel:
            return ("inline",) + native
        return (self.workers, self.use_multiprocessing, self.max_queue_size, self.persistent_workers) + native

    @property
    def native_label(self) -> str:
        """The BLAS/OpenMP limit as a label's last words ("" for the libraries' own)."""
        if self.native_threads is None:
            return ""
        return f", {self.native_threads} BLAS/OpenMP thread" + ("s" if self.native_threads > 1 else "")

    def label(self) -> str:
        """The pool in Keras's words; each engine's knob set names its own (``knobs.*.label``)."""
        if self.is_tf_data:
            return "tf.data (AUTOTUNE)"
        native = self.native_label
        if not self.parallel:
            return "inline (no pool)" + native
        unit = "process" if self.use_multiprocessing else "thread"
        unit += "" if self.workers == 1 else ("es" if self.use_multiprocessing else "s")
        persistent = ", persistent" if self.persistent_workers else ""
        return f"{self.workers} {unit}, queue {self.max_queue_size}{persistent}" + native

    def as_kwargs(self) -> str:
        """The three Keras knobs as keyword arguments, to paste."""
        return (
            f"workers={self.workers}, use_multiprocessing={self.use_multiprocessing}, "
            f"max_queue_size={self.max_queue_size}"
        )


KERAS_DEFAULTS = LoaderConfig()
Label = Callable[[LoaderConfig], str]  # how an engine names a setting (its knob set's ``label``)


@dataclass(frozen=True)
class WindowTiming:
    """One timed epoch of ``batches`` batches (a full epoch of a window view).

    ``epoch_seconds`` runs from Keras's ``on_epoch_begin`` to ``on_epoch_end``
    (for an epoch that follows another in the same ``fit``, from that
    epoch's ``on_epoch_end``) and so includes building and tearing down the
    worker pool; several epochs of one ``fit`` are their mean (``timed_epochs``, with the spread of their
    durations in ``epoch_seconds_cv``);
    ``fixed_seconds`` is the per-epoch cost beyond ``batches / rate``: from the
    free-data pipeline probe when known (``epoch_model.with_fixed_cost``),
    else from the spacing of the later batches. ``first_batch_seconds`` runs
    from ``on_epoch_begin`` to the end of the first batch's step: no start-up
    cost can be longer (None when unknown).
    """

    batches: int
    epoch_seconds: float
    steady_batches_per_second: float
    fixed_seconds: float
    first_batch_seconds: float | None = None
    timed_epochs: int = 1  # epochs of one fit averaged into this one (``engines.common.mean_timing``)
    epoch_seconds_cv: float = 0.0  # their durations' coefficient of variation (0 for a single epoch)
    steady_from_middle: bool = False  # the rate is the slope past the start-up and before the drain

    def predicted_epoch_seconds(self, epoch_batches: int) -> float:
        return self.fixed_seconds + epoch_batches / self.steady_batches_per_second
