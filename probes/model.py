"""The model's own step time on a batch already in memory: the ceiling.

Duck-typed on ``train_on_batch`` so this module never imports Keras; the
engine hands over a compiled model and a batch in the form Keras expects.
"""

from __future__ import annotations

import os
import time
from typing import Any

from probes.profiles import ModelProfile
from probes.stats import summarize

WARMUP_STEPS = 3
TARGET_PROBE_SECONDS = 0.5
MAX_STEPS = 50


def probe_model(model: Any, batch: tuple, *, description: str, is_default_model: bool) -> ModelProfile:
    """Times ``model.train_on_batch`` after warm-up (the first calls trace the graph).

    Also counts the CPU time of the whole process per step: TensorFlow's own
    threads keep cores busy beyond the step's wall time, and that CPU is not
    available to workers making batches. The kernel's share of that CPU time
    and the page faults per step show an allocator that hands memory back to
    the operating system and takes it again every step
    (docs/keras-behaviours.md, "TensorFlow's malloc setting").
    """
    x, y, sample_weight = (tuple(batch) + (None, None))[:3]
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(x, y, sample_weight=sample_weight)
    steps = []
    deadline = time.perf_counter() + TARGET_PROBE_SECONDS
    cpu_start, faults_start = os.times(), _minor_page_faults()
    while len(steps) < MAX_STEPS and (len(steps) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        model.train_on_batch(x, y, sample_weight=sample_weight)
        steps.append(time.perf_counter() - start)
    cpu_end, faults_end = os.times(), _minor_page_faults()
    user, system = cpu_end.user - cpu_start.user, cpu_end.system - cpu_start.system
    return ModelProfile(
        description=description,
        is_default_model=is_default_model,
        step_seconds=summarize(steps),
        cpu_seconds_per_step=(user + system) / len(steps),
        parameters=int(model.count_params()),
        kernel_cpu_share=system / (user + system) if user + system > 0 else None,
        page_faults_per_step=(faults_end - faults_start) / len(steps) if faults_start is not None else None,
    )


def _minor_page_faults() -> int | None:
    """This process's minor page faults so far (None where ``resource`` does not exist: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
