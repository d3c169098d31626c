"""Small, explicit profiles and results for tests that need no Keras."""

from __future__ import annotations

from probes.profiles import DatasetProfile, MachineProfile, ModelProfile, NativePools, Spread
from probes.profiles import PipelinePoint
from probes.stats import summarize
from tuner.core import KERAS_DEFAULTS, LoaderConfig, TrialOrigin, WindowTiming
from tuner.engines import registry
from tuner.results import Ceiling, Confirmation, Provenance, Recommendation, TrialResult


def machine(cores: int = 2) -> MachineProfile:
    return MachineProfile(
        logical_cores=cores, affinity_cores=cores, cgroup_cpu_quota=None, usable_cores=cores,
        memory_total_bytes=24 * 2**30, memory_available_bytes=20 * 2**30, memory_limit_bytes=None,
        python_version="3.11.7", platform="Linux", start_method="fork", package_versions={"keras": "3.15.1"},
    )


def dataset(
    *, cpu_fraction=0.05, thread_speedup=1.9, picklable=True, class_name="ShardDataset", batch_ms=20.0,
    thread_safe=True, pickle_error="", kind="pydataset", takes_knob_arguments=True, native=None, start_cost=None,
    user_knobs=None,
) -> DatasetProfile:
    return DatasetProfile(
        kind=kind, class_name=class_name, batches_per_epoch=200, batch_bytes=8320, samples_per_batch=32,
        batch_structure="(float32[32, 64], float32[32, 1])", wall_seconds=summarize([batch_ms / 1e3] * 5),
        cpu_seconds=summarize([cpu_fraction * batch_ms / 1e3] * 5), cpu_fraction=cpu_fraction,
        thread_speedup=thread_speedup, threads_tried=2, picklable=picklable, pickle_error=pickle_error,
        thread_safe=thread_safe, thread_safety_note="threads returned the same batches as inline calls",
        user_knobs=user_knobs if user_knobs is not None else {"workers": 1, "use_multiprocessing": False,
                                                              "max_queue_size": 10},
        takes_knob_arguments=takes_knob_arguments if kind == "pydataset" else None, native=native,
        start_cost=start_cost,
    )


PIPELINE = (
    PipelinePoint("inline", 1, 600.0, 0.04, 0.003),
    PipelinePoint("threads", 2, 650.0, 0.14, 0.003),
    PipelinePoint("processes", 2, 500.0, 0.20, 0.004),
)


def model(step_ms: float = 2.0, pipeline=PIPELINE) -> ModelProfile:
    return ModelProfile(
        description="tiny mlp", is_default_model=True, step_seconds=summarize([step_ms / 1e3] * 5),
        cpu_seconds_per_step=1.5 * step_ms / 1e3, parameters=2113, pipeline=pipeline,
    )


def trial(number: int, config: LoaderConfig, rate: float, status: str = "ok", reason: str = "") -> TrialResult:
    windows = tuple(WindowTiming(50, 50 / rate + 0.01, rate, 0.01) for _ in range(3)) if status == "ok" else ()
    return TrialResult(
        number=number, config=config, status=status, origin=TrialOrigin.GRID, windows=windows,
        epoch_batches_per_second=Spread(rate, 1.0, rate - 1, rate + 1, 3) if status == "ok" else None,
        fixed_seconds=0.01 if status == "ok" else None, steady_batches_per_second=rate if status == "ok" else None,
        peak_memory_bytes=640 * 2**20 if status == "ok" else None, reason=reason, wall_seconds=1.5,
        predicted_batches_per_second=rate * 1.1 if status == "ok" else None,
    )


def native_pools(default_ms=60.0, default_cpu_ms=120.0, one_thread_ms=45.0, threads=2) -> NativePools:
    """The probe's view of BLAS pools: by default two threads kept busy, and faster at one thread."""
    return NativePools(("openblas 0.3.31 (blas, 2 threads)",), threads, default_ms / 1e3, default_cpu_ms / 1e3,
                       one_thread_ms / 1e3, one_thread_ms / 1e3, 3)


def recommendation(*, class_name="ShardDataset", reason_text="", engine="keras3", best=LoaderConfig(8, False, 16),
                   **dataset_overrides) -> Recommendation:
    trials = (
        trial(0, KERAS_DEFAULTS, 45.0),
        trial(1, LoaderConfig(2, True, 10), 80.0),
        trial(2, best, 300.0),
        trial(3, LoaderConfig(16, True, 64), 0.0, status="failed", reason=reason_text or "timed out after 30 s"),
    )
    confirmation = Confirmation((300.0, 305.0, 298.0), (45.0, 44.0, 46.0), 6.6, 6.3, 6.9, 0.95)
    return Recommendation(
        config=best, knobs=registry.knob_set(engine).recorded(best, "fork"), dataset_name="make_dataset", engine=engine, machine=machine(), dataset=dataset(class_name=class_name, **dataset_overrides),
        model=model(), epoch_batches=200, window_batches=50, best_tried=best,
        best_tried_batches_per_second=trials[2].epoch_batches_per_second,
        default_batches_per_second=trials[0].epoch_batches_per_second, confirmation=confirmation,
        peak_memory_bytes=640 * 2**20, default_peak_memory_bytes=630 * 2**20,
        reasons=("Your batches mostly wait.",), warnings=("Batches run concurrently.",), trials=trials,
        ceiling=Ceiling(560.0, 10.0, 2.1, "input-bound", "input-bound: one producer is 10x slower than the model"),
        tf_data=Confirmation((90.0, 88.0, 91.0), (300.0, 305.0, 298.0), 0.3, 0.29, 0.31, 0.95),
        predicted_batches_per_second=330.0, predicted_default_batches_per_second=48.0, measured=True,
        memory_budget_bytes=10 * 2**30, tuning_seconds=60.0,
        search_stopped_because="it screened all 4 candidates", race_settled=True,
        race_stopped_because="no setting left in it could beat the answer by more than 3%",
        race_epochs={best.label(): (300.0, 305.0, 298.0), KERAS_DEFAULTS.label(): (45.0, 44.0, 46.0)},
        race_left={KERAS_DEFAULTS.label(): "the claim against them was decided"},
        provenance=Provenance("0.1.0", "2026-12-02T06:00:00+00:00", "tune-loader my_gen.py --trials 4",
                              "/data/my_gen.py", "ab" * 32),
    )
