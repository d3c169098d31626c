"""The answer's summary, built once: the terminal table and the HTML card both render these rows."""

from __future__ import annotations

from dataclasses import dataclass

from tuner.core import KERAS_DEFAULTS
from tuner import engines
from tuner.engines import backend as backends
from tuner.engines import registry
from tuner.results import Recommendation
from tuner.search import decision


@dataclass(frozen=True)
class SummaryRow:
    label: str
    value: str


def headline(r: Recommendation) -> str:
    """The best measured option first: tf.data, or the move to Keras 3, when it measured faster than every
    Keras-loader setting with an interval above 1, and then the best loader setting as the fallback."""
    label = engines.label_for(r)
    if not r.measured:
        return f"Predicted best: {label(r.config)}"
    k = r.keras3
    if k and k.ratio_low is not None and k.ratio_low > 1.0:
        return (f"Recommended: move to a Keras 3 PyDataset with {k.config.label()}, {k.ratio:.2f}x this tf-keras "
                f"answer [{k.ratio_low:.2f}, {k.ratio_high:.2f}]; staying on tf-keras: {label(r.config)}")
    if r.tf_data_is_faster:
        return (f"Recommended: a tf.data pipeline over your batch code, {r.tf_data.speedup:.2f}x the best Keras "
                f"loader setting, {r.tf_data.interval_text()}; without tf.data: {label(r.config)}")
    return f"Recommended: {label(r.config)}"


def trained_on(r: Recommendation) -> str:
    """The Keras and its backend, e.g. ``keras3 on JAX``."""
    return f"{r.engine} on {backends.label(r.backend)}"


def summary_rows(r: Recommendation) -> tuple[SummaryRow, ...]:
    """Label and plain text of each summary line, in order; lines without data are left out."""
    rate = r.recommended_batches_per_second
    rows = [("Settings", r.settings_text())]
    if rate:
        samples = f", {r.samples_per_second:,.0f} samples/s" if r.samples_per_second else ""
        rows.append(("Throughput", f"{rate.median:.1f} ± {rate.mad:.1f} batches/s (median ± MAD of the race's "
                                   f"epochs, n={rate.count}){samples}"))
    rows.append(("Speed-up vs defaults", speedup_text(r)))
    if waiting := waiting_text(r):
        rows.append(("Waiting for input", waiting))
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
    if registry.entry(r.engine).feeds_a_pydataset:
        rows.append(("Backend", backends.what_it_changes(r.backend, r.machine.start_method)))
    rows.append(("Model", r.model.description))
    rows.append(("Epoch modelled", f"{r.epoch_batches} batches; the screen timed one epoch of about 0.5 s per "
                                   f"setting ({r.window_batches} batches for the defaults), the race fits of several"))
    if r.measured:
        raced = len(r.race_epochs or {})
        rows.append(("Search", f"{len(r.trials)} settings screened and {raced} raced in {r.tuning_seconds:.0f} s; "
                               f"the screen ended because {r.search_stopped_because}; the race "
                               f"{'settled' if r.race_settled else 'did not settle'}: {r.race_stopped_because}"))
    return tuple(SummaryRow(label, value) for label, value in rows)


def speedup_text(r: Recommendation) -> str:
    c, label = r.confirmation, engines.label_for(r)
    if c:
        kept = "" if r.config == r.best_tried else f" for {label(r.best_tried)}: defaults kept"
        odds = r.decision.probability_faster if r.decision else None
        undecided = "" if decision.decided(c) or odds is None else (
            f"; not decided: faster than the defaults with probability {odds:.0%}")
        stopped = "" if r.race_settled or not r.race_stopped_because else (
            f" (the race stopped: {r.race_stopped_because})")
        return f"{c.speedup:.2f}x, {c.interval_text()}{kept}{undecided}{stopped}"
    if not r.measured:
        return "not measured (--quick: nothing was timed)"
    if r.unconfirmed:
        return f"{label(r.best_tried)} not confirmed side by side (see the warnings): defaults kept"
    return "1.00x: the defaults were the best measured"


def waiting_text(r: Recommendation) -> str | None:
    """What TensorFlow's input-pipeline analyzer leads with: the share of the time the model waited for its
    next batch, with the defaults and with this setting (1 - model step x epoch throughput, the step
    measured alone on an in-memory batch), and what that makes of an epoch."""
    rate, default = r.recommended_batches_per_second, r.default_batches_per_second
    if not (rate and default) or r.config == KERAS_DEFAULTS:
        return None
    step = r.model.step_seconds.median
    waiting = {name: max(0.0, 1.0 - step * spread.median) for name, spread in (("defaults", default), ("this", rate))}
    return (f"{waiting['defaults']:.0%} of the time with the defaults, {waiting['this']:.0%} with this setting "
            f"(model step {1000 * step:.1f} ms); an epoch of {r.epoch_batches} batches goes from "
            f"{r.epoch_batches / default.median:.2f} s to {r.epoch_batches / rate.median:.2f} s")


def ceiling_text(r: Recommendation) -> str:
    rate = r.recommended_batches_per_second
    raised = f", raised to what {r.ceiling.raised_by} measured" if r.ceiling.raised_by else ""
    reached = f": this setting reaches {100 * rate.median / r.ceiling.batches_per_second:.0f}%" if rate else ""
    return f"{r.ceiling.batches_per_second:.1f} batches/s (Keras fed with free data{raised}){reached}"


def mib(value: int | None) -> str:
    return f"{value / 2**20:,.0f} MiB" if value else "n/a"
