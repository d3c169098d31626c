"""The trial runner: a child process that owns TensorFlow, the dataset and the model.

The parent (``tuner.isolation``) never imports TensorFlow. It starts this
module with ``python -m tuner.runner`` in its own session (process group), sends
pickled requests on stdin and reads pickled replies from the original stdout;
the user's prints and TensorFlow's logs go to stderr. A hang, a crash or a
blown memory budget is handled by killing the whole group, workers included,
and starting a fresh runner: the study goes on.
"""

from __future__ import annotations

import atexit
import dataclasses
import inspect
import math
import os
import pickle
import re
import struct
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from tuner.errors import TuneLoaderError
from tuner.results import LoaderConfig

WARMUP_BATCHES = 8
PIPELINE_PROBE_BATCHES = 60
PIPELINE_PROBE_MIN_BATCHES = 16
PIPELINE_PROBE_TARGET_SECONDS = 2.0
PIPELINE_PROBE_RUNS = 3
PIPELINE_PROBE_REPEAT_BELOW_SECONDS = 1.0
PIPELINE_PROBES = (
    ("inline", LoaderConfig(1, False, 10)),
    ("threads", LoaderConfig(2, False, 10)),
    ("processes", LoaderConfig(2, True, 10)),
)
LEFTOVER_GRACE_SECONDS = 2.0
WRAPPED_TRACEBACK = "Traceback (most recent call last):"
TRACEBACK_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Folders, each ending in a separator so that "tuner_examples/" is not taken for "tuner/".
NOT_USER_CODE = tuple(os.path.join(folder, "") for folder in
                      (sysconfig.get_paths()["stdlib"], str(_PROJECT_ROOT / "tuner"), str(_PROJECT_ROOT / "probes")))


@dataclass(frozen=True)
class FileSource:
    """The dataset (and model) come from the user's Python file."""

    path: str
    dataset_name: str | None = None
    model_name: str | None = None
    engine: str | None = None


@dataclass(frozen=True)
class PickledSource:
    """The dataset (and model) were handed to ``recommend()`` and sent over with cloudpickle.

    ``pickle_error`` is judged in the caller's process, where the dataset's
    class is importable by name; in the runner a class that came by value
    (defined in ``__main__`` or a notebook) would wrongly look unpicklable.
    """

    payload: bytes
    label: str
    pickle_error: str
    engine: str | None = None


def write_message(stream: BinaryIO, message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(body)) + body)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    header = _read_exactly(stream, 8)
    if header is None:
        return None
    (size,) = struct.unpack("<Q", header)
    body = _read_exactly(stream, size)
    if body is None:
        raise EOFError("the other side closed the pipe in the middle of a message")
    return pickle.loads(body)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Session:
    """What the runner holds between requests: the dataset, the model, the engine."""

    def __init__(self) -> None:
        self.engine = None
        self.engine_name = ""
        self.dataset = None
        self.dataset_name = ""
        self.build_model = None
        self.model = None
        self.model_description = ""
        self.is_default_model = False
        self.pickle_error: str | None = None

    def load(self, source: FileSource | PickledSource) -> dict:
        from tuner import engines, userfile

        if isinstance(source, FileSource):
            module = userfile.import_user_file(source.path)
            found = userfile.find_dataset(
                module, source.dataset_name, is_dataset=engines.is_dataset, is_dataset_class=engines.is_dataset_class
            )
            build = lambda: _build(found.build, f"{found.name}()")  # noqa: E731
            model_found = userfile.find_model(module, source.model_name, is_model=engines.is_model)
            self.dataset_name = found.name
            self.build_model = model_found and (lambda: _build(model_found.build, f"{model_found.name}()"))
        else:
            import cloudpickle  # noqa: F401  (registers the by-value reducers)

            dataset, model = pickle.loads(source.payload)
            build = dataset if inspect.isgeneratorfunction(dataset) else (lambda: dataset)
            self.dataset_name = source.label
            self.build_model = model and (lambda: model)
            self.pickle_error = source.pickle_error
        dataset = build()
        if engines.is_generator(dataset):
            dataset = engines.GeneratorData(build, self.dataset_name, first=dataset)
            # tf-keras forks its workers, so a generator never needs to pickle;
            # whether processes may run it is the data-duplication question.
            self.pickle_error = ""
        self.engine_name = engines.choose(dataset, source.engine)
        self.engine = engines.load(self.engine_name)
        self.dataset = self.engine.adopt(dataset)
        return {
            "dataset_name": self.dataset_name,
            "kind": self.engine.kind(self.dataset),
            "class_name": dataset.name if isinstance(dataset, engines.GeneratorData) else type(dataset).__name__,
            "engine": self.engine_name,
        }

    def prepare(self) -> None:
        """Builds the model and runs one untimed epoch: the first ``fit`` traces the graph."""
        from tuner import engines
        from tuner.results import KERAS_DEFAULTS

        first = engines.standardize(self._batch(0))
        model = self.build_model() if self.build_model else None
        if model is not None and self.engine.owns_model(model):
            self.model = model
            self.model_description = self.engine.describe_model(model)
            self.is_default_model = False
        else:
            self.model, self.model_description = self.engine.build_default_model(first)
            self.is_default_model = True
            if model is not None:
                self.model_description += (
                    f" (your model is a {type(model).__module__.split('.')[0]} model, which the {self.engine_name} "
                    "engine cannot train)"
                )
        batches = self._clamp(WARMUP_BATCHES)
        self.engine.run_window(self.model, self.dataset, KERAS_DEFAULTS, batches, 0)

    def probe(self, usable_cores: int) -> tuple:
        from probes import probe_dataset, probe_model

        from tuner import engines

        stream = self.dataset if isinstance(self.dataset, engines.GeneratorData) else None
        dataset_profile = probe_dataset(
            self.dataset,
            kind=self.engine.kind(self.dataset),
            num_batches=self.engine.num_batches(self.dataset),
            usable_cores=usable_cores,
            get_batch=self._batch,
            fresh_stream=stream and (lambda: stream.fresh().__next__),
            pickle_error=self.pickle_error,
            name=stream.name if stream else None,
        )
        batch = engines.standardize(self._batch(0))
        model_profile = probe_model(
            self.model, batch, description=self.model_description, is_default_model=self.is_default_model
        )
        batches = pipeline_probe_batches(model_profile.step_seconds.median)
        points = {kind: self._probe_pipeline(batch, kind, config, batches) for kind, config in PIPELINE_PROBES}
        # The epoch-end cost belongs to the enqueuer, the same for either pool
        # (tf-keras: 4.98 s measured for both), so the processes probe skips it.
        threads_after = points["threads"].epoch_end_seconds
        inline_after = points["inline"].epoch_end_seconds
        pipeline = tuple(
            dataclasses.replace(
                point,
                epoch_end_seconds=max(0.0, (point.epoch_end_seconds if point.epoch_end_seconds is not None
                                            else threads_after) - inline_after),
            )
            for point in points.values()
        )
        return dataset_profile, dataclasses.replace(model_profile, pipeline=pipeline)

    def _probe_pipeline(self, batch, kind: str, config, batches: int):
        """Free data under ``config``, the fastest of up to three runs; ``epoch_end_seconds`` here is the
        raw time from on_epoch_end to fit's return.

        Noise only slows free data down, so the fastest run is the truest. One
        run was not enough: on io_bound the 2-thread probe read 336 batches/s
        in one run and 485 in another, the model then capped threads at 259
        batches/s, and 12 threads measured 377. Runs that take over a second
        (a slow model, tf-keras's 5 s epoch-end stall) are not repeated.
        """
        from probes.profiles import PipelinePoint

        points = []
        for _ in range(PIPELINE_PROBE_RUNS):
            timing, cpu_seconds, after_epoch = self.engine.run_cached_window(
                self.model, batch, config, batches, dataset=self.dataset,
                measure_epoch_end=kind != "processes",
            )
            points.append(PipelinePoint(
                kind=kind,
                workers=config.workers,
                steady_batches_per_second=timing.steady_batches_per_second,
                fixed_seconds=timing.fixed_seconds,
                parent_cpu_seconds_per_batch=cpu_seconds / timing.batches,
                epoch_end_seconds=after_epoch,
            ))
            if timing.epoch_seconds + (after_epoch or 0.0) > PIPELINE_PROBE_REPEAT_BELOW_SECONDS:
                break
        return max(points, key=lambda point: point.steady_batches_per_second)

    def epochs(self, config) -> tuple[float, float]:
        """A real two-epoch ``fit`` of the whole dataset: a one-epoch call's seconds and one epoch's inside
        a longer call (benchmarks/epoch_prediction.py)."""
        return self.engine.time_epochs(self.model, self.dataset, config)

    def window(self, config, batches: int, offset: int) -> tuple:
        timing = self.engine.run_window(self.model, self.dataset, config, self._clamp(batches), offset)
        return timing, _reap_leftover_workers()

    def _batch(self, index: int):
        from probes import DataCodeError

        try:
            return self.engine.batch(self.dataset, index)
        except Exception as error:
            raise DataCodeError(index, error) from error

    def _clamp(self, batches: int) -> int:
        total = self.engine.num_batches(self.dataset)
        return min(batches, total) if total else batches


def pipeline_probe_batches(step_seconds: float) -> int:
    """Batches per free-data pipeline run: 60, or about 2 s of model steps for a slow model (at least 16).

    60 batches of the model-bound benchmark's 0.12 s step made the probes
    of the three pool kinds 20 s; the later half of 16 such batches still spans a
    second, a thousand times the clock's jitter.
    """
    return min(PIPELINE_PROBE_BATCHES, max(PIPELINE_PROBE_MIN_BATCHES, math.ceil(PIPELINE_PROBE_TARGET_SECONDS / step_seconds)))


def _build(factory, label: str):
    try:
        return factory()
    except TuneLoaderError:
        raise
    except Exception as error:
        raise TuneLoaderError(f"Calling {label} failed with {type(error).__name__}: {error}") from error


def _reap_leftover_workers() -> int:
    """Waits briefly for pool workers to exit, kills the rest, and counts them."""
    children = psutil.Process().children(recursive=True)
    _, alive = psutil.wait_procs(children, timeout=LEFTOVER_GRACE_SECONDS)
    for process in alive:
        process.kill()
    return len(alive)


def describe_failure(error: BaseException) -> str:
    """The reason a failed trial records: where TensorFlow wrapped the data code's exception, that
    exception and the line of the user's code that raised it.

    An exception in ``__getitem__`` under a worker pool reaches ``fit`` as
    TensorFlow's "Graph execution error", whose text carries the worker's
    whole traceback through Keras's enqueuer: about 50 lines, 2 KB, printed
    whole among the report's warnings.
    """
    text = f"{type(error).__name__}: {error}"
    _, wrapped, inner = text.rpartition(WRAPPED_TRACEBACK)
    if not wrapped:
        return text
    lines = inner.splitlines()
    frames = [(index, match) for index, line in enumerate(lines) if (match := TRACEBACK_FRAME.match(line))]
    if not frames:
        return text
    raised = next((line.strip() for line in lines[frames[-1][0] + 1:] if line.strip() and not line[0].isspace()), None)
    if raised is None:
        return text
    where = next((match for _, match in reversed(frames) if _is_user_code(match["path"])), frames[-1][1])
    return (f"{raised} (at {where['path']}, line {where['line']}, in {where['function']}; "
            f"{type(error).__name__} from Keras's data pipeline)")


def _is_user_code(path: str) -> bool:
    """False for the standard library, installed packages (Keras, TensorFlow) and tune-loader itself."""
    installed = "site-packages" in path or "dist-packages" in path
    return not (installed or path.startswith("<") or path.startswith(NOT_USER_CODE))


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    from probes import DataCodeError

    session = Session()
    while (request := read_message(requests)) is not None:
        operation, arguments = request
        started = time.perf_counter()
        try:
            value = getattr(session, operation)(*arguments)
            reply = {"ok": True, "value": value}
        except (TuneLoaderError, DataCodeError) as error:
            reply = {"ok": False, "user_error": True, "message": str(error)}
        except Exception as error:  # reported to the parent, which records the trial as failed
            reply = {"ok": False, "user_error": False, "message": describe_failure(error)}
        reply["seconds"] = time.perf_counter() - started
        write_message(replies, reply)


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the user's prints and C-level output must not corrupt the protocol
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, replies)
    exit_without_finalizing()


def exit_without_finalizing() -> None:
    """Ends the runner once the parent has closed its pipe, skipping the interpreter's finalization.

    With TensorFlow loaded, tearing its modules down took 1.1 s, paid at the
    end of every run while the caller waited; this way the runner is gone in
    0.06 s. The user's ``atexit`` handlers still run (the data file may
    clean up after itself), through CPython's ``atexit._run_exitfuncs``,
    private but unchanged since Python 3.0; nothing else is left to flush.
    """
    atexit._run_exitfuncs()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    # Run the copy imported as ``tuner.runner``, not ``__main__``, so the
    # classes the parent pickles (FileSource, ...) are the ones checked here.
    from tuner import runner

    runner.main()
