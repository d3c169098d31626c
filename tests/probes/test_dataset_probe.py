"""The dataset probe on plain Python objects shaped like a PyDataset (no Keras needed)."""

import threading
import time

import numpy as np
import pytest

from probes import DataCodeError, probe_dataset


class Sleepy:
    def __len__(self):
        return 10

    def __getitem__(self, index):
        time.sleep(0.01)
        return np.full((4, 2), index, dtype="float32"), np.zeros(4)


class PurePython:
    def __getitem__(self, index):
        total = 0
        for i in range(150_000):
            total += i * index % 7
        return np.array([[total]], dtype="float32"), np.zeros(1)


class HoldsALock(Sleepy):
    def __init__(self):
        self.lock = threading.Lock()


class SharedScratchBuffer:
    """Deterministic per index, but fills one shared buffer: wrong under threads."""

    def __init__(self):
        self.scratch = np.zeros(4)

    def __getitem__(self, index):
        self.scratch[:] = index
        time.sleep(0.005)
        return self.scratch.copy(), np.zeros(4)


class Broken:
    def __getitem__(self, index):
        raise KeyError("missing.jpg")


def profile(dataset, batches=10):
    return probe_dataset(dataset, kind="test", num_batches=batches, usable_cores=2)


def test_waiting_code_is_not_gil_bound_and_threads_help():
    result = profile(Sleepy())
    assert result.cpu_fraction < 0.3
    assert result.thread_speedup > 1.5
    assert not result.gil_bound
    assert result.batch_bytes == 4 * 2 * 4 + 4 * 8
    assert result.samples_per_batch == 4
    assert result.batch_structure == "(float32[4, 2], float64[4])"


def test_pure_python_code_is_gil_bound():
    result = profile(PurePython(), batches=None)
    # CPU over wall stays well above waiting code's even when another process competes for the cores.
    assert result.cpu_fraction > 0.5
    assert result.thread_speedup < 1.35
    assert result.gil_bound


def test_unpicklable_dataset_says_why():
    result = profile(HoldsALock())
    assert not result.picklable
    assert "lock" in result.pickle_error


def test_shared_state_is_caught_as_not_thread_safe():
    result = profile(SharedScratchBuffer(), batches=None)
    assert result.thread_safe is False


def test_deterministic_dataset_is_thread_safe():
    assert profile(Sleepy()).thread_safe is True


def test_failing_batch_code_names_the_index_and_error():
    with pytest.raises(DataCodeError, match=r"dataset\[0\] raised KeyError: 'missing.jpg'"):
        profile(Broken())


def test_microsecond_batches_are_not_called_gil_bound():
    from tests.builders import dataset
    from tuner.analysis import advice

    slices = dataset(cpu_fraction=1.0, thread_speedup=0.1, batch_ms=0.02)
    text = advice.data_nature(slices)
    assert "20 µs" in text and "too little for the thread test" in text and "holds the GIL, so" not in text
    assert "holds the GIL, so only processes" in advice.data_nature(dataset(cpu_fraction=1.0, thread_speedup=1.0,
                                                                             batch_ms=8.0))


def test_a_constructor_that_cannot_take_the_knobs_is_recognised():
    from probes.dataset import takes_knob_arguments

    class Forwards:
        def __init__(self, n, **kwargs):
            pass

    class Names:
        def __init__(self, n, workers=1, use_multiprocessing=False, max_queue_size=10):
            pass

    class Stiff:
        def __init__(self, n):
            pass

    assert takes_knob_arguments(Forwards) is True and takes_knob_arguments(Names) is True
    assert takes_knob_arguments(Stiff) is False
