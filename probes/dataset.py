"""Profiles the user's data code by calling it the way Keras's inline path does."""

from __future__ import annotations

import inspect
import pickle
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from probes.fork_safety import fork_hazards
from probes.native import probe_native_threads
from probes.profiles import DataKind, DatasetProfile
from probes.stats import summarize

TARGET_PROBE_SECONDS = 1.0
PROBE_BATCHES_PER_THREAD = 4  # two for each thread in each half of the thread test
MAX_PROBE_BATCHES = 24


class DataCodeError(Exception):
    """The user's batch code raised; carries the index and the original error."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(f"dataset[{index}] raised {type(error).__name__}: {error}")
        self.index = index
        self.error = error


def probe_dataset(
    dataset: Any,
    *,
    kind: DataKind,
    num_batches: int | None,
    usable_cores: int,
    get_batch: Callable[[int], Any] | None = None,
    fresh_stream: Callable[[], Callable[[], Any]] | None = None,
    pickle_error: str | None = None,
    name: str | None = None,
    user_knobs: Mapping[str, Any] | None = None,
) -> DatasetProfile:
    """Times batches inline, tries them from threads, and checks pickling.

    ``get_batch(i)`` defaults to ``dataset[i]``. The thread test runs the
    same batches one after another and from ``max(2, usable_cores)`` threads
    at once (alternating, best of two each): the ratio shows directly whether threads can overlap the
    work (I/O, numpy that drops the GIL) or not (pure Python holding the GIL).
    ``pickle_error`` ("" for picklable), when given, replaces the pickling
    test: the caller judged it where the dataset was made. ``user_knobs`` are
    the knobs the loader was built with, as its engine reads them.

    A generator is a stream, not an index: ``fresh_stream()`` starts a new
    one and returns its ``next``. The thread test then gives every thread its
    own stream (how parallel the code is), and thread safety is judged by
    sharing one stream between threads, as tf-keras's threads do.
    """
    get_batch = get_batch or dataset.__getitem__
    first, first_wall, _ = _timed_call(get_batch, 0)
    threads = max(2, usable_cores)
    # With one batch for each thread, a thread's start and the slowest batch would decide the thread test.
    fewest = PROBE_BATCHES_PER_THREAD * threads
    count = int(np.clip(TARGET_PROBE_SECONDS / 2 / max(first_wall, 1e-4), fewest, max(fewest, MAX_PROBE_BATCHES)))
    indices = [i % num_batches if num_batches else i for i in range(1, count + 1)]  # wrapping a short epoch

    test = _thread_test(get_batch, indices, threads, fresh_stream)
    thread_safe, safety_note = _thread_safety(get_batch, fresh_stream, indices, threads, test)
    pickle_error = pickle_failure(dataset) if pickle_error is None else pickle_error
    native = _native_pools(get_batch, fresh_stream, indices)
    return DatasetProfile(
        kind=kind,
        class_name=name or type(dataset).__name__,
        batches_per_epoch=num_batches,
        batch_bytes=batch_nbytes(first), samples_per_batch=_samples_in(first), batch_structure=describe_structure(first),
        wall_seconds=summarize(test.walls),
        cpu_seconds=summarize(test.cpus),
        cpu_fraction=float(min(1.0, sum(test.cpus) / max(sum(test.walls), 1e-9))),
        thread_speedup=test.speedup,
        threads_tried=threads,
        picklable=not pickle_error,
        pickle_error=pickle_error,
        thread_safe=thread_safe,
        thread_safety_note=safety_note,
        native=native,
        fork_hazards=fork_hazards(dataset, "dataset"),
        user_knobs=dict(user_knobs or {}),
        takes_knob_arguments=takes_knob_arguments(type(dataset)) if kind == DataKind.PYDATASET else None,
    )


def _thread_safety(get_batch, fresh_stream, indices: list[int], threads: int, test) -> tuple[bool | None, str]:
    """Shared-stream safety for a generator, same-batch safety for an indexed dataset."""
    if fresh_stream:
        return _judge_stream_thread_safety(fresh_stream(), threads, len(indices))
    return _judge_thread_safety(get_batch, indices[0], test.serial_batches, test.threaded_batches)


def _native_pools(get_batch, fresh_stream, indices: list[int]):
    """The BLAS/OpenMP pools the batches use (a generator's from a fresh stream)."""
    if fresh_stream:
        stream = fresh_stream()
        return probe_native_threads(lambda _: stream(), indices)
    return probe_native_threads(get_batch, indices)




def takes_knob_arguments(cls: type) -> bool | None:
    """Whether ``cls(..., workers=2, use_multiprocessing=False, max_queue_size=10)`` gets past the
    signature: the three are named parameters, or it takes ``**kwargs``. None when it cannot be read.

    Keras's PyDataset docs show ``**kwargs`` forwarded to ``super().__init__``;
    a class that leaves it out raises TypeError on the recommended snippet.
    """
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return any(p.kind == p.VAR_KEYWORD for p in parameters) or {"workers", "use_multiprocessing",
                                                                   "max_queue_size"} <= named


@dataclass(frozen=True)
class _ThreadTest:
    """The same batches made one after another and from several threads at once."""

    serial_batches: list
    threaded_batches: list
    walls: list[float]
    cpus: list[float]
    speedup: float | None


def _thread_test(get_batch, indices: list[int], threads: int, fresh_stream) -> _ThreadTest:
    """Serial and threaded runs alternate twice over halves of the batches, and the faster run of each
    kind counts (as timeit takes the best of repeats): a burst of outside load during one run then cannot
    make pure-Python code look as if threads helped it."""
    serial_batches, threaded_batches, walls, cpus = [], [], [], []
    serial_per_batch, threaded_per_batch = [], []
    halves = [indices[: len(indices) // 2], indices[len(indices) // 2 :]]
    threaded_call = _per_thread(fresh_stream) if fresh_stream else (lambda i: _timed_call(get_batch, i))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for half in halves:
            started = time.perf_counter()
            for i in half:
                batch, wall, cpu = _timed_call(get_batch, i)
                serial_batches.append(batch)
                walls.append(wall)
                cpus.append(cpu)
            serial_per_batch.append((time.perf_counter() - started) / len(half))
            started = time.perf_counter()
            threaded_batches.extend(batch for batch, _, _ in pool.map(threaded_call, half))
            threaded_per_batch.append((time.perf_counter() - started) / len(half))
    serial_seconds, threaded_seconds = min(serial_per_batch), min(threaded_per_batch)
    speedup = serial_seconds / threaded_seconds if threaded_seconds > 0 else None
    return _ThreadTest(serial_batches, threaded_batches, walls, cpus, speedup)


def _timed_call(get_batch: Callable[[int], Any], i: int) -> tuple[Any, float, float]:
    wall_start, cpu_start = time.perf_counter(), time.thread_time()
    try:
        batch = get_batch(i)
    except Exception as error:  # the user's code: report which batch failed
        raise DataCodeError(i, error) from error
    return batch, time.perf_counter() - wall_start, time.thread_time() - cpu_start


def pickle_failure(obj: Any) -> str:
    """Why ``obj`` does not pickle with the standard pickler, or "" if it does."""
    try:
        pickle.dumps(obj)
    except Exception as error:  # any pickling failure is an answer, not a crash
        return f"{type(error).__name__}: {error}"
    return ""


def _per_thread(fresh_stream: Callable[[], Callable[[], Any]]) -> Callable[[int], tuple[Any, float, float]]:
    """A timed call that reads from the calling thread's own stream."""
    local = threading.local()

    def call(i: int):
        if not hasattr(local, "next_batch"):
            local.next_batch = fresh_stream()
        return _timed_call(lambda _: local.next_batch(), i)

    return call


def _judge_stream_thread_safety(next_batch: Callable[[], Any], threads: int, calls: int) -> tuple[bool, str]:
    """Reads one stream from ``threads`` threads at once, as tf-keras's thread workers do. The GIL is
    handed over every microsecond meanwhile, so two threads meet inside the generator's body whenever
    it lets them, not only when a batch outlasts Python's 5 ms switch interval."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda _: next_batch(), range(max(calls, 4 * threads))))
    except ValueError as error:  # "generator already executing"
        return False, f"reading it from {threads} threads at once raised ValueError: {error}"
    finally:
        sys.setswitchinterval(interval)
    return True, f"{threads} threads read it at once without an error"


def _judge_thread_safety(get_batch, index, serial_batches, threaded_batches) -> tuple[bool | None, str]:
    if all(batches_equal(a, b) for a, b in zip(serial_batches, threaded_batches)):
        return True, "threads returned the same batches as inline calls"
    again = get_batch(index)
    if not batches_equal(again, serial_batches[0]):
        return None, "batches differ between calls (random augmentation?), so threads cannot be compared"
    return False, "threads returned different batches than inline calls: shared state is not thread-safe"


def leaves(batch: Any) -> list[Any]:
    """The arrays in a batch, whatever its nesting (tuple, list, dict)."""
    if isinstance(batch, dict):
        return [leaf for value in batch.values() for leaf in leaves(value)]
    if isinstance(batch, (tuple, list)):
        return [leaf for value in batch for leaf in leaves(value)]
    return [batch]


def batches_equal(a: Any, b: Any) -> bool:
    left, right = leaves(a), leaves(b)
    return len(left) == len(right) and all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(left, right)
    )


def batch_nbytes(batch: Any) -> int:
    return int(sum(getattr(leaf, "nbytes", None) or np.asarray(leaf).nbytes for leaf in leaves(batch)))


def describe_structure(batch: Any) -> str:
    """A short human description, e.g. ``(float32[32, 64, 64, 3], int64[32])``."""
    if isinstance(batch, dict):
        return "{" + ", ".join(f"{k}: {describe_structure(v)}" for k, v in batch.items()) + "}"
    if isinstance(batch, (tuple, list)):
        return "(" + ", ".join(describe_structure(v) for v in batch) + ")"
    array = np.asarray(batch)
    return f"{array.dtype}[{', '.join(str(d) for d in array.shape)}]"


def mismatched_batches(get_batch: Callable[[int], Any], length: int) -> str | None:
    """How batches at the first, middle and last index differ, or None when they agree.

    They must share structure, dtypes and shapes past the batch dimension
    (a short last batch is fine): Keras traces one step for all of them,
    and a mismatch otherwise fails deep inside TensorFlow with no index.
    """
    indices = sorted({0, length // 2, length - 1})
    batches = {index: get_batch(index) for index in indices}
    first = _signature(batches[0])
    for index in indices[1:]:
        if _signature(batches[index]) != first:
            return (f"batch 0 is {describe_structure(batches[0])} but batch {index} is "
                    f"{describe_structure(batches[index])}")
    return None


def _signature(batch: Any) -> Any:
    if isinstance(batch, dict):
        return tuple(sorted((key, _signature(value)) for key, value in batch.items()))
    if isinstance(batch, (tuple, list)):
        return tuple(_signature(value) for value in batch)
    array = np.asarray(batch)
    return str(array.dtype), array.shape[1:]


def _samples_in(batch: Any) -> int | None:
    first = leaves(batch)[0] if leaves(batch) else None
    shape = getattr(first, "shape", None)
    return int(shape[0]) if shape else None
