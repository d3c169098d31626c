"""The child side of the trial process, on a fake engine (no Keras): its session, its replies, its
failure descriptions."""

import io
import pickle
import traceback
from pathlib import Path

import tuner
from probes.profiles import DataKind
from tests.fakes import FakeDataset, FakeEngine, FakeModel
from tuner.core import KERAS_DEFAULTS, EngineName, LoaderConfig, PoolKind
from tuner.trial.child import Session, describe_failure, pipeline_probe_batches, serve
from tuner.trial.protocol import (Load, Loaded, PickledSource, Prepare, Probe, Reply, Window, read_message,
                                  write_message)


def session_on(dataset, model=None, engine=None):
    engine = engine or FakeEngine()
    session = Session(resolve_engine=lambda data, requested: engine)
    source = PickledSource(pickle.dumps((dataset, model)), "my_data", pickle_error="")
    return session, engine, source


def test_a_session_loads_prepares_probes_and_times_windows_through_its_engine():
    session, engine, source = session_on(FakeDataset(batches=20))
    assert session.handle(Load(source)) == Loaded("my_data", DataKind.PYDATASET, "FakeDataset", EngineName.KERAS3, "tensorflow")
    session.handle(Prepare())
    assert session.is_default_model and session.model_description == "fake default model"
    assert engine.windows == [(KERAS_DEFAULTS, 8, 0)]  # the untimed warm-up epoch
    dataset_profile, model_profile = session.handle(Probe(usable_cores=2))
    assert dataset_profile.batches_per_epoch == 20 and dataset_profile.picklable
    assert [point.kind for point in model_profile.pipeline] == [PoolKind.INLINE, PoolKind.THREADS, PoolKind.PROCESSES]
    # Each point keeps what its pool costs after the epoch beyond inline's; processes take the threads' reading.
    assert [point.epoch_end_seconds for point in model_profile.pipeline] == [0.0, 0.0, 0.0]
    timing, leftovers = session.handle(Window(LoaderConfig(4, False, 10), batches=50, offset=6))
    assert engine.windows[-1] == (LoaderConfig(4, False, 10), 20, 6)  # clamped to the dataset's 20 batches
    assert timing.batches == 20 and leftovers == 0


def test_the_users_own_model_is_trained_when_the_engine_owns_it():
    session, _, source = session_on(FakeDataset(), model=FakeModel())
    session.handle(Load(source))
    session.handle(Prepare())
    assert not session.is_default_model and session.model_description == "a fake model"


def replies_to(session, *requests):
    inbox, outbox = io.BytesIO(), io.BytesIO()
    for request in requests:
        write_message(inbox, request)
    inbox.seek(0)
    serve(inbox, outbox, session)
    outbox.seek(0)
    return [read_message(outbox) for _ in requests]


def test_serve_answers_each_request_and_turns_errors_into_replies():
    session, _, source = session_on(FakeDataset(batches=20, fails_at=15))
    loaded, prepared, window, unknown = replies_to(
        session, Load(source), Prepare(), Window(KERAS_DEFAULTS, batches=10, offset=10), "window")
    assert loaded.ok and loaded.value.dataset_name == "my_data"
    assert prepared == Reply(ok=True, value=None, seconds=prepared.seconds)
    # The data code's error reaches the parent as a failed trial, with the user's message.
    assert not window.ok and not window.user_error and "cannot read shard 15" in window.message
    assert not unknown.ok and "Expected Load, Prepare, Probe or Window. Received: 'window'" in unknown.message


def test_a_batch_that_fails_while_probing_is_the_users_error_with_its_index():
    session, _, source = session_on(FakeDataset(batches=20, fails_at=0))
    (loaded, prepared) = replies_to(session, Load(source), Prepare())
    assert prepared.user_error and prepared.message == "dataset[0] raised ValueError: cannot read shard 0"


def test_pipeline_probe_runs_about_two_seconds_of_a_slow_model_and_sixty_batches_of_a_fast_one():
    assert pipeline_probe_batches(0.002) == 60
    assert pipeline_probe_batches(0.12) == 17
    assert pipeline_probe_batches(1.5) == 16


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
