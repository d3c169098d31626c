"""Draws the report's figures from ``PlotData`` (matplotlib, Agg backend, PNG bytes)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from reports.plotdata import PlotData  # noqa: E402

COLORS = {"inline": "#7f7f7f", "threads": "#1f77b4", "processes": "#d62728"}
STATUS_MARKERS = {"ok": "o", "pruned": "v", "failed": "x", "infeasible": "X"}


def draw_all(data: PlotData) -> dict[str, bytes]:
    """Every figure of the report, by name."""
    return {
        "history": _png(_history(data)),
        "by_workers": _png(_by_workers(data)),
        "memory": _png(_memory(data)),
        "pareto": _png(_pareto(data)),
        "predicted": _png(_predicted(data)),
    }


def _history(data: PlotData):
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for point in data.points:
        if point.throughput is None:
            continue
        axes.errorbar(
            point.number, point.throughput, yerr=point.spread or 0, fmt=STATUS_MARKERS[point.status],
            color=COLORS[point.kind], alpha=0.85, capsize=2,
        )
    if data.best_so_far:
        numbers, values = zip(*data.best_so_far)
        axes.step(numbers, values, where="post", color="black", linewidth=1, label="best so far")
    _reference_lines(axes, data)
    axes.set_xlabel("trial")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers, never 0.5
    axes.set_ylabel("epoch throughput (batches/s)")
    axes.set_title("Throughput of every trial (median ± MAD over windows)")
    _legend(axes)
    return figure


def _by_workers(data: PlotData):
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for kind in ("inline", "threads", "processes"):
        points = sorted((p for p in data.points if p.kind == kind and p.throughput is not None), key=lambda p: p.workers)
        if points:
            axes.errorbar(
                [p.workers for p in points], [p.throughput for p in points], yerr=[p.spread or 0 for p in points],
                fmt="o", color=COLORS[kind], label=kind, capsize=2, alpha=0.85,
            )
    _reference_lines(axes, data)
    axes.set_xlabel("workers")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("epoch throughput (batches/s)")
    axes.set_title("Throughput by workers: threads and processes")
    _legend(axes)
    return figure


def _memory(data: PlotData):
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for kind in ("inline", "threads", "processes"):
        points = [p for p in data.points if p.kind == kind and p.memory_mib is not None]
        if points:
            axes.scatter(
                [p.workers for p in points], [p.memory_mib for p in points], color=COLORS[kind], label=kind,
                s=[12 + 16 * p.queue**0.5 for p in points], alpha=0.7,
            )
    highest = max((p.memory_mib for p in data.points if p.memory_mib), default=0)
    if data.memory_budget_mib and data.memory_budget_mib < 2 * highest:
        axes.axhline(data.memory_budget_mib, color="#d62728", linestyle=":", label="memory budget")
    elif data.memory_budget_mib:
        axes.annotate(f"budget {data.memory_budget_mib:,.0f} MiB (off scale)", (0.01, 0.95), xycoords="axes fraction", fontsize=8)
    axes.set_xlabel("workers (marker size grows with max_queue_size)")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("peak PSS of process tree (MiB)")
    axes.set_title("Memory: training process and its workers, shared pages counted once")
    _legend(axes)
    return figure


def _pareto(data: PlotData):
    figure, axes = plt.subplots(figsize=(7, 3.6))
    for kind in ("inline", "threads", "processes"):
        points = [p for p in data.points if p.kind == kind and p.memory_mib and p.throughput and p.status == "ok"]
        if points:
            axes.scatter([p.memory_mib for p in points], [p.throughput for p in points], color=COLORS[kind], label=kind, alpha=0.7)
    if data.pareto:
        memory, throughput = zip(*data.pareto)
        axes.step(memory, throughput, where="post", color="black", linewidth=1, label="Pareto front")
    axes.set_xlabel("peak PSS of process tree (MiB)")
    axes.set_ylabel("epoch throughput (batches/s)")
    axes.set_title("Throughput against memory: the front is what each MiB can buy")
    _legend(axes)
    return figure


def _predicted(data: PlotData):
    figure, axes = plt.subplots(figsize=(7, 3.6))
    pairs = [p for p in data.points if p.predicted and p.throughput and p.status == "ok"]
    for kind in ("inline", "threads", "processes"):
        points = [p for p in pairs if p.kind == kind]
        if points:
            axes.scatter([p.predicted for p in points], [p.throughput for p in points], color=COLORS[kind], label=kind, alpha=0.8)
    if pairs:
        top = max(max(p.predicted, p.throughput) for p in pairs) * 1.05
        axes.plot([0, top], [0, top], color="black", linewidth=1, label="measured = predicted")
        axes.fill_between([0, top], [0, 0.75 * top], [0, 1.25 * top], color="#cccccc", alpha=0.3, label="within 25%")
    axes.set_xlabel("predicted by the analytic model (batches/s)")
    axes.set_ylabel("measured (batches/s)")
    axes.set_title("Predicted against measured, every completed trial")
    _legend(axes)
    return figure


def _reference_lines(axes, data: PlotData) -> None:
    if data.default_throughput:
        axes.axhline(data.default_throughput, color="#7f7f7f", linestyle="--", linewidth=1, label="Keras defaults")
    top = max((p.throughput for p in data.points if p.throughput), default=0)
    if data.model_ceiling < 3 * max(top, 1e-9):
        axes.axhline(data.model_ceiling, color="#2ca02c", linestyle="-.", linewidth=1, label="ceiling (free data)")


def _legend(axes) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, loc="best")
    axes.grid(alpha=0.3)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
