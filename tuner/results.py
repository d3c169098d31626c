"""The results tune-loader hands back: frozen, JSON round-trippable, versioned."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from probes.profiles import DatasetProfile, MachineProfile, ModelProfile, PoolKind, Spread, TextEnum
from probes.serde import from_dict, to_dict
from tuner.engines.registry import EngineName

SCHEMA_VERSION = 8
READABLE_SCHEMA_VERSIONS = (6, 7, 8)  # 6: no knobs, which were always Keras's three; 7: no decision

class TrialStatus(TextEnum):
    """How a trial ended: measured, stopped early as clearly losing, crashed or hung, or not allowed."""

    OK = "ok"
    PRUNED = "pruned"
    FAILED = "failed"
    INFEASIBLE = "infeasible"


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

    @classmethod
    def tf_data(cls) -> LoaderConfig:
        """Not a Keras setting: the same batch code in a tf.data pipeline (map with
        ``num_parallel_calls=AUTOTUNE``, then ``prefetch(AUTOTUNE)``), timed the same way.
        Marked by ``workers=0``, which Keras itself would treat as inline."""
        return cls(workers=0, use_multiprocessing=False, max_queue_size=0)

    @property
    def is_tf_data(self) -> bool:
        return self.workers == 0

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

    def label(self) -> str:
        if self.is_tf_data:
            return "tf.data (AUTOTUNE)"
        native = "" if self.native_threads is None else f", {self.native_threads} BLAS/OpenMP thread" + (
            "s" if self.native_threads > 1 else "")
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


@dataclass(frozen=True)
class TrialResult:
    """One configuration's measurement, or why it has none (``reason``).

    ``infeasible`` means over the memory budget, or not allowed for this data code.
    """

    number: int
    config: LoaderConfig
    status: TrialStatus
    origin: str
    windows: tuple[WindowTiming, ...] = ()
    epoch_batches_per_second: Spread | None = None
    fixed_seconds: float | None = None
    steady_batches_per_second: float | None = None
    peak_memory_bytes: int | None = None
    reason: str = ""
    wall_seconds: float = 0.0
    leftover_processes: int = 0
    predicted_batches_per_second: float | None = None


def completed(trials: Iterable[TrialResult]) -> list[TrialResult]:
    """The trials that measured a throughput."""
    return [t for t in trials if t.status == TrialStatus.OK and t.epoch_batches_per_second]


def best_rate(trials: Iterable[TrialResult]) -> float:
    """The highest median epoch throughput among ``trials`` (0 when none measured one)."""
    return max((t.epoch_batches_per_second.median for t in completed(trials)), default=0.0)


@dataclass(frozen=True)
class Confirmation:
    """One setting against another, timed interleaved (A B A B ...): the geometric mean of per-round ratios
    and its t interval at ``confidence`` (``tuner.search.decision.compare``)."""

    best_samples: tuple[float, ...]
    default_samples: tuple[float, ...]
    speedup: float
    speedup_low: float
    speedup_high: float
    confidence: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 1 on the side of a speed-up."""
        return self.speedup_low > 1.0

    @property
    def half_width(self) -> float:
        """How far the interval reaches from the ratio, relatively: 0.05 means within +-5%."""
        return max(self.speedup_high / self.speedup - 1.0, 1.0 - self.speedup_low / self.speedup)

    def interval_text(self) -> str:
        """The interval as a reader should take it, with the rounds it rests on."""
        high = "inf" if math.isinf(self.speedup_high) else f"{self.speedup_high:.2f}"
        return (f"[{self.speedup_low:.2f}, {high}] {self.confidence:.0%} interval, "
                f"{len(self.best_samples)} interleaved rounds")


class ChoiceBasis(TextEnum):
    """Why the race's answer is what it is (``tuner.search.decision.verdict``)."""

    DECIDED_FASTER = "decided_faster"  # its interval against the defaults lies above 1
    LIKELIEST_FASTER = "likeliest_faster"  # the fastest expected, the claim not decided yet
    DEFAULTS_AS_FAST = "defaults_as_fast"  # the defaults are, or could well be, as fast
    HARM_GUARD = "harm_guard"  # the faster-looking settings' evidence allowed a material loss
    DEFAULTS_UNTIMED = "defaults_untimed"  # the defaults failed in the race: the fastest that ran
    UNCONFIRMED = "unconfirmed"  # too few rounds timed the best beside the defaults to compare them


@dataclass(frozen=True)
class Decision:
    """How the race chose, as values: ``basis``; how likely the best setting other than the defaults is
    faster than them (``probability_faster``); how many interleaved rounds of it and the defaults, each
    ``round_seconds`` long, would decide its claim at the noise measured (``rounds_to_decide``, None when
    decided or unknowable); and ``guarded``, the faster-looking setting the harm guard set aside."""

    basis: ChoiceBasis
    probability_faster: float | None = None
    rounds_to_decide: int | None = None
    round_seconds: float | None = None
    guarded: LoaderConfig | None = None


@dataclass(frozen=True)
class RaceLoad:
    """How much the machine was in use by others during the race: rounds dropped and rerun because other
    processes (or the hypervisor's steal) took CPU, rounds kept under load when no more could be dropped,
    and the most cores others took in any window (``probes.load``)."""

    dropped_rounds: int = 0
    loaded_rounds: int = 0
    peak_foreign_cores: float = 0.0


@dataclass(frozen=True)
class Ceiling:
    """What no loader setting can beat (Keras's pipeline fed with free data), and what reaching it takes.

    ``raised_by`` names the measured setting that beat the free-data probe,
    when one did: the ceiling is then that setting's measured median.
    """

    batches_per_second: float
    input_bound_factor: float
    cores_to_feed: float
    bound: str
    verdict: str
    raised_by: str | None = None


@dataclass(frozen=True)
class EngineComparison:
    """The same data code tuned under another engine (tf-keras Sequence vs Keras 3 PyDataset).

    Measured in a separate tuning run, not interleaved: ``ratio`` and its
    interval compare the two runs' confirmation epochs and carry that
    run-to-run noise.
    """

    engine: EngineName
    config: LoaderConfig
    batches_per_second: Spread | None
    model_description: str
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None
    tuning_seconds: float


@dataclass(frozen=True)
class Provenance:
    """Where a result came from, so a shared report or study can be traced to its run.

    ``source`` is the user's file (resolved path) with its ``source_sha256``,
    or, for objects handed to ``recommend()``, their class (no hash).
    ``command`` is the command line of the process that tuned.
    """

    tune_loader_version: str
    started_utc: str
    command: str
    source: str
    source_sha256: str | None


@dataclass(frozen=True)
class Recommendation:
    """Everything tune-loader found: the answer, the evidence and the caveats."""

    config: LoaderConfig
    dataset_name: str
    engine: EngineName
    machine: MachineProfile
    dataset: DatasetProfile
    model: ModelProfile
    epoch_batches: int
    window_batches: int
    best_tried: LoaderConfig
    best_tried_batches_per_second: Spread | None
    default_batches_per_second: Spread | None
    confirmation: Confirmation | None
    peak_memory_bytes: int | None
    default_peak_memory_bytes: int | None
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    trials: tuple[TrialResult, ...]
    ceiling: Ceiling
    tf_data: Confirmation | None
    predicted_batches_per_second: float
    predicted_default_batches_per_second: float
    measured: bool
    memory_budget_bytes: int | None
    tuning_seconds: float
    search_stopped_because: str | None = None  # None for --quick: nothing was searched
    race_stopped_because: str | None = None
    race_settled: bool = False  # the race ended with nothing open, not at the time budget
    race_load: RaceLoad = RaceLoad()
    duplicated_data_allowed: bool = False
    keras3: EngineComparison | None = None
    provenance: Provenance | None = None
    backend: str = "tensorflow"  # the Keras 3 backend fit ran on; tf-keras always runs on TensorFlow
    other_machines: tuple[str, ...] = ()  # the same data's studies on other machines in a shared storage
    # Every race contender's epoch throughputs, round by round (a contender that left ran the first rounds).
    race_epochs: dict[str, tuple[float, ...]] | None = None
    race_left: dict[str, str] | None = None  # why each setting that left the race early left
    # The answer in its engine's own names (``tuner.engines.knobs``): what the code sets.
    knobs: dict[str, int | bool | str | None] | None = None
    decision: Decision | None = None  # how the race chose (None for --quick and schema 6-7 files)
    schema_version: int = SCHEMA_VERSION

    @property
    def samples_per_second(self) -> float | None:
        spread = self.recommended_batches_per_second
        if spread is None or self.dataset.samples_per_batch is None:
            return None
        return spread.median * self.dataset.samples_per_batch

    @property
    def recommended_batches_per_second(self) -> Spread | None:
        return self.best_tried_batches_per_second if self.config == self.best_tried else self.default_batches_per_second

    @property
    def unconfirmed(self) -> bool:
        """A pool was the best setting tried, but the race could not time it beside the defaults, so they
        were kept (a measured answer without a confirmation whose best was not inline)."""
        return self.measured and self.confirmation is None and self.best_tried.parallel

    @property
    def tf_data_is_faster(self) -> bool:
        """tf.data beat the recommended Keras setting side by side, with an interval above 1."""
        return self.tf_data is not None and self.tf_data.significant

    @property
    def legacy(self) -> bool:
        """The data is a tf-keras Sequence or a plain generator: Keras 2 code."""
        return self.engine == EngineName.TF_KERAS

    def knob_values(self) -> dict[str, int | bool | str | None]:
        """The recorded knobs; a schema-6 file's are Keras's three."""
        return self.knobs if self.knobs is not None else {
            "workers": self.config.workers, "use_multiprocessing": self.config.use_multiprocessing,
            "max_queue_size": self.config.max_queue_size}

    def knob_arguments(self) -> str:
        """The recorded knobs as keyword arguments, to paste."""
        return ", ".join(f"{name}={value!r}" for name, value in self.knob_values().items())

    def settings_text(self) -> str:
        """Every knob in one line: the engine's arguments, and the native-thread limit when set."""
        native = "" if self.config.native_threads is None else (
            f"; threadpool_limits(limits={self.config.native_threads}) per batch")
        return self.knob_arguments() + native

    def code_blocks(self) -> list:
        """The answer as code to paste (``tuner.engines.snippets.CodeBlock``), as its engine's knob set writes
        it, then the tf.data pipeline when the race measured it faster."""
        from tuner.engines import registry, snippets

        blocks = registry.knob_set(self.engine, self.backend).code_blocks(self)
        return blocks + ([snippets.tf_data(self)] if self.tf_data_is_faster else [])

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Recommendation:
        data = json.loads(text)
        version = data.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(
                f"results.json has schema version {version}, this tune-loader reads "
                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}. "
                "Re-run tune-loader to regenerate it."
            )
        return from_dict(cls, data)
