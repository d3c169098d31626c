"""The native-thread probe and the engines' limit against the real BLAS numpy ships (no Keras)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from probes.native import probe_native_threads
from tuner.engines.common import limit_native_threads, limited_stream, native_threads_restored

MATRIX = np.random.default_rng(0).standard_normal((384, 384))


def blas_threads() -> int:
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


def batch(_index):
    return np.linalg.svd(MATRIX @ MATRIX, compute_uv=False)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="BLAS starts one thread on a single core")
def test_the_probe_finds_numpy_s_blas_and_times_it_at_one_thread_without_keeping_the_limit():
    before = blas_threads()
    found = probe_native_threads(batch, [0, 1, 2])
    assert found is not None and any("blas" in pool for pool in found.pools)
    assert found.default_threads == before > 1
    assert found.batches == 3 and found.default_seconds > 0 and found.one_thread_seconds > 0
    assert blas_threads() == before


def test_a_window_s_limit_is_undone_when_the_window_ends():
    before = blas_threads()
    with native_threads_restored():
        limit_native_threads(1)
        assert blas_threads() == 1
    assert blas_threads() == before
    limit_native_threads(None)
    assert blas_threads() == before


def test_a_generator_s_batches_are_made_under_the_limit():
    def seen():
        for _ in range(3):
            yield blas_threads()

    with native_threads_restored():
        assert list(limited_stream(seen(), 1)) == [1, 1, 1]
    assert list(limited_stream(iter([7, 8]), None)) == [7, 8]


def test_a_generator_that_runs_out_leaves_the_knob_unsearched():
    stream = iter([batch(0), batch(1)])
    assert probe_native_threads(lambda _: next(stream), [0, 1, 2]) is None
