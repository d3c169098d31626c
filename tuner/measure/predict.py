"""The analytic model: throughput of any configuration, from the probes alone.

Per batch, the data code takes ``w`` seconds of wall time, ``c`` of them on
the CPU, and holds the GIL for ``S = (1 - p) w``, where ``p`` is the share
that ran in parallel in the probe's thread test (Amdahl's law), or ``c`` for
waiting code (see ``gil_seconds``). Keras's own
pipeline, measured with free data for each kind of pool, gives the
consumer's period ``1 / R`` and the training process's CPU per batch ``P``.
A configuration's batch period is the largest of:

- inline (no pool): ``w + 1 / R``, making a batch and training on it in turn;
- the producers: ``w / n`` for ``n`` batches in flight, ``n = min(workers, max_queue_size + 1)``
  (1 for threads sharing one plain generator);
- the consumer: ``1 / R`` (model step plus Keras's per-batch work);
- the GIL, for inline and thread producers: ``S + 1 / R``, plus a convoy
  term: a thread waiting for a GIL that a busy thread holds waits for the
  holder's stretch, at most one switch interval (5 ms), as often as the GIL
  is busy (this is why pure-Python data code made inline runs about 1.5x
  slower than ``w`` plus the model step on this machine);
- the cores: ``(c + P + transfer) / usable cores``; processes pay the
  transfer of every batch twice (pickled in the worker, unpickled here).

An epoch then costs the pool's start-up and tear-down (measured with free
data, plus a first batch, plus any stall after the epoch's end; under
forkserver or spawn, plus the dataset sent to each process worker:
``start_cost_seconds``) plus ``batches x period``. docs/analytic-model.md says how close that comes.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from probes.profiles import DataKind, DatasetProfile, MachineProfile, ModelProfile, StartCost
from tuner.core import LoaderConfig, PoolKind
from tuner.results import Ceiling, TrialResult, completed

SWITCH_INTERVAL_SECONDS = sys.getswitchinterval()
# A fresh process worker whose start alone takes more than this many whole inline epochs rules out pools
# that start at every epoch: a margin over the probes' estimate of an inline epoch.
START_OUTWEIGHS_EPOCHS = 2.0


@dataclass(frozen=True)
class Prediction:
    config: LoaderConfig
    batch_period_seconds: float
    fixed_seconds: float  # per epoch, ``epoch_end_seconds`` included
    epoch_end_seconds: float
    epoch_batches_per_second: float
    bound: str  # what sets the period: "data code", "GIL", "cores", "model and Keras" or "data code then model"


def parallel_share(dataset: DatasetProfile) -> float:
    """Amdahl's parallel share p from the probe's k-thread speed-up s: s = 1 / ((1 - p) + p / k)."""
    k, s = dataset.threads_tried, dataset.thread_speedup
    if not s or k < 2:
        return 1.0 - dataset.cpu_fraction
    return min(1.0, max(0.0, (1.0 - 1.0 / s) / (1.0 - 1.0 / k)))


def gil_seconds(dataset: DatasetProfile) -> float:
    """GIL-held seconds per batch: ``(1 - p) w`` from the thread test, at most ``c``.

    A thread holds the GIL only while it runs, so its CPU time ``c`` bounds
    the GIL share. For waiting code the thread test cannot resolve that
    share (a little noise in a 2x speed-up reads as milliseconds of "GIL"),
    so there ``c`` itself is the estimate.
    """
    cpu = dataset.cpu_seconds.median
    if dataset.waits:
        return cpu
    return min(cpu, (1.0 - parallel_share(dataset)) * dataset.wall_seconds.median)


def batch_cost(config: LoaderConfig, dataset: DatasetProfile) -> tuple[float, float]:
    """Wall and CPU seconds of one batch under ``config``'s native-thread limit.

    Where the probe saw BLAS/OpenMP pools at work, it timed batches at the
    libraries' default and at one thread, with the whole process's CPU: at
    the default a batch keeps several cores busy, so a pool of such workers
    competes for the same cores (the cores bound below then shows it), and
    at one thread it does not. Otherwise the serial probe's numbers hold.
    """
    native = dataset.native
    if native is None or not native.in_use:
        return dataset.wall_seconds.median, dataset.cpu_seconds.median
    if config.native_threads == 1:
        return native.one_thread_seconds, native.one_thread_cpu_seconds
    return native.default_seconds, max(native.default_cpu_seconds, dataset.cpu_seconds.median)


def start_cost_seconds(cost: StartCost | None, workers: int, usable_cores: int) -> float:
    """What a pool of ``workers`` processes adds to each epoch under forkserver or spawn beyond the free-data
    probe's pool, which already paid the fresh interpreters and Keras's import: the dataset pickled to each
    worker in turn, and its module imported in each, as many at once as there are cores."""
    if cost is None:
        return 0.0
    return workers * cost.pickle_seconds + math.ceil(workers / usable_cores) * cost.import_seconds


def inline_epoch_seconds(dataset: DatasetProfile, model: ModelProfile) -> float | None:
    """An epoch made inline as the probes see it, every batch made and then trained on (an upper bound:
    under TensorFlow inline overlaps one batch); None for data without an epoch length."""
    if not dataset.batches_per_epoch:
        return None
    return dataset.batches_per_epoch * (dataset.wall_seconds.median + model.step_seconds.median)


def start_outweighs_epoch(dataset: DatasetProfile, model: ModelProfile) -> bool:
    """Whether one fresh worker's start (``StartCost.per_worker_seconds``) takes more than
    ``START_OUTWEIGHS_EPOCHS`` whole inline epochs. A pool started at every epoch then loses to inline
    however fast its workers make batches, since no batch arrives before a worker has started."""
    epoch = inline_epoch_seconds(dataset, model)
    cost = dataset.start_cost
    return bool(cost and not cost.error and epoch and cost.per_worker_seconds > START_OUTWEIGHS_EPOCHS * epoch)


def predict(
    config: LoaderConfig, machine: MachineProfile, dataset: DatasetProfile, model: ModelProfile, epoch_batches: int
) -> Prediction:
    kind = config.kind
    point = model.pipeline_point(kind)
    inline = model.pipeline_point(PoolKind.INLINE)
    consumer_period = 1.0 / point.steady_batches_per_second
    wall, cpu = batch_cost(config, dataset)
    gil_held = gil_seconds(dataset)
    in_flight = config.effective_parallelism
    if dataset.kind == DataKind.GENERATOR and kind == PoolKind.THREADS:
        in_flight = 1  # threads share one generator, and only one can be inside next() at a time
    limits = {"data code": wall / in_flight, "model and Keras": consumer_period}
    if kind == PoolKind.INLINE:
        # One thread makes a batch, then trains on it: nothing overlaps.
        limits["data code then model"] = wall + consumer_period
    elif kind == PoolKind.PROCESSES:
        transfer_cpu = max(0.0, point.parent_cpu_seconds_per_batch - inline.parent_cpu_seconds_per_batch)
        limits["cores"] = (cpu + point.parent_cpu_seconds_per_batch + transfer_cpu) / machine.usable_cores
    else:
        limits["GIL"] = gil_held + consumer_period
        limits["cores"] = (cpu + point.parent_cpu_seconds_per_batch) / machine.usable_cores
    bound = max(limits, key=limits.get)
    period = limits[bound]
    if kind != PoolKind.PROCESSES:
        # A thread that wants the GIL waits for the holder's stretch, at most
        # one switch interval, as often as the GIL is busy.
        period += min(gil_held, SWITCH_INTERVAL_SECONDS) * min(1.0, gil_held / period)
    fixed = point.fixed_seconds + point.epoch_end_seconds + (wall if config.parallel else 0.0)
    if config.persistent_workers:  # its workers start once per fit, not at every epoch
        fixed = inline.fixed_seconds + point.epoch_end_seconds + wall
    elif kind == PoolKind.PROCESSES:
        threads = model.pipeline_point(PoolKind.THREADS)
        fork_per_worker = max(0.0, point.fixed_seconds - threads.fixed_seconds) / point.workers
        fixed += fork_per_worker * max(0, config.workers - point.workers)
        fixed += start_cost_seconds(dataset.start_cost, config.workers, machine.usable_cores)
    return Prediction(config, period, fixed, point.epoch_end_seconds, epoch_batches / (fixed + epoch_batches * period), bound)


def best_predictions(
    machine: MachineProfile, dataset: DatasetProfile, model: ModelProfile, epoch_batches: int,
    configs: Iterable[LoaderConfig], count: int | None = 3,
) -> list[Prediction]:
    """The ``count`` best-predicted of ``configs`` (all for None); on ties the simplest first.

    Queues of 1 or 2 predict as well as longer ones but leave no slack for
    uneven batches, so ties go to the middle.
    """
    ranked = sorted(
        (predict(c, machine, dataset, model, epoch_batches) for c in configs),
        key=lambda p: (-round(p.epoch_batches_per_second, 1), p.config.simplicity),
    )
    return ranked if count is None else ranked[:count]


def ceiling(machine: MachineProfile, dataset: DatasetProfile, model: ModelProfile, epoch_batches: int) -> Ceiling:
    """Keras's pipeline fed with free data is the ceiling; the data code's cost says how far below it we are."""
    fastest = max(model.pipeline, key=lambda p: p.steady_batches_per_second)
    period = 1.0 / fastest.steady_batches_per_second
    ceiling_rate = epoch_batches / (fastest.fixed_seconds + epoch_batches * period)
    wall, cpu = dataset.wall_seconds.median, dataset.cpu_seconds.median
    factor = wall / period
    cores = (cpu + fastest.parent_cpu_seconds_per_batch) / period
    if factor > 1.1:
        bound = "input-bound"
        verdict = (
            f"input-bound: one producer makes batches {factor:.1f}x slower than the model takes them; "
            f"feeding the model fully takes about {math.ceil(factor)} batches in flight and {cores:.1f} cores "
            f"(this process may use {machine.usable_cores})"
        )
    else:
        bound = "model-bound"
        verdict = (
            f"model-bound: the model and Keras take {period * 1e3:.1f} ms a batch, the data code {wall * 1e3:.1f} ms; "
            "loader settings cannot gain much"
        )
    return Ceiling(ceiling_rate, factor, cores, bound, verdict)


def ceiling_with_measured(limit: Ceiling, trials: tuple[TrialResult, ...]) -> Ceiling:
    """The ceiling, raised to the best measured median when a setting beat the free-data probe.

    The probe feeds Keras free data with one or two workers, a few dozen
    batches at a time, and has its own noise: what a setting reached on this
    machine, the ceiling is at least.
    """
    measured = completed(trials)
    if not measured:
        return limit
    top = max(measured, key=lambda t: t.epoch_batches_per_second.median)
    if top.epoch_batches_per_second.median <= limit.batches_per_second:
        return limit
    return dataclasses.replace(limit, batches_per_second=top.epoch_batches_per_second.median,
                               raised_by=f"{top.config.label()} (n={len(top.windows)} windows)")
