"""Each engine's knobs: their names, types and defaults, the settings worth timing, and the code to paste.

Every engine's knobs describe one pool, and a ``LoaderConfig`` is that pool as
the search, the analytic model and the race see it: how many workers, threads
or processes, how many batches in flight (``max_queue_size``), and whether the
workers outlive an epoch. A knob set translates both ways, so the engine's own
names reach only results.json (``Recommendation.knobs``), the study's stored
parameters and the code the report prints. Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from tuner.core import KERAS_DEFAULTS, LoaderConfig, PoolKind, StartMethod
from tuner.engines import snippets
from tuner.engines.snippets import CodeBlock

if TYPE_CHECKING:
    from tuner.results import Recommendation

KnobValue = int | bool | str | None
# Keras's default 10 among them, so a guess that ties with the rule of thumb is the same setting.
QUEUE_SIZES = (1, 2, 4, 8, 10, 16, 32, 64)
MAX_QUEUE = QUEUE_SIZES[-1]
DEFAULT_QUEUE = KERAS_DEFAULTS.max_queue_size
MIN_SHORT_BATCHES = 4  # the shorter epochs of a race window timed at two lengths


@dataclass(frozen=True)
class PoolStart:
    """How an engine's process pool starts under forkserver or spawn, for the reasons: who starts the
    workers (``starter``, a sentence's subject), whether each imports Keras, and the fixes to name when
    that start cost loses to fork."""

    starter: str
    imports_keras: bool
    fixes: str
    chosen_by: str = "as in your training (--start-method)"  # who picks the start method


@dataclass(frozen=True)
class Knob:
    name: str
    type: type
    default: KnobValue
    help: str


@dataclass(frozen=True)
class KerasValues:
    """Keras's three knobs, as a PyDataset's constructor and tf-keras's ``fit`` take them."""

    workers: int = 1
    use_multiprocessing: bool = False
    max_queue_size: int = 10


@dataclass(frozen=True)
class PyDatasetInDataLoaderValues(KerasValues):
    """Keras's three, and whether the PyDataset runs in a torch DataLoader whose workers outlive an epoch."""

    persistent_workers: bool = False


@dataclass(frozen=True)
class DataLoaderValues:
    """A torch DataLoader's pool: ``prefetch_factor`` None where ``num_workers`` is 0, as torch requires."""

    num_workers: int = 0
    prefetch_factor: int | None = None
    persistent_workers: bool = False


@dataclass(frozen=True)
class GrainValues:
    """Grain's ``mp_prefetch`` (a ``grain.DataLoader``'s arguments of the same names); 0 workers: none."""

    worker_count: int = 0
    worker_buffer_size: int = 1


def worker_ladder(first: int, most: int) -> list[int]:
    """Workers on a log scale: ``first``, twice that, ... up to ``most``, and ``most`` itself."""
    ladder, workers = [], first
    while workers < most:
        ladder.append(workers)
        workers *= 2
    return ladder + [most]


@dataclass(frozen=True)
class KerasKnobs:
    """``workers``, ``use_multiprocessing`` and ``max_queue_size``: PyDataset arguments in Keras 3, ``fit``
    arguments in tf-keras."""

    knobs: tuple[Knob, ...] = (
        Knob("workers", int, 1, "threads or processes that make batches (1 without processes: inline)"),
        Knob("use_multiprocessing", bool, False, "processes instead of threads"),
        Knob("max_queue_size", int, 10, "batches asked for ahead of the model"),
    )
    pool_kinds: tuple[PoolKind, ...] = (PoolKind.THREADS, PoolKind.PROCESSES)
    races_tf_data: bool = True  # batch i on demand, so the same code can run in a tf.data pipeline
    # Under TensorFlow, Keras feeds a pool-less dataset through tf.data (prefetch and its autotuner's wait).
    inline_through_tf_data: bool = True
    persistent_pools: bool = False  # Keras builds its pool at every epoch start
    # Keras's pool hands the dataset to its workers as initargs, which a fork inherits without pickling.
    forked_workers_inherit_data: bool = True
    start_method: StartMethod | None = None  # how its workers start: None, multiprocessing's (--start-method)
    # Its engine times a fit's per-epoch fixed cost itself (epochs of two lengths), so a costly start is raced
    # in fits, not in lone windows with the probe's estimate added (api.Facts.race_plan).
    fits_time_fixed_cost: bool = False
    fit_starts_a_pool: bool = False  # a fit starts one pool more than its epochs do (to read batch shapes)
    pool_start: PoolStart = PoolStart(
        "Keras starts", True, "a torch DataLoader with persistent_workers=True, which keeps the workers across "
        "epochs; or multiprocessing.set_start_method('fork') before training")

    def setting(self, config: LoaderConfig) -> KerasValues:
        """``config`` in this engine's own knobs."""
        return KerasValues(config.workers, config.use_multiprocessing, config.max_queue_size)

    def values(self, config: LoaderConfig) -> dict[str, KnobValue]:
        """The knobs by name, for the study, trials.csv and results.json."""
        return asdict(self.setting(config))

    def label(self, config: LoaderConfig) -> str:
        """The setting as sentences and tables name it: Keras's pool of threads or processes and its queue."""
        return config.label()

    def config_of(self, values: dict[str, Any]) -> LoaderConfig:
        return LoaderConfig(values["workers"], values["use_multiprocessing"], values["max_queue_size"])

    def recorded(self, config: LoaderConfig, start_method: str) -> dict[str, KnobValue]:
        """The knobs as results.json records them and the code sets them (Keras's pool takes the default
        start method)."""
        return self.values(config)

    def pools(self, max_workers: int, kinds: tuple[PoolKind, ...], max_queue: int) -> list[LoaderConfig]:
        """Every kind at workers 1 (processes) or 2 (threads), doubling up to ``max_workers``, each with
        Keras's queue of 10 and, where that is longer, a queue of twice its workers (a queue of 10 already
        keeps up to 11 batches in flight, and shorter ones leave less slack)."""
        return [LoaderConfig(workers, kind == PoolKind.PROCESSES, queue)
                for kind in kinds
                for workers in worker_ladder(1 if kind == PoolKind.PROCESSES else 2, max_workers)
                for queue in sorted({DEFAULT_QUEUE, max(DEFAULT_QUEUE, min(2 * workers, max_queue))})]

    def model_grid(self, max_workers: int, kinds: tuple[PoolKind, ...]) -> list[LoaderConfig]:
        """Every setting the analytic model ranks: each kind by workers and queue."""
        return [LoaderConfig(workers, kind == PoolKind.PROCESSES, queue)
                for kind in kinds
                for workers in range(1 if kind == PoolKind.PROCESSES else 2, max_workers + 1)
                for queue in QUEUE_SIZES]

    def suggest(self, trial, max_workers: int, kinds: tuple[PoolKind, ...]) -> LoaderConfig:
        processes = [False, True] if PoolKind.PROCESSES in kinds else [False]
        return LoaderConfig(trial.suggest_int("workers", 1, max_workers),
                            trial.suggest_categorical("use_multiprocessing", processes),
                            trial.suggest_int("max_queue_size", 1, MAX_QUEUE, log=True))

    def rule_of_thumb(self, cores: int, processes: bool) -> LoaderConfig:
        """What people usually guess: one worker per core, processes if the code holds the GIL."""
        return LoaderConfig(workers=cores, use_multiprocessing=processes, max_queue_size=DEFAULT_QUEUE)

    def race_lengths(self, batches: int) -> tuple[int, ...]:
        """The epoch lengths of a race window of several epochs of ``batches``: one fit of each."""
        return (batches,)

    def code_blocks(self, answer: Recommendation) -> list[CodeBlock]:
        """The PyDataset's constructor arguments, and in the report the same knobs for tf-keras readers."""
        return [snippets.keras3(answer), snippets.tf_keras(answer, tuned_under=False)]


@dataclass(frozen=True)
class TfKerasKnobs(KerasKnobs):
    """Keras's three knobs as tf-keras's ``fit`` takes them, for a Sequence or a plain generator."""

    def code_blocks(self, answer: Recommendation) -> list[CodeBlock]:
        """``fit`` arguments, and the Keras 3 PyDataset the data would become."""
        return [snippets.tf_keras(answer, tuned_under=True), snippets.moving_to_keras3(answer)]


@dataclass(frozen=True)
class DataLoaderKnobs:
    """``torch.utils.data.DataLoader``'s ``num_workers``, ``prefetch_factor`` and ``persistent_workers``; its
    ``multiprocessing_context`` is the start method tuned under (``--start-method``), set explicitly in the code.

    The pool is always processes: ``num_workers`` of them, each holding
    ``prefetch_factor`` batches ahead, so ``max_queue_size`` is their product;
    ``num_workers=0`` is inline, the same reference as Keras's defaults.
    """

    knobs: tuple[Knob, ...] = (
        Knob("num_workers", int, 0, "worker processes (0: batches are made in the training loop)"),
        Knob("prefetch_factor", int, None, "batches each worker holds ahead (None: torch's 2)"),
        Knob("persistent_workers", bool, False, "keep the workers alive from one epoch to the next"),
    )
    pool_kinds: tuple[PoolKind, ...] = (PoolKind.PROCESSES,)
    prefetch_factors: tuple[int, ...] = (2, 4)
    races_tf_data: bool = False  # its batches come from its own sampler and collate_fn
    inline_through_tf_data: bool = False  # Keras reads it through from_generator, without a prefetch
    persistent_pools: bool = True  # persistent_workers: a pool that starts once per fit
    forked_workers_inherit_data: bool = True  # a forked DataLoader worker is not sent its dataset
    start_method: StartMethod | None = None  # multiprocessing_context: the start method tuned under
    fits_time_fixed_cost: bool = False
    fit_starts_a_pool: bool = False
    pool_start: PoolStart = PoolStart(
        "a DataLoader without persistent_workers starts", False,
        "persistent_workers=True, which keeps the workers across epochs; or multiprocessing_context='fork'")

    def setting(self, config: LoaderConfig) -> DataLoaderValues:
        if not config.parallel:
            return DataLoaderValues()
        return DataLoaderValues(config.workers, max(1, config.max_queue_size // config.workers),
                                config.persistent_workers)

    def values(self, config: LoaderConfig) -> dict[str, KnobValue]:
        return asdict(self.setting(config))

    def config_of(self, values: dict[str, Any]) -> LoaderConfig:
        workers = values["num_workers"]
        if not workers:
            return KERAS_DEFAULTS
        return LoaderConfig(workers, True, workers * (values["prefetch_factor"] or 2),
                            persistent_workers=bool(values["persistent_workers"]))

    def label(self, config: LoaderConfig) -> str:
        """``num_workers`` and ``prefetch_factor`` as a DataLoader user reads them."""
        if config.is_tf_data:
            return config.label()
        setting = self.setting(config)
        if not setting.num_workers:
            return "num_workers=0 (inline)" + config.native_label
        workers, persistent = setting.num_workers, ", persistent" if setting.persistent_workers else ""
        return (f"{workers} worker{'s' if workers > 1 else ''}, prefetch {setting.prefetch_factor}{persistent}"
                + config.native_label)

    def recorded(self, config: LoaderConfig, start_method: str) -> dict[str, KnobValue]:
        """The knobs as results.json records them and the code sets them: the start method timed under, set
        explicitly, since a DataLoader takes it as an argument."""
        values = self.values(config)
        if not values["num_workers"]:
            return {"num_workers": 0}
        return values | {"multiprocessing_context": start_method}

    def pools(self, max_workers: int, kinds: tuple[PoolKind, ...], max_queue: int) -> list[LoaderConfig]:
        """Workers 1, 2, 4, ... up to ``max_workers``, each with and without persistent workers, at torch's
        prefetch of 2 batches a worker."""
        if PoolKind.PROCESSES not in kinds:
            return []
        return [LoaderConfig(workers, True, 2 * workers, persistent_workers=persistent)
                for workers in worker_ladder(1, max_workers) for persistent in (False, True)]

    def model_grid(self, max_workers: int, kinds: tuple[PoolKind, ...]) -> list[LoaderConfig]:
        if PoolKind.PROCESSES not in kinds:
            return []
        return [LoaderConfig(workers, True, prefetch * workers, persistent_workers=persistent)
                for workers in range(1, max_workers + 1) for prefetch in self.prefetch_factors
                for persistent in (False, True)]

    def suggest(self, trial, max_workers: int, kinds: tuple[PoolKind, ...]) -> LoaderConfig:
        most = max_workers if PoolKind.PROCESSES in kinds else 0
        return self.config_of({"num_workers": trial.suggest_int("num_workers", 0, most),
                               "prefetch_factor": trial.suggest_categorical("prefetch_factor", list(self.prefetch_factors)),
                               "persistent_workers": trial.suggest_categorical("persistent_workers", [False, True])})

    def rule_of_thumb(self, cores: int, processes: bool) -> LoaderConfig:
        """What DataLoader users usually write: a worker per core, torch's prefetch, workers not kept."""
        return LoaderConfig(cores, True, 2 * cores)

    def race_lengths(self, batches: int) -> tuple[int, ...]:
        return (batches,)

    def code_blocks(self, answer: Recommendation) -> list[CodeBlock]:
        return [snippets.dataloader(answer, user_loader=True)]


@dataclass(frozen=True)
class GrainKnobs:
    """Grain's ``mp_prefetch``: ``worker_count`` processes (``MultiprocessingOptions.num_workers``), each
    holding ``worker_buffer_size`` batches ahead (``per_worker_buffer_size``), so ``max_queue_size`` is their
    product; ``worker_count=0`` is the pipeline without ``mp_prefetch``, the reference. Grain starts its
    workers by spawn whatever multiprocessing's default is, and sends each the pipeline by cloudpickle, at
    every epoch: Keras iterates the dataset anew and the iterator starts a fresh pool. The read options
    (threads that make the batches in each process) stay the user's."""

    knobs: tuple[Knob, ...] = (
        Knob("worker_count", int, 0, "mp_prefetch worker processes (0: no mp_prefetch)"),
        Knob("worker_buffer_size", int, 1, "batches each worker holds ahead"),
    )
    pool_kinds: tuple[PoolKind, ...] = (PoolKind.PROCESSES,)
    buffer_sizes: tuple[int, ...] = (1, 4)
    races_tf_data: bool = False  # its batches are the pipeline's own
    inline_through_tf_data: bool = False  # Keras reads it through from_generator, without a prefetch
    persistent_pools: bool = False  # every epoch's iterator starts its own workers
    forked_workers_inherit_data: bool = False  # spawned workers are sent the pipeline by cloudpickle
    start_method: StartMethod | None = StartMethod.SPAWN  # mp_prefetch's own context, not multiprocessing's
    fits_time_fixed_cost: bool = True  # grain_loader.by_length: its batches' spacing lies, epochs' lengths do not
    fit_starts_a_pool: bool = True  # Keras's Grain adapter iterates the dataset for two batches' shapes
    pool_start: PoolStart = PoolStart(
        "Grain's mp_prefetch starts", False,
        "one endless pipeline (repeat(), or a sampler with num_epochs=None) and fit(steps_per_epoch=...), "
        "whose workers start once; or no mp_prefetch",
        "whatever multiprocessing's default: Grain's mp_prefetch always spawns")

    def setting(self, config: LoaderConfig) -> GrainValues:
        if not config.parallel:
            return GrainValues()
        return GrainValues(config.workers, max(1, config.max_queue_size // config.workers))

    def values(self, config: LoaderConfig) -> dict[str, KnobValue]:
        return asdict(self.setting(config))

    def config_of(self, values: dict[str, Any]) -> LoaderConfig:
        workers = values["worker_count"]
        if not workers:
            return KERAS_DEFAULTS
        return LoaderConfig(workers, True, workers * values["worker_buffer_size"])

    def label(self, config: LoaderConfig) -> str:
        """``mp_prefetch``'s workers and buffer as a Grain user reads them; without workers the pipeline has
        no ``mp_prefetch``, and its read threads still run."""
        setting = self.setting(config)
        if not setting.worker_count:
            return "no mp_prefetch" + config.native_label
        workers = setting.worker_count
        return (f"mp_prefetch {workers} worker{'s' if workers > 1 else ''}, buffer {setting.worker_buffer_size}"
                + config.native_label)

    def recorded(self, config: LoaderConfig, start_method: str) -> dict[str, KnobValue]:
        """The knobs as results.json records them and the code sets them (no start method: Grain's is spawn)."""
        values = self.values(config)
        return values if values["worker_count"] else {"worker_count": 0}

    def pools(self, max_workers: int, kinds: tuple[PoolKind, ...], max_queue: int) -> list[LoaderConfig]:
        """Workers 1, 2, 4, ... up to ``max_workers``, each holding 1 and 4 batches ahead."""
        if PoolKind.PROCESSES not in kinds:
            return []
        return [LoaderConfig(workers, True, workers * buffer)
                for workers in worker_ladder(1, max_workers) for buffer in self.buffer_sizes]

    def model_grid(self, max_workers: int, kinds: tuple[PoolKind, ...]) -> list[LoaderConfig]:
        if PoolKind.PROCESSES not in kinds:
            return []
        return [LoaderConfig(workers, True, workers * buffer)
                for workers in range(1, max_workers + 1) for buffer in (1, 2, 4)]

    def suggest(self, trial, max_workers: int, kinds: tuple[PoolKind, ...]) -> LoaderConfig:
        most = max_workers if PoolKind.PROCESSES in kinds else 0
        return self.config_of({"worker_count": trial.suggest_int("worker_count", 0, most),
                               "worker_buffer_size": trial.suggest_categorical("worker_buffer_size", [1, 2, 4])})

    def rule_of_thumb(self, cores: int, processes: bool) -> LoaderConfig:
        """What Grain users usually write: a worker per core, Grain's buffer of one batch each."""
        return LoaderConfig(cores, True, cores)

    def race_lengths(self, batches: int) -> tuple[int, ...]:
        """A fit of epochs twice as long and one of epochs half as long, whose durations give the fixed cost
        and the rate (``grain_loader.by_length``): lengths a quarter apart, so what a pool's start costs an
        epoch (about two seconds for spawned workers) stands out of the noise."""
        return 2 * batches, max(MIN_SHORT_BATCHES, batches // 2)

    def code_blocks(self, answer: Recommendation) -> list[CodeBlock]:
        return [snippets.grain(answer)]


@dataclass(frozen=True)
class PyDatasetInDataLoaderKnobs(KerasKnobs):
    """A PyDataset under the torch backend: Keras's three knobs, and the same PyDataset handed to a torch
    ``DataLoader`` (``batch_size=None``: batch i is ``dataset[i]``) whose ``persistent_workers`` keep
    its processes from one epoch to the next, which Keras's pool never does. A persistent pool is that
    DataLoader: ``num_workers`` processes, ``prefetch_factor`` batches each."""

    knobs: tuple[Knob, ...] = KerasKnobs.knobs + (
        Knob("persistent_workers", bool, False, "the PyDataset in a torch DataLoader whose workers outlive an epoch"),)
    persistent_pools: bool = True

    def setting(self, config: LoaderConfig) -> PyDatasetInDataLoaderValues:
        return PyDatasetInDataLoaderValues(config.workers, config.use_multiprocessing or config.persistent_workers,
                                           config.max_queue_size, config.persistent_workers)

    def config_of(self, values: dict[str, Any]) -> LoaderConfig:
        config = super().config_of(values)
        return replace(config, persistent_workers=bool(values.get("persistent_workers")) and config.parallel
                       and config.use_multiprocessing)

    def recorded(self, config: LoaderConfig, start_method: str) -> dict[str, KnobValue]:
        """Keras's three, or for a persistent pool the DataLoader's arguments."""
        if not config.persistent_workers:
            return KERAS_KNOBS.recorded(config, start_method)
        return DATALOADER_KNOBS.recorded(config, start_method)

    def pools(self, max_workers: int, kinds: tuple[PoolKind, ...], max_queue: int) -> list[LoaderConfig]:
        persistent = [] if PoolKind.PROCESSES not in kinds else [
            LoaderConfig(workers, True, 2 * workers, persistent_workers=True) for workers in worker_ladder(1, max_workers)]
        return super().pools(max_workers, kinds, max_queue) + persistent

    def model_grid(self, max_workers: int, kinds: tuple[PoolKind, ...]) -> list[LoaderConfig]:
        return super().model_grid(max_workers, kinds) + [
            config for config in DATALOADER_KNOBS.model_grid(max_workers, kinds) if config.persistent_workers]

    def suggest(self, trial, max_workers: int, kinds: tuple[PoolKind, ...]) -> LoaderConfig:
        config = super().suggest(trial, max_workers, kinds)
        persistent = trial.suggest_categorical("persistent_workers", [False, True])
        return self.config_of(self.values(config) | {"persistent_workers": persistent})

    def code_blocks(self, answer: Recommendation) -> list[CodeBlock]:
        """A persistent pool as the DataLoader that wraps the PyDataset, else Keras's three."""
        if answer.config.persistent_workers:
            return [snippets.dataloader(answer, user_loader=False)]
        return super().code_blocks(answer)


KERAS_KNOBS = KerasKnobs()
TF_KERAS_KNOBS = TfKerasKnobs()
DATALOADER_KNOBS = DataLoaderKnobs()
PYDATASET_IN_DATALOADER_KNOBS = PyDatasetInDataLoaderKnobs()
GRAIN_KNOBS = GrainKnobs()
KnobSet = KerasKnobs | DataLoaderKnobs | GrainKnobs


def optuna_params(knobs: KnobSet, config: LoaderConfig) -> dict[str, KnobValue]:
    """``config`` as the parameters ``knobs.suggest`` asks an Optuna trial for (prefetch only where a pool
    holds one: Optuna's categorical takes no None)."""
    values = knobs.values(config)
    if values.get("prefetch_factor", 0) is None:
        values["prefetch_factor"] = knobs.prefetch_factors[0]
    return values

