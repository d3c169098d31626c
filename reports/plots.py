"""Draws the report's figures from ``PlotData`` (matplotlib, Agg backend, SVG bytes).

SVG, with its text kept as text, stays sharp on any screen and scales with the page: a phone shows the
whole figure with text it can still render, where a shrunk PNG's text would blur.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # text as text, not paths: smaller and selectable
# 6 inches draw 576 px wide; a phone shows them at about 380 px, where 12 pt text is still about 10 px.
matplotlib.rcParams["font.size"] = 12
FIGURE_SIZE = (6, 3.8)
LEGEND_FONT_SIZE = 9
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from reports.plotdata import PlotData, TrialPoint  # noqa: E402
from tuner.core import PoolKind, TrialStatus  # noqa: E402

COLORS = {PoolKind.INLINE: "#7f7f7f", PoolKind.THREADS: "#1f77b4", PoolKind.PROCESSES: "#d62728"}
PARETO_MIN_POINTS = 3
STATUS_MARKERS = {TrialStatus.OK: "o", TrialStatus.PRUNED: "v", TrialStatus.FAILED: "x", TrialStatus.INFEASIBLE: "X"}


def draw_all(data: PlotData) -> dict[str, bytes]:
    """Every figure of the report, by name."""
    draw = {"history": _history, "race": _race, "by_workers": _by_workers, "memory": _memory, "pareto": _pareto,
            "predicted": _predicted}
    if len(_pareto_points(data)) < PARETO_MIN_POINTS:
        del draw["pareto"]  # two points make a line, not a trade-off
    return {name: _svg(figure(data)) for name, figure in draw.items()}


def _history(data: PlotData):
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
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
    _label(axes, "trial", "epoch throughput (batches/s)", "Every trial: median ± MAD over windows")
    _explain_markers(axes, data)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers, never 0.5
    return figure


def _explain_markers(axes, data: PlotData) -> None:
    """A legend of what the history's colours (pool kind) and shapes (trial status) mean, for those shown."""
    shown = [p for p in data.points if p.throughput is not None]
    kinds = [kind for kind in PoolKind if any(p.kind == kind for p in shown)]
    statuses = [status for status in STATUS_MARKERS if any(p.status == status for p in shown)]
    handles = [Line2D([], [], color=COLORS[kind], marker="s", linestyle="", label=str(kind)) for kind in kinds]
    handles += [Line2D([], [], color="#444", marker=STATUS_MARKERS[s], linestyle="", label=str(s)) for s in statuses]
    lines, labels = axes.get_legend_handles_labels()
    axes.legend(handles=lines + handles, labels=labels + [h.get_label() for h in handles], fontsize=LEGEND_FONT_SIZE, loc="best",
                ncol=2)


def _race(data: PlotData):
    """The evidence behind the headline: each contender's epoch throughput in every race round it ran."""
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    markers = "osD^v<>p"
    for index, (label, epochs) in enumerate(data.race):
        answer = label == data.race_answer
        axes.plot(range(1, len(epochs) + 1), epochs, marker=markers[index % len(markers)],
                  linewidth=2.2 if answer else 1, label=f"{label} (the answer)" if answer else label)
    if data.race:
        axes.set_ylim(bottom=0)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        axes.annotate("No race was run", (0.5, 0.5), xycoords="axes fraction", ha="center")
    _label(axes, "race round (every contender back to back in each)", "epoch throughput (batches/s)",
           f"The race: {data.race_claim}" if data.race_claim else "The race")
    return figure


def _by_workers(data: PlotData):
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for kind, points in _per_kind(data, lambda p: p.throughput is not None):
        points = sorted(points, key=lambda p: p.workers)
        axes.errorbar(
            [p.workers for p in points], [p.throughput for p in points], yerr=[p.spread or 0 for p in points],
            fmt="o", color=COLORS[kind], label=kind, capsize=2, alpha=0.85,
        )
    _reference_lines(axes, data)
    _label(axes, "workers", "epoch throughput (batches/s)", "Throughput by workers: threads and processes")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def _memory(data: PlotData):
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    for kind, points in _per_kind(data, lambda p: p.memory_mib is not None):
        axes.scatter([p.workers for p in points], [p.memory_mib for p in points], color=COLORS[kind], label=kind,
                     s=[12 + 16 * p.queue**0.5 for p in points], alpha=0.7)
    highest = max((p.memory_mib for p in data.points if p.memory_mib), default=0)
    if data.memory_budget_mib and data.memory_budget_mib < 2 * highest:
        axes.axhline(data.memory_budget_mib, color="#d62728", linestyle=":", label="memory budget")
    elif data.memory_budget_mib:
        axes.annotate(f"budget {data.memory_budget_mib:,.0f} MiB (off scale)", (0.01, 0.95), xycoords="axes fraction", fontsize=LEGEND_FONT_SIZE)
    _label(axes, "workers (marker size grows with max_queue_size)", "peak PSS of process tree (MiB)",
           "Memory: trainer and workers, shared pages once")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def _pareto_points(data: PlotData) -> list[TrialPoint]:
    return [p for p in data.points if p.memory_mib and p.throughput and p.status == TrialStatus.OK]


def _pareto(data: PlotData):
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    eligible = _pareto_points(data)
    for kind, points in _per_kind(data, lambda p: p in eligible):
        axes.scatter([p.memory_mib for p in points], [p.throughput for p in points], color=COLORS[kind], label=kind, alpha=0.7)
    if data.pareto:
        memory, throughput = zip(*data.pareto)
        axes.step(memory, throughput, where="post", color="black", linewidth=1, label="Pareto front")
    axes.set_xlim(left=0)  # from zero: two near-equal points must not look far apart
    axes.set_ylim(bottom=0)
    _label(axes, "peak PSS of process tree (MiB)", "epoch throughput (batches/s)",
           "Throughput against memory (Pareto front)")
    return figure


def _predicted(data: PlotData):
    figure, axes = plt.subplots(figsize=FIGURE_SIZE)
    measured = lambda p: p.predicted and p.throughput and p.status == TrialStatus.OK  # noqa: E731
    for kind, points in _per_kind(data, measured):
        axes.scatter([p.predicted for p in points], [p.throughput for p in points], color=COLORS[kind], label=kind, alpha=0.8)
    pairs = [p for p in data.points if measured(p)]
    if pairs:
        top = max(max(p.predicted, p.throughput) for p in pairs) * 1.05
        axes.plot([0, top], [0, top], color="black", linewidth=1, label="measured = predicted")
        axes.fill_between([0, top], [0, 0.75 * top], [0, 1.25 * top], color="#cccccc", alpha=0.3, label="within 25%")
    _label(axes, "predicted by the analytic model (batches/s)", "measured (batches/s)",
           "Predicted against measured, completed trials")
    return figure


def _per_kind(data: PlotData, keep: Callable[[TrialPoint], object]) -> list[tuple[PoolKind, list[TrialPoint]]]:
    """The kept points of each pool kind that has any, in a fixed order so colours and legends agree."""
    groups = [(kind, [p for p in data.points if p.kind == kind and keep(p)]) for kind in PoolKind]
    return [(kind, points) for kind, points in groups if points]


def _label(axes, x: str, y: str, title: str) -> None:
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    axes.set_title(title)
    _legend(axes)


def _reference_lines(axes, data: PlotData) -> None:
    if data.default_throughput:
        axes.axhline(data.default_throughput, color="#7f7f7f", linestyle="--", linewidth=1, label="Keras defaults")
    top = max((p.throughput for p in data.points if p.throughput), default=0)
    if data.model_ceiling < 3 * max(top, 1e-9):
        axes.axhline(data.model_ceiling, color="#2ca02c", linestyle="-.", linewidth=1, label="ceiling (free data)")


def _legend(axes) -> None:
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=LEGEND_FONT_SIZE, loc="best")
    axes.grid(alpha=0.3)


def _svg(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    return buffer.getvalue()
