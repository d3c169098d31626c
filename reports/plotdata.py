"""Plot data, computed before anything is drawn (so it is testable without pixels)."""

from __future__ import annotations

from dataclasses import dataclass

from tuner import engines
from tuner.core import PoolKind, TrialStatus
from tuner.results import Recommendation


@dataclass(frozen=True)
class TrialPoint:
    number: int
    workers: int
    kind: PoolKind
    queue: int
    status: TrialStatus
    throughput: float | None
    spread: float | None
    memory_mib: float | None
    predicted: float | None


@dataclass(frozen=True)
class PlotData:
    points: tuple[TrialPoint, ...]
    best_so_far: tuple[tuple[int, float], ...]
    default_throughput: float | None
    model_ceiling: float
    memory_budget_mib: float | None
    pareto: tuple[tuple[float, float], ...]
    race: tuple[tuple[str, tuple[float, ...]], ...] = ()  # each contender's epoch throughputs, round by round
    race_answer: str = ""
    race_claim: str = ""


def plot_data(recommendation: Recommendation) -> PlotData:
    points = []
    for trial in recommendation.trials:
        config = trial.config
        spread = trial.epoch_batches_per_second
        points.append(
            TrialPoint(
                number=trial.number,
                workers=config.workers,
                kind=config.kind,
                queue=config.max_queue_size,
                status=trial.status,
                throughput=spread.median if spread else None,
                spread=spread.mad if spread else None,
                memory_mib=trial.peak_memory_bytes / 2**20 if trial.peak_memory_bytes else None,
                predicted=trial.predicted_batches_per_second,
            )
        )
    best, running = [], 0.0
    for point in points:
        if point.status == TrialStatus.OK and point.throughput is not None and point.throughput > running:
            running = point.throughput
        if running:
            best.append((point.number, running))
    default = recommendation.default_batches_per_second
    budget = recommendation.memory_budget_bytes
    return PlotData(
        points=tuple(points),
        best_so_far=tuple(best),
        default_throughput=default.median if default else None,
        model_ceiling=recommendation.ceiling.batches_per_second,
        memory_budget_mib=budget / 2**20 if budget else None,
        pareto=pareto_front(points),
        **race_series(recommendation),
    )


def race_series(recommendation: Recommendation) -> dict:
    """The evidence behind the headline: every race contender's epochs, round by round, and the claim."""
    c, epochs, label = recommendation.confirmation, recommendation.race_epochs or {}, engines.label_for(recommendation)
    claim = (f"{label(recommendation.best_tried)} at {c.speedup:.2f}x the defaults\n{c.interval_text()}" if c
             else "")
    return {"race": tuple(epochs.items()), "race_answer": label(recommendation.config), "race_claim": claim}


def pareto_front(points) -> tuple[tuple[float, float], ...]:
    """(memory, throughput) of the trials no other trial beats on both: less memory and more speed."""
    measured = sorted(
        ((p.memory_mib, p.throughput) for p in points if p.status == TrialStatus.OK and p.memory_mib and p.throughput),
        key=lambda pair: (pair[0], -pair[1]),
    )
    front, best = [], 0.0
    for memory, throughput in measured:
        if throughput > best:
            front.append((memory, throughput))
            best = throughput
    return tuple(front)
