"""The native thread pools (BLAS, OpenMP) the data code runs on, and what one thread does to its batches.

Each worker, thread or process, shares its process's BLAS and OpenMP pools, which start one thread per
core: two workers on two cores can run four busy threads, and OpenBLAS's spinning threads make such
oversubscription costly. threadpoolctl finds and limits the BLAS libraries (OpenBLAS, MKL, BLIS,
FlexiBLAS) and OpenMP runtimes (libgomp, libiomp, libomp) loaded in the process. It cannot see pools that
thread on their own: TensorFlow's and XLA's intra-op pools, OpenCV's (``cv2.setNumThreads``), Rayon in
Hugging Face tokenizers (``RAYON_NUM_THREADS``), numexpr, TBB.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from probes.profiles import NativePools

BATCHES_PER_SIDE = 3


def probe_native_threads(make_batch: Callable[[int], Any], indices: list[int]) -> NativePools | None:
    """The pools with more than one thread after a batch ran (code may load a library on first use), and
    batches timed with them at that size and at one thread, alternating; None when there is no such pool."""
    from threadpoolctl import ThreadpoolController

    try:
        make_batch(indices[0])
    except StopIteration:
        return None
    controller = ThreadpoolController()
    pools = [lib for lib in controller.info() if lib["num_threads"] > 1]
    if not pools:
        return None
    default, one = [], []
    try:
        for index in (indices * BATCHES_PER_SIDE)[:BATCHES_PER_SIDE]:
            default.append(_timed(make_batch, index))
            with controller.limit(limits=1):
                one.append(_timed(make_batch, index))
    except StopIteration:  # a short generator ran out: nothing to compare, so the knob is not searched
        return None
    return NativePools(
        pools=tuple(f"{lib['internal_api']} {lib.get('version') or ''} ({lib['user_api']}, "
                    f"{lib['num_threads']} threads)".replace("  ", " ") for lib in pools),
        default_threads=max(lib["num_threads"] for lib in pools),
        default_seconds=statistics.median(wall for wall, _ in default),
        default_cpu_seconds=statistics.median(cpu for _, cpu in default),
        one_thread_seconds=statistics.median(wall for wall, _ in one),
        one_thread_cpu_seconds=statistics.median(cpu for _, cpu in one),
        batches=len(default),
    )


def _timed(make_batch: Callable[[int], Any], index: int) -> tuple[float, float]:
    """Wall seconds and the whole process's CPU seconds (every native thread's) of one batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    make_batch(index)
    return time.perf_counter() - wall, time.process_time() - cpu
