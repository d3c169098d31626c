"""The answer's summary, built once: the terminal table and the HTML card both render these rows."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.results import Recommendation


@dataclass(frozen=True)
class SummaryRow:
    label: str
    value: str


def headline(r: Recommendation) -> str:
    return f"{'Recommended' if r.measured else 'Predicted best'}: {r.config.label()}"


def summary_rows(r: Recommendation) -> tuple[SummaryRow, ...]:
    """Label and plain text of each summary line, in order; lines without data are left out."""
    rate = r.recommended_batches_per_second
    rows = [("Settings", r.config.as_kwargs())]
    if rate:
        samples = f", {r.samples_per_second:,.0f} samples/s" if r.samples_per_second else ""
        rows.append(("Throughput", f"{rate.median:.1f} ± {rate.mad:.1f} batches/s (median ± MAD of the race's "
                                   f"epochs, n={rate.count}){samples}"))
    rows.append(("Speed-up vs defaults", speedup_text(r)))
    predicted_speedup = r.predicted_batches_per_second / r.predicted_default_batches_per_second
    rows.append(("Predicted", f"{r.predicted_batches_per_second:.1f} batches/s, {predicted_speedup:.2f}x the "
                              "defaults (analytic model)"))
    if r.measured:
        rows.append(("Peak memory", f"{mib(r.peak_memory_bytes)} (defaults {mib(r.default_peak_memory_bytes)}; "
                                    f"budget {mib(r.memory_budget_bytes)}; PSS of the process tree)"))
    rows.append(("Ceiling", ceiling_text(r)))
    rows.append(("Verdict", r.ceiling.verdict))
    if r.tf_data:
        t = r.tf_data
        rows.append(("tf.data", f"{t.speedup:.2f}x the recommended setting, {t.interval_text()}"))
    rows.append(("Model", r.model.description))
    rows.append(("Epoch modelled", f"{r.epoch_batches} batches; trials timed epochs of about 1 s "
                                   f"({r.window_batches} batches for the defaults)"))
    if r.measured:
        stop = f"; stopped because {r.search_stopped_because}" if r.search_stopped_because else ""
        rows.append(("Trials", f"{len(r.trials)} in {r.tuning_seconds:.0f} s (pruning saved "
                               f"~{r.pruning_saved_seconds:.0f} s){stop}"))
    return tuple(SummaryRow(label, value) for label, value in rows)


def speedup_text(r: Recommendation) -> str:
    c = r.confirmation
    if c:
        kept = "" if r.config == r.best_tried else f" for {r.best_tried.label()}: no speed-up shown, defaults kept"
        undecided = "" if r.config == r.best_tried or not r.race_stopped_because else (
            f" (undecided: {r.race_stopped_because})")
        return f"{c.speedup:.2f}x, {c.interval_text()}{kept}{undecided}"
    if not r.measured:
        return "not measured (--quick: nothing was timed)"
    if r.unconfirmed:
        return f"{r.best_tried.label()} not confirmed side by side (see the warnings): defaults kept"
    return "1.00x: the defaults were the best measured"


def ceiling_text(r: Recommendation) -> str:
    rate = r.recommended_batches_per_second
    raised = f", raised to what {r.ceiling.raised_by} measured" if r.ceiling.raised_by else ""
    reached = f": this setting reaches {100 * rate.median / r.ceiling.batches_per_second:.0f}%" if rate else ""
    return f"{r.ceiling.batches_per_second:.1f} batches/s (Keras fed with free data{raised}){reached}"


def mib(value: int | None) -> str:
    return f"{value / 2**20:,.0f} MiB" if value else "n/a"
