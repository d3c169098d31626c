"""From a ``TrainingOutcome`` (``tuner.fit``) to files: training.json, summary.md and report.html, written as
the CLI's report is (``write._write_atomically``), with the sentences built here from the outcome's values."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from reports.write import _TEMPLATES, _write_atomically
from tuner.engines import registry
from tuner.results import EpochRole, TrainingOutcome


def headline(o: TrainingOutcome) -> str:
    """What training ran on, and how sure the claim against the user's own setting is."""
    label = registry.knob_set(o.engine, o.backend).label
    ran = f"Trained {len([e for e in o.epochs if e.role != EpochRole.FAILED])} epochs; the race chose {label(o.chosen)}"
    if o.chosen == o.baseline:
        return ran + ", the setting your data was built with."
    if o.claim is None:
        return ran + ". " + _floor_text(o, label)
    return ran + f": {o.claim.speedup:.2f}x your own setting ({label(o.baseline)}), {o.claim.interval_text()}."


def _floor_text(o: TrainingOutcome, label) -> str:
    """Your own setting did not race: what its data alone, read in the screen, says of its epochs (a floor:
    an epoch is never faster than its data) against the answer's trained epochs."""
    own = next((s for s in o.screen if s.config == o.baseline and not s.reason), None)
    trained = [e.seconds for e in o.epochs if e.config == o.chosen and e.role in (EpochRole.RACE, EpochRole.TRAIN)]
    if own is None or not trained:
        return f"Your own setting ({label(o.baseline)}) did not race, so no gain over it is claimed."
    floor, answer = o.epoch_batches / own.batches_per_second, statistics.median(trained)
    return (f"Your own setting ({label(o.baseline)}) did not race: its data alone read at "
            f"{own.batches_per_second:.1f} batches/s ({own.batches} batches), so its epochs take at least "
            f"{floor:.1f} s, against {answer:.2f} s (median of {len(trained)} epochs) under the answer: at least "
            f"{floor / answer:.1f}x.")


def epoch_rows(o: TrainingOutcome) -> list[dict[str, str]]:
    label = registry.knob_set(o.engine, o.backend).label
    return [{"epoch": str(e.epoch + 1) if e.epoch >= 0 else "", "setting": label(e.config), "role": str(e.role),
             "seconds": "" if math.isnan(e.seconds) else f"{e.seconds:.2f}",
             "batches_per_s": "" if math.isnan(e.seconds) else f"{o.epoch_batches / e.seconds:.1f}",
             "validation": "" if e.validation_seconds is None else f"{e.validation_seconds:.2f}"}
            for e in o.epochs]


def facts(o: TrainingOutcome) -> list[tuple[str, str]]:
    """The summary rows: each number with the count it rests on."""
    label = registry.knob_set(o.engine, o.backend).label
    trained = [e.seconds for e in o.epochs if e.role == EpochRole.TRAIN]
    rows = [("Setting", ", ".join(f"{k}={v!r}" for k, v in o.knobs.items())),
            ("Contenders from", f"the stored study {o.candidates_from}" if o.candidates_from else
             f"a screen of {len(o.screen)} settings, data read alone"),
            ("Exploration", f"{o.explored} of {o.bound} epochs allowed ran a setting other than the best known"),
            ("Race ended", o.race_stopped_because or "no race: one contender")]
    if trained:
        rows.append(("Epoch after the race", f"{statistics.median(trained):.2f} s median of {len(trained)} epochs "
                                             f"under {label(o.chosen)}"))
    validation = [e.validation_seconds for e in o.epochs if e.validation_seconds is not None]
    if validation:
        rows.append(("Validation pass", f"{statistics.median(validation):.2f} s median of {len(validation)} epochs, "
                                        "inside each epoch's time; its loader's knobs are as you set them"))
    rows.append(("Setup", f"{o.setup_seconds:.1f} s before the first epoch (probe and screen)"))
    return rows


def render_markdown(o: TrainingOutcome) -> str:
    lines = [f"### tune-loader (tuner.fit): {o.dataset_name} ({o.engine}, {o.backend})", "", f"**{headline(o)}**", ""]
    lines += [f"- {name}: {value}" for name, value in facts(o)]
    lines += ["", "| epoch | setting | role | seconds | batches/s | validation s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['epoch']} | {r['setting']} | {r['role']} | {r['seconds']} | {r['batches_per_s']} | "
              f"{r['validation']} |" for r in epoch_rows(o)]
    return "\n".join(lines) + "\n"


def write_training_report(outcome: TrainingOutcome, folder: str | Path) -> dict[str, Path]:
    """Writes training.json, summary.md and report.html into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "training.json", "markdown": folder / "summary.md", "html": folder / "report.html"}
    label = registry.knob_set(outcome.engine, outcome.backend).label
    _write_atomically(paths["json"], outcome.to_json())
    _write_atomically(paths["markdown"], render_markdown(outcome))
    _write_atomically(paths["html"], _TEMPLATES.get_template("training.html.j2").render(
        o=outcome, headline=headline(outcome), facts=facts(outcome), epochs=epoch_rows(outcome),
        screen=[(label(s.config), s.reason or f"{s.batches_per_second:.1f}", s.batches) for s in outcome.screen],
        left=sorted(outcome.race_left.items())))
    return paths
