"""From a ``Recommendation`` to files: report.html, results.json, trials.csv, windows.csv, summary.md."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import jinja2
import pandas as pd

from reports.plotdata import plot_data
from reports.plots import draw_all
from reports.summary import headline, mib, summary_rows, trained_on
from tuner import engines
from tuner.engines import registry
from tuner.results import Recommendation

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def write_reports(recommendation: Recommendation, folder: str | Path) -> dict[str, Path]:
    """Writes the five files into ``folder`` (created if needed) and returns their paths. Each is written
    whole or not at all: a run killed while writing leaves the previous file, never half of one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "csv": folder / "trials.csv",
        "windows": folder / "windows.csv",
        "markdown": folder / "summary.md",
        "html": folder / "report.html",
    }
    _write_atomically(paths["json"], recommendation.to_json())
    _write_atomically(paths["csv"], trials_frame(recommendation).to_csv(index=False))
    _write_atomically(paths["windows"], windows_frame(recommendation).to_csv(index=False))
    _write_atomically(paths["markdown"], render_markdown(recommendation))
    _write_atomically(paths["html"], render_html(recommendation))
    return paths


def render_markdown(r: Recommendation) -> str:
    """The answer to paste into a pull request or an issue: the headline, the summary rows, the reasons,
    the warnings, the code and where the numbers came from."""
    cell = lambda text: text.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [f"### tune-loader: {r.dataset.class_name} ({trained_on(r)})", "", f"**{headline(r)}**", "",
             "| | |", "|---|---|"]
    lines += [f"| {row.label} | {cell(row.value)} |" for row in summary_rows(r)]
    for title, items in (("Why", r.reasons), ("Warnings", r.warnings)):
        if items:
            lines += ["", f"{title}:", ""] + [f"- {item}" for item in items]
    lines += ["", "```python", engines.code_blocks(r)[0].code, "```"]
    if p := r.provenance:
        digest = f", sha256 {p.source_sha256[:12]}" if p.source_sha256 else ""
        lines += ["", f"<sub>tune-loader {p.tune_loader_version}, {p.started_utc}, {p.source}{digest}; "
                      f"{r.machine.fingerprint}</sub>"]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    """Writes beside ``path`` and renames over it (a rename within a folder is atomic)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


# A trial's row: these, with the engine's own knobs by name after "origin" (``knob_columns``).
TRIAL_COLUMNS = ("trial", "origin", "native_threads", "status", "epoch_batches_per_s_median", "epoch_batches_per_s_mad",
                 "predicted_batches_per_s", "windows", "steady_batches_per_s", "fixed_seconds_per_epoch",
                 "peak_pss_mib", "wall_seconds", "stop_kind", "reason")
WINDOW_COLUMNS = ("trial", "window", "batches", "epoch_seconds", "steady_batches_per_s", "fixed_seconds")


def knob_columns(recommendation: Recommendation) -> list[str]:
    """The engine's knobs by the names its code takes (``workers`` ..., or ``num_workers`` ...)."""
    return [knob.name for knob in registry.knob_set(recommendation.engine, recommendation.backend).knobs]


def trials_frame(recommendation: Recommendation) -> pd.DataFrame:
    """One row per trial and one value per column, the engine's knobs by name, with a header even when
    nothing was timed (--quick)."""
    knobs = registry.knob_set(recommendation.engine, recommendation.backend)
    rows = []
    for trial in recommendation.trials:
        spread = trial.epoch_batches_per_second
        rows.append({
            "trial": trial.number, "origin": str(trial.origin), **knobs.values(trial.config),
            "native_threads": trial.config.native_threads, "status": str(trial.status),
            "epoch_batches_per_s_median": spread.median if spread else None,
            "epoch_batches_per_s_mad": spread.mad if spread else None,
            "predicted_batches_per_s": trial.predicted_batches_per_second, "windows": len(trial.windows),
            "steady_batches_per_s": trial.steady_batches_per_second, "fixed_seconds_per_epoch": trial.fixed_seconds,
            "peak_pss_mib": trial.peak_memory_bytes / 2**20 if trial.peak_memory_bytes else None,
            "wall_seconds": trial.wall_seconds, "stop_kind": str(trial.stop_kind or ""), "reason": trial.reason})
    columns = [*TRIAL_COLUMNS[:2], *(knob.name for knob in knobs.knobs), *TRIAL_COLUMNS[2:]]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"native_threads": "Int64"})  # blank for the libraries' default, not NaN beside floats


def windows_frame(recommendation: Recommendation) -> pd.DataFrame:
    """One row per timed window of every trial: the raw timings behind each trial's median."""
    rows = [(trial.number, index, w.batches, w.epoch_seconds, w.steady_batches_per_second, w.fixed_seconds)
            for trial in recommendation.trials for index, w in enumerate(trial.windows)]
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows with missing values as None (pandas would hand the template NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def render_html(recommendation: Recommendation) -> str:
    """One self-contained page: every figure inlined as a base64 PNG, every string escaped.

    A ``--quick`` answer timed nothing, so it has no figures (they would be empty axes).
    """
    figures = {
        name: "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        for name, svg in draw_all(plot_data(recommendation)).items()
    } if recommendation.measured else {}
    return _TEMPLATES.get_template("report.html.j2").render(
        r=recommendation,
        headline=headline(recommendation),
        trained_on=trained_on(recommendation),
        rows=summary_rows(recommendation),
        figures=figures,
        code_blocks=engines.code_blocks(recommendation),
        trials=_records(trials_frame(recommendation)),
        knob_columns=knob_columns(recommendation),
        race_rows=race_rows(recommendation),
        mib=mib,
    )


def race_rows(r: Recommendation) -> list[dict[str, str]]:
    """The race table: each setting's per-round throughputs, their mean, and why it left (if it did)."""
    left = r.race_left or {}
    return [{"label": label, "rounds": str(len(epochs)), "epochs": ", ".join(f"{v:.1f}" for v in epochs),
             "mean": f"{sum(epochs) / len(epochs):.1f}", "left": left.get(label, "raced to the end")}
            for label, epochs in (r.race_epochs or {}).items() if epochs]
