"""The trial runner's sizing and the epoch yardstick's arithmetic (no Keras)."""

import traceback
from pathlib import Path

import pytest

import tuner

from tuner.engines import EpochClock, one_fit_and_one_epoch
from tuner.runner import describe_failure, pipeline_probe_batches


def test_pipeline_probe_runs_about_two_seconds_of_a_slow_model_and_sixty_batches_of_a_fast_one():
    assert pipeline_probe_batches(0.002) == 60
    assert pipeline_probe_batches(0.12) == 17
    assert pipeline_probe_batches(1.5) == 16


def test_a_two_epoch_fit_splits_into_a_one_epoch_call_and_one_epoch_of_a_longer_call():
    clock = EpochClock()
    clock.on_epoch_end(0)
    clock.on_epoch_end(1)
    assert len(clock.epoch_ends) == 2 and clock.epoch_ends[0] <= clock.epoch_ends[1]
    clock.epoch_ends = [10.5, 12.0]  # the clock's readings, fixed for the arithmetic
    one_call, one_epoch = one_fit_and_one_epoch(10.0, clock, 12.1)
    assert one_epoch == pytest.approx(1.5)  # from the first epoch's end to the second's
    assert one_call == pytest.approx(0.6)  # set-up and first epoch (0.5) plus the wind-down (0.1)


def test_a_failure_without_a_wrapped_traceback_keeps_its_message():
    assert describe_failure(ValueError("bad shape (4, 3)")) == "ValueError: bad shape (4, 3)"


def read_npy_header():
    raise SystemError("AST constructor recursion depth mismatch (before=36, after=32)")


def test_a_wrapped_exception_is_described_by_itself_and_the_line_that_raised_it():
    # TensorFlow's text around a py_function's error, with a real traceback inside.
    try:
        read_npy_header()
    except SystemError:
        wrapped = RuntimeError(f"Graph execution error:\n\n{traceback.format_exc()}\n\n\t [[{{{{node PyFunc}}}}]]")
    line = read_npy_header.__code__.co_firstlineno + 1
    assert describe_failure(wrapped) == (
        "SystemError: AST constructor recursion depth mismatch (before=36, after=32) "
        f"(at {__file__}, line {line}, in read_npy_header; RuntimeError from Keras's data pipeline)"
    )


def test_the_line_named_is_the_last_one_outside_installed_packages_and_tune_loader():
    root = Path(tuner.__file__).resolve().parent.parent
    text = (
        "Graph execution error:\n\nTraceback (most recent call last):\n"
        f'  File "{root}/tuner/engines/keras3.py", line 88, in __getitem__\n    return self.inner[position]\n'
        f'  File "{root}/tuner_examples/shards.py", line 7, in __getitem__\n    x = np.load(path)\n'
        '  File "/venv/lib/python3.11/site-packages/numpy/lib/_npyio_impl.py", line 483, in load\n    return read()\n'
        "ValueError: cannot read shard 7\n\n\t [[{{node PyFunc}}]]"
    )
    assert describe_failure(RuntimeError(text)) == (
        f"ValueError: cannot read shard 7 (at {root}/tuner_examples/shards.py, line 7, in __getitem__; "
        "RuntimeError from Keras's data pipeline)"
    )
