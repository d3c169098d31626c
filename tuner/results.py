"""The results tune-loader hands back: frozen, JSON round-trippable, versioned."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from probes.profiles import DatasetProfile, MachineProfile, ModelProfile, Spread
from probes.serde import from_dict, to_dict
from tuner.core import (Backend, EngineName, LoaderConfig, StopKind, TextEnum, TrialOrigin, TrialStatus,
                        WindowTiming)

SCHEMA_VERSION = 9
# 6: no knobs, which were always Keras's three; 7: no decision; 8: no trial's stop_kind
READABLE_SCHEMA_VERSIONS = (6, 7, 8, 9)

@dataclass(frozen=True)
class TrialResult:
    """One configuration's measurement, or why it has none (``reason``, and ``stop_kind`` as a value).

    ``infeasible`` means over the memory budget, or not allowed for this data code.
    """

    number: int
    config: LoaderConfig
    status: TrialStatus
    origin: TrialOrigin
    windows: tuple[WindowTiming, ...] = ()
    epoch_batches_per_second: Spread | None = None
    fixed_seconds: float | None = None
    steady_batches_per_second: float | None = None
    peak_memory_bytes: int | None = None
    reason: str = ""
    wall_seconds: float = 0.0
    leftover_processes: int = 0
    predicted_batches_per_second: float | None = None
    stop_kind: StopKind | None = None


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
    backend: Backend = Backend.TENSORFLOW  # the Keras 3 backend fit ran on; tf-keras always runs on TensorFlow
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


class EpochRole(TextEnum):
    """What one epoch of ``tuner.fit``'s training was for."""

    WARM_UP = "warm-up"  # the first: it traces the step, and is not compared
    RACE = "race"  # a round of the race over epochs
    TRAIN = "train"  # the race was over: the winner trained it
    FAILED = "failed"  # its setting raised during it: abandoned, and the epoch trained again
    RETRIED = "retried"  # trained again after a setting failed on it


@dataclass(frozen=True)
class TrainingEpoch:
    """One epoch of the user's training: its number (as one ``fit`` numbers it), its setting, what it was
    for, and its wall time from the ``fit`` call's start to its return (pool start and validation included),
    of which ``validation_seconds`` the validation pass took (None: the epoch ran none)."""

    epoch: int
    config: LoaderConfig
    role: EpochRole
    seconds: float
    validation_seconds: float | None = None


@dataclass(frozen=True)
class TrainingScreen:
    """A setting read without training before the race (``tuner.fit``'s screen): batches per second of the
    data alone, over ``batches`` batches, or why it could not be read (``reason``; the rate is then 0)."""

    config: LoaderConfig
    batches_per_second: float
    batches: int
    reason: str = ""


@dataclass(frozen=True)
class TrainingOutcome:
    """What ``tuner.fit`` measured on the user's training, and what it chose.

    ``claim`` compares ``chosen`` with ``baseline`` (the setting the user's data was built with) on the race's
    rounds, when both raced; ``candidates_from`` names the stored study the contenders came from, or is None
    when the screen chose them. ``explored`` epochs ran settings other than the best known, of ``bound``."""

    dataset_name: str
    engine: EngineName
    backend: Backend
    machine: MachineProfile
    epoch_batches: int
    chosen: LoaderConfig
    baseline: LoaderConfig
    claim: Confirmation | None
    epochs: tuple[TrainingEpoch, ...]
    screen: tuple[TrainingScreen, ...]
    race_epochs: dict[str, tuple[float, ...]]
    race_left: dict[str, str]
    race_stopped_because: str
    explored: int
    bound: int
    candidates_from: str | None
    knobs: dict[str, int | bool | str | None]
    setup_seconds: float
    training_seconds: float
    provenance: Provenance | None = None

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2)
