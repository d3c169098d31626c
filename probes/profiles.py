"""What the probes measure: the machine, the user's data code and the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.core import PoolKind, StartMethod, TextEnum

WAITING_CPU_FRACTION = 0.3
NATIVE_PARALLEL_CPU = 1.15  # process CPU over wall of a batch: its native threads ran at once
NATIVE_TIME_CHANGE = 0.10  # one native thread changed the batch time by this share


class DataKind(TextEnum):
    """What the user's data code is, as Keras sees it."""

    PYDATASET = "pydataset"
    SEQUENCE = "sequence"
    GENERATOR = "generator"
    SEQUENCE_AS_PYDATASET = "sequence as pydataset"  # a tf-keras Sequence wrapped to run under Keras 3
    DATALOADER = "dataloader"  # a torch DataLoader, which Keras 3's fit takes under every backend
    GRAIN = "grain"  # a Grain MapDataset or IterDataset, which Keras 3's fit takes under every backend


@dataclass(frozen=True)
class MachineProfile:
    """The resources this process may really use, and the software versions.

    ``usable_cores`` honours CPU affinity and a cgroup ``cpu.max`` quota, so
    it can be smaller than ``logical_cores`` (``os.cpu_count()``) in a
    container. ``memory_limit_bytes`` is the cgroup ``memory.max`` (None when
    unlimited).
    """

    logical_cores: int
    affinity_cores: int
    cgroup_cpu_quota: float | None
    usable_cores: int
    memory_total_bytes: int
    memory_available_bytes: int
    memory_limit_bytes: int | None
    python_version: str
    platform: str
    start_method: StartMethod
    package_versions: dict[str, str]
    cpu_model: str = "unknown CPU"

    @property
    def fingerprint(self) -> str:
        """What tells one machine from another in a shared report or study: CPU, cores, RAM."""
        return (f"{self.cpu_model}, {self.usable_cores} usable of {self.logical_cores} cores, "
                f"{self.memory_total_bytes / 2**30:.0f} GiB RAM")

    @property
    def memory_usable_bytes(self) -> int:
        """Available RAM, capped by the cgroup limit when there is one."""
        if self.memory_limit_bytes is None:
            return self.memory_available_bytes
        return min(self.memory_available_bytes, self.memory_limit_bytes)


@dataclass(frozen=True)
class Spread:
    """A median with the spread it came from and the count it rests on."""

    median: float
    mad: float
    minimum: float
    maximum: float
    count: int


@dataclass(frozen=True)
class NativePools:
    """The BLAS/OpenMP pools (threadpoolctl) with more than one thread while the data code ran, and its
    batches' median wall and whole-process CPU seconds with the pools at that size and at one thread."""

    pools: tuple[str, ...]
    default_threads: int
    default_seconds: float
    default_cpu_seconds: float
    one_thread_seconds: float
    one_thread_cpu_seconds: float
    batches: int  # per side

    @property
    def in_use(self) -> bool:
        """The batches keep more than one core busy at the default size (their native threads run at once),
        or one thread changes their time by 10% or more: then the limit may matter, and is searched."""
        parallel = self.default_cpu_seconds / max(self.default_seconds, 1e-9) >= NATIVE_PARALLEL_CPU
        return parallel or abs(self.one_thread_seconds / max(self.default_seconds, 1e-9) - 1.0) >= NATIVE_TIME_CHANGE


@dataclass(frozen=True)
class StartCost:
    """What each worker of a process pool costs at every epoch start under a start method that starts a
    fresh interpreter (forkserver, spawn), beyond a forked one: Keras builds a new pool every epoch, and
    each worker is sent the dataset.

    ``worker_seconds`` is a fresh worker until it runs code, ``fork_worker_seconds`` the same under fork
    (0 where fork does not exist), ``keras_seconds`` the worker importing Keras; ``pickle_seconds`` and
    ``pickle_bytes`` are the dataset pickled in the training process, once per worker; ``import_seconds``
    is the dataset unpickled in the worker: your module and what it imports beyond Keras. ``error`` says
    why a fresh worker could not unpickle it (its module cannot be imported there), "" when it could.
    """

    method: str
    worker_seconds: float
    fork_worker_seconds: float
    keras_seconds: float
    pickle_seconds: float
    pickle_bytes: int
    import_seconds: float
    error: str = ""

    @property
    def interpreter_seconds(self) -> float:
        return max(0.0, self.worker_seconds - self.fork_worker_seconds)

    @property
    def per_worker_seconds(self) -> float:
        """What a worker adds to an epoch beyond a forked one."""
        return self.interpreter_seconds + self.keras_seconds + self.pickle_seconds + self.import_seconds


class ForkHazardKind(TextEnum):
    """State a forked worker inherits but must not use (``probes.fork_safety``)."""

    SQLITE = "sqlite3 connection"
    SOCKET = "open socket"
    OPEN_FILE = "open file"
    THREAD = "running thread"
    CUDA = "initialised CUDA context"


@dataclass(frozen=True)
class ForkHazard:
    """One fork-unsafe object and where it was found (``dataset.conn``)."""

    kind: ForkHazardKind
    where: str


@dataclass(frozen=True)
class DatasetProfile:
    """How the user's data code behaves when called inline, batch by batch.

    ``cpu_fraction`` is CPU seconds of the calling thread over wall seconds:
    near 1 means the batch code computes (and, in pure Python, holds the GIL);
    near 0 means it waits (I/O, sleep). ``thread_speedup`` is measured
    directly: the same batches made by ``threads_tried`` threads at once
    against one after another; about 1 means threads cannot help.
    """

    kind: DataKind
    class_name: str
    batches_per_epoch: int | None
    batch_bytes: int
    samples_per_batch: int | None
    batch_structure: str
    wall_seconds: Spread
    cpu_seconds: Spread
    cpu_fraction: float
    thread_speedup: float | None
    threads_tried: int
    picklable: bool
    pickle_error: str
    thread_safe: bool | None
    thread_safety_note: str
    # The knobs the user's loader was built with, by the names its engine's code takes (empty where the
    # loader does not hold them: tf-keras takes them as fit() arguments).
    user_knobs: dict[str, int | bool | str | None] = field(default_factory=dict)
    # Whether the class's constructor takes workers=, use_multiprocessing= and max_queue_size= (named, or
    # through **kwargs); None when the data is not a PyDataset, or its signature cannot be read.
    takes_knob_arguments: bool | None = None
    native: NativePools | None = None  # None: no BLAS/OpenMP pool with more than one thread
    start_cost: StartCost | None = None  # None: processes start by fork, or cannot run this dataset
    fork_hazards: tuple[ForkHazard, ...] = ()  # what forked workers inherit but must not use

    @property
    def waits(self) -> bool:
        """True when the batch code mostly waits (I/O, sleep): under 30% of its wall time on the CPU."""
        return self.cpu_fraction < WAITING_CPU_FRACTION

    @property
    def gil_bound(self) -> bool:
        """True when threads could not run the batch code in parallel."""
        if self.thread_speedup is not None and self.threads_tried > 1:
            return self.thread_speedup < 1.0 + 0.35 * (self.threads_tried - 1)
        return self.cpu_fraction > 0.5


@dataclass(frozen=True)
class PipelinePoint:
    """Keras's own pipeline fed with free data (one cached batch), for one kind of pool.

    What is left when the data code costs nothing: the model step plus
    Keras's per-batch overhead (and, for processes, sending each batch
    between processes). ``parent_cpu_seconds_per_batch`` is the CPU the
    training process burns per batch, which workers cannot use.
    ``epoch_end_seconds`` is what the pool costs after ``on_epoch_end``
    beyond inline's (tf-keras's Sequence enqueuer stalls there for up to 5 s).
    """

    kind: PoolKind
    workers: int
    steady_batches_per_second: float
    fixed_seconds: float
    parent_cpu_seconds_per_batch: float
    epoch_end_seconds: float = 0.0


@dataclass(frozen=True)
class ModelProfile:
    """The model's training step on a batch already in memory: the ceiling.

    No loader setting can deliver batches faster than the model consumes them.
    ``kernel_cpu_share`` (system over all CPU time) and ``page_faults_per_step``
    (minor faults, the whole process) are None where they cannot be read.
    """

    description: str
    is_default_model: bool
    step_seconds: Spread
    cpu_seconds_per_step: float
    parameters: int
    pipeline: tuple[PipelinePoint, ...] = ()
    kernel_cpu_share: float | None = None
    page_faults_per_step: float | None = None

    def pipeline_point(self, kind: PoolKind) -> PipelinePoint | None:
        return next((point for point in self.pipeline if point.kind == kind), None)
