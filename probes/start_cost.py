"""What a process pool's workers cost at every epoch start under forkserver or spawn.

Under fork a worker is a copy of the training process: nothing to start,
nothing to send. Under forkserver and spawn (Python 3.14's default on Linux,
and the default on macOS and Windows) each worker is a fresh interpreter,
the dataset is pickled to it, and unpickling it imports the dataset's
module again; Keras builds a new pool at every epoch start, so every epoch
pays that. This probe times each part with a pool of one worker. No Keras
import here: the caller names the modules a worker already has (Keras).
"""

from __future__ import annotations

import importlib
import multiprocessing
import pickle
import time
from collections.abc import Sequence
from typing import Any

from probes.profiles import StartCost

RUNS = 2  # the fastest counts; forkserver's first pool also starts the server, which happens once


def probe_start_cost(dataset: Any, method: str, preloaded: Sequence[str] = ()) -> StartCost:
    """Times a worker's start under ``method`` and under fork, its import of ``preloaded`` (Keras), the
    dataset's pickling here, and its unpickling in that worker."""
    context = multiprocessing.get_context(method)
    worker = min(_worker_start(context) for _ in range(RUNS))
    fork = min(_worker_start(multiprocessing.get_context("fork")) for _ in range(RUNS)) if (
        "fork" in multiprocessing.get_all_start_methods()) else 0.0
    began = time.perf_counter()
    payload = pickle.dumps(dataset)
    pickle_seconds = time.perf_counter() - began
    error = ""
    with context.Pool(1) as pool:
        pool.apply(_import, ((),))
        began = time.perf_counter()
        pool.apply(_import, (tuple(preloaded),))
        keras_seconds = time.perf_counter() - began
        try:
            pool.apply(_unpickle, (payload,))
        except Exception as failure:  # the worker's error, re-raised here by the pool
            error = f"{type(failure).__name__}: {failure}"
        import_seconds = time.perf_counter() - began - keras_seconds
    return StartCost(method, worker, fork, keras_seconds, pickle_seconds, len(payload), import_seconds, error)


def _worker_start(context) -> float:
    began = time.perf_counter()
    with context.Pool(1) as pool:
        pool.apply(_import, ((),))
    return time.perf_counter() - began


def _import(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)


def _unpickle(payload: bytes) -> None:
    pickle.loads(payload)
