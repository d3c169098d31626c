"""From a ``Recommendation`` to files: report.html, results.json, trials.csv."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import jinja2
import pandas as pd

from reports.plotdata import plot_data
from reports.plots import draw_all
from reports.summary import headline, mib, summary_rows
from tuner.results import Recommendation

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


def write_reports(recommendation: Recommendation, folder: str | Path) -> dict[str, Path]:
    """Writes the three files into ``folder`` (created if needed) and returns their paths. Each is written
    whole or not at all: a run killed while writing leaves the previous file, never half of one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "csv": folder / "trials.csv",
        "html": folder / "report.html",
    }
    _write_atomically(paths["json"], recommendation.to_json())
    _write_atomically(paths["csv"], trials_frame(recommendation).to_csv(index=False))
    _write_atomically(paths["html"], render_html(recommendation))
    return paths


def _write_atomically(path: Path, text: str) -> None:
    """Writes beside ``path`` and renames over it (a rename within a folder is atomic)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def trials_frame(recommendation: Recommendation) -> pd.DataFrame:
    """One row per trial, with the raw window throughputs kept beside the median."""
    rows = []
    for trial in recommendation.trials:
        spread = trial.epoch_batches_per_second
        rows.append(
            {
                "trial": trial.number,
                "origin": trial.origin,
                "workers": trial.config.workers,
                "use_multiprocessing": trial.config.use_multiprocessing,
                "max_queue_size": trial.config.max_queue_size,
                "status": trial.status,
                "epoch_batches_per_s_median": spread.median if spread else None,
                "epoch_batches_per_s_mad": spread.mad if spread else None,
                "predicted_batches_per_s": trial.predicted_batches_per_second,
                "windows": len(trial.windows),
                "window_epoch_seconds": " ".join(f"{w.epoch_seconds:.4f}" for w in trial.windows),
                "steady_batches_per_s": trial.steady_batches_per_second,
                "fixed_seconds_per_epoch": trial.fixed_seconds,
                "peak_pss_mib": trial.peak_memory_bytes / 2**20 if trial.peak_memory_bytes else None,
                "wall_seconds": trial.wall_seconds,
                "reason": trial.reason,
            }
        )
    return pd.DataFrame(rows)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows with missing values as None (pandas would hand the template NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def render_html(recommendation: Recommendation) -> str:
    """One self-contained page: every figure inlined as a base64 PNG, every string escaped.

    A ``--quick`` answer timed nothing, so it has no figures (they would be empty axes).
    """
    figures = {
        name: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        for name, png in draw_all(plot_data(recommendation)).items()
    } if recommendation.measured else {}
    return _TEMPLATES.get_template("report.html.j2").render(
        r=recommendation,
        headline=headline(recommendation),
        rows=summary_rows(recommendation),
        figures=figures,
        trials=_records(trials_frame(recommendation)),
        mib=mib,
    )
