"""The child side of the trial process: owns TensorFlow, the dataset and the model.

The parent (``tuner.trial.parent``) never imports TensorFlow. It starts this
module with ``python -m tuner.trial.child`` in its own session (process
group), sends requests (``tuner.trial.protocol``) on stdin and reads replies
from the original stdout; the user's prints and TensorFlow's logs go to
stderr. A hang, a crash or a blown memory budget is handled by killing the
whole group, workers included, and starting a fresh child.
"""

from __future__ import annotations

import atexit
import dataclasses
import faulthandler
import inspect
import math
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import pickle
import re
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from probes.profiles import DataKind, DatasetProfile, ModelProfile, PipelinePoint, StartCost
from tuner.core import KERAS_DEFAULTS, LoaderConfig, PoolKind, StartMethod, WindowTiming
from tuner.engines import registry
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat
from tuner.measure.predict import start_outweighs_epoch
from tuner.trial.protocol import (FileSource, Load, Loaded, PickledSource, Prepare, Probe, Reply, Request, Window,
                                  read_message, write_message)

WARMUP_BATCHES = 8
START_METHOD_ENVIRONMENT = "TUNE_LOADER_START_METHOD"  # how Keras's process pools start (--start-method)
PIPELINE_PROBE_BATCHES = 60
PIPELINE_PROBE_MIN_BATCHES = 16
PIPELINE_PROBE_TARGET_SECONDS = 2.0
PIPELINE_PROBE_RUNS = 3
PIPELINE_PROBE_REPEAT_BELOW_SECONDS = 1.0
PIPELINE_PROBES = (
    LoaderConfig(1, False, 10),  # inline
    LoaderConfig(2, False, 10),  # threads
    LoaderConfig(2, True, 10),  # processes
)
LEFTOVER_GRACE_SECONDS = 2.0
PARENT_POLL_SECONDS = 0.5
WRAPPED_TRACEBACK = "Traceback (most recent call last):"
TRACEBACK_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
FAULTHANDLER_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Folders, each ending in a separator so that "tuner_examples/" is not taken for "tuner/".
NOT_USER_CODE = tuple(os.path.join(folder, "") for folder in
                      (sysconfig.get_paths()["stdlib"], str(_PROJECT_ROOT / "tuner"), str(_PROJECT_ROOT / "probes")))


def _resolve_engine(dataset: Any, requested: str | None):
    from tuner import engines

    return engines.resolve(dataset, requested)


class Session:
    """What the child holds between requests: the dataset, the model and the engine that trains them.

    ``resolve_engine(dataset, requested)`` picks and loads the engine; tests
    pass a fake one, so the session's logic runs without Keras.
    """

    def __init__(self, resolve_engine: Callable[[Any, str | None], Any] = _resolve_engine) -> None:
        self.resolve_engine = resolve_engine
        self.engine = None
        self.dataset = None
        self.dataset_name = ""
        self.build_model = None
        self.model = None
        self.model_description = ""
        self.is_default_model = False
        self.pickle_error: str | None = None

    def handle(self, request: Request) -> Any:
        match request:
            case Load(source):
                return self.load(source)
            case Prepare():
                return self.prepare()
            case Probe(usable_cores):
                return self.probe(usable_cores)
            case Window(config, batches, offset, epochs):
                return self.window(config, batches, offset, epochs)
        raise TypeError(f"Unknown request. Expected Load, Prepare, Probe or Window. Received: {request!r}")

    def load(self, source: FileSource | PickledSource) -> Loaded:
        from tuner.engines.common import GeneratorData

        build = self._file_builder(source) if isinstance(source, FileSource) else self._pickled_builder(source)
        dataset = build()
        heartbeat.watch(True)  # the user's batches from here on: a stall counts (--load-timeout bounds the rest)
        if _is_generator(dataset):
            dataset = GeneratorData(build, self.dataset_name, first=dataset)
            # tf-keras forks its workers, so a generator never needs to pickle;
            # whether processes may run it is the data-duplication question.
            self.pickle_error = ""
        self.engine = self.resolve_engine(dataset, source.engine)
        self.dataset = self.engine.adopt(dataset)
        class_name = (dataset.name if isinstance(dataset, GeneratorData)
                      else getattr(self.dataset, "class_name", type(dataset).__name__))
        self._check_contract(class_name)
        return Loaded(self.dataset_name, self.engine.kind(self.dataset), class_name, self.engine.name,
                      self.engine.backend)

    def _check_contract(self, class_name: str) -> None:
        """What Keras would reject, rejected before anything is timed: an empty epoch, and batches whose
        structure, dtypes or shapes differ across the epoch (its first, middle and last index)."""
        from probes.dataset import mismatched_batches

        length = self.engine.num_batches(self.dataset)
        if length == 0:
            raise TuneLoaderError(f"{class_name} has no batches: its __len__ returned 0, and Keras's fit() "
                                  "raises on an empty dataset. Fix: check the data it reads (an empty folder, a "
                                  "filter that kept nothing). Received: len() = 0")
        indexed = self.engine.fresh_stream(self.dataset) is None  # a stream's batches come only in order
        if length and indexed and (mismatch := mismatched_batches(self._batch, length)):
            raise TuneLoaderError(f"{class_name}'s batches disagree: {mismatch}. Keras trains one step "
                                  "function on every batch, so all must share structure, dtypes and shapes "
                                  "past the batch dimension. Fix: resize or pad to one shape in __getitem__. "
                                  f"Received: {length} batches")

    def _file_builder(self, source: FileSource) -> Callable[[], Any]:
        from tuner import engines, userfile

        module = userfile.import_user_file(source.path)
        found = userfile.find_dataset(module, source.dataset_name, is_dataset=engines.is_dataset,
                                      is_dataset_class=engines.is_dataset_class)
        model_found = userfile.find_model(module, source.model_name, is_model=engines.is_model)
        self.dataset_name = found.name
        self.build_model = model_found and (lambda: _build(model_found.build, f"{model_found.name}()"))
        return lambda: _build(found.build, f"{found.name}()")

    def _pickled_builder(self, source: PickledSource) -> Callable[[], Any]:
        import cloudpickle  # noqa: F401  (registers the by-value reducers)

        dataset, model = pickle.loads(source.payload)
        self.dataset_name = source.label
        self.build_model = model and (lambda: model)
        self.pickle_error = source.pickle_error
        return dataset if inspect.isgeneratorfunction(dataset) else (lambda: dataset)

    def prepare(self) -> None:
        """Builds the model (the user's, or a small default) and runs one untimed epoch."""
        from tuner.engines.common import standardize

        first = standardize(self._batch(0))
        heartbeat.watch(False)  # building the model makes no batches
        model = self.build_model() if self.build_model else None
        self.is_default_model = model is None or not self.engine.owns_model(model)
        if not self.is_default_model:
            self.model, self.model_description = model, self.engine.describe_model(model)
        else:
            self.model, self.model_description = self.engine.build_default_model(first)
            if model is not None:
                self.model_description += (
                    f" (your model is a {type(model).__module__.split('.')[0]} model, which the {self.engine.name} "
                    "engine cannot train)"
                )
        heartbeat.watch(True)
        self.engine.run_window(self.model, self.dataset, KERAS_DEFAULTS, self._clamp(WARMUP_BATCHES), 0)

    def probe(self, usable_cores: int) -> tuple[DatasetProfile, ModelProfile]:
        from probes import probe_dataset, probe_model
        from tuner.engines.common import GeneratorData, standardize

        stream = self.engine.fresh_stream(self.dataset)
        fresh = stream and (lambda: _watched_next(stream()))
        dataset_profile = probe_dataset(
            self.dataset,
            kind=self.engine.kind(self.dataset),
            num_batches=self.engine.num_batches(self.dataset),
            usable_cores=usable_cores,
            get_batch=self._batch,
            fresh_stream=fresh,
            pickle_error=self.pickle_error,
            name=self.dataset.name if isinstance(self.dataset, GeneratorData)
            else getattr(self.dataset, "class_name", None),  # a DataLoader's Dataset
            user_knobs=self.engine.user_knobs(self.dataset),
        )
        batch = standardize(self._batch(0))
        model_profile = probe_model(
            self.model, batch, description=self.model_description, is_default_model=self.is_default_model
        )
        dataset_profile = dataclasses.replace(dataset_profile, start_cost=self._probe_start_cost(dataset_profile))
        # A pool whose workers' start outweighs an epoch is not searched (SearchSpace.for_profiles): not timed here.
        fresh_pools_lose = (not registry.knob_set(self.engine.name, self.engine.backend).persistent_pools
                            and start_outweighs_epoch(dataset_profile, model_profile))
        pipeline = self._probe_pipelines(batch, model_profile, processes=not fresh_pools_lose)
        return dataset_profile, dataclasses.replace(model_profile, pipeline=pipeline)

    def _probe_start_cost(self, profile: DatasetProfile) -> StartCost | None:
        """What each process worker costs per epoch under this process's start method beyond fork, where
        processes could run this dataset at all (``probes.start_cost``)."""
        from probes.start_cost import probe_start_cost
        from tuner.engines import backend as backends

        method = (registry.knob_set(self.engine.name, self.engine.backend).start_method
                  or multiprocessing.get_start_method())
        if (method == StartMethod.FORK or profile.pickle_error or profile.kind == DataKind.GENERATOR
                or backends.processes_excluded(self.engine.backend, StartMethod(method))):
            return None
        heartbeat.watch(False)  # fresh interpreters import Keras: seconds without a batch
        try:
            # What a worker imports before the dataset: Keras for a PyDataset, nothing for a DataLoader's.
            preloaded = getattr(self.engine, "worker_modules", (type(self.engine).__module__,))
            return probe_start_cost(self.dataset, method, preloaded=preloaded)
        finally:
            heartbeat.watch(True)

    def _probe_pipelines(self, batch, model_profile: ModelProfile, processes: bool = True) -> tuple[PipelinePoint, ...]:
        """Keras's pipeline with free data under each kind of pool (``processes``: also a process pool). The
        epoch-end cost belongs to the enqueuer, the same for either pool, so the processes probe skips it and
        takes the threads'; each point keeps only what its pool costs there beyond inline."""
        batches = pipeline_probe_batches(model_profile.step_seconds.median)
        points = {config.kind: self._probe_pipeline(batch, config, batches) for config in PIPELINE_PROBES
                  if processes or config.kind != PoolKind.PROCESSES}
        threads_after = points[PoolKind.THREADS].epoch_end_seconds
        inline_after = points[PoolKind.INLINE].epoch_end_seconds
        return tuple(
            dataclasses.replace(point, epoch_end_seconds=max(0.0, (
                point.epoch_end_seconds if point.epoch_end_seconds is not None else threads_after) - inline_after))
            for point in points.values()
        )

    def _probe_pipeline(self, batch, config: LoaderConfig, batches: int) -> PipelinePoint:
        """Free data under ``config``, the fastest of up to three runs; ``epoch_end_seconds`` here is the raw
        time from on_epoch_end to fit's return.

        Noise only slows free data down, so the fastest run is the truest.
        Runs that take over a second (a slow model, tf-keras's 5 s epoch-end
        stall) are not repeated.
        """
        points = []
        for _ in range(PIPELINE_PROBE_RUNS):
            timing, cpu_seconds, after_epoch = self.engine.run_cached_window(
                self.model, batch, config, batches, dataset=self.dataset,
                measure_epoch_end=config.kind != PoolKind.PROCESSES,
            )
            points.append(PipelinePoint(
                kind=config.kind,
                workers=config.workers,
                steady_batches_per_second=timing.steady_batches_per_second,
                fixed_seconds=timing.fixed_seconds,
                parent_cpu_seconds_per_batch=cpu_seconds / timing.batches,
                epoch_end_seconds=after_epoch,
            ))
            if timing.epoch_seconds + (after_epoch or 0.0) > PIPELINE_PROBE_REPEAT_BELOW_SECONDS:
                break
        return max(points, key=lambda point: point.steady_batches_per_second)

    def window(self, config: LoaderConfig, batches: int, offset: int, epochs: int = 1) -> tuple[WindowTiming, int]:
        engine = self.engine
        if config.is_tf_data:
            from tuner.engines.tfdata import TfDataEngine

            engine = TfDataEngine(self.engine)
        timing = engine.run_window(self.model, self.dataset, config, self._clamp(batches), offset, epochs)
        return timing, _reap_leftover_workers()

    def _batch(self, index: int):
        from probes import DataCodeError

        try:
            with heartbeat.batch(index):
                return self.engine.batch(self.dataset, index)
        except Exception as error:
            raise DataCodeError(index, error) from error

    def _clamp(self, batches: int) -> int:
        total = self.engine.num_batches(self.dataset)
        return min(batches, total) if total else batches


def _watched_next(stream) -> Callable[[], Any]:
    """``next`` on a generator the probes read, each batch counted by the heartbeat."""
    count = iter(range(sys.maxsize))

    def watched():
        with heartbeat.batch(next(count)):
            return next(stream)
    return watched


def _is_generator(dataset: Any) -> bool:
    from tuner import engines

    return engines.is_generator(dataset)


def pipeline_probe_batches(step_seconds: float) -> int:
    """Batches per free-data pipeline run: 60, or about 2 s of model steps for a slow model (at least 16,
    whose later half still spans a thousand times the clock's jitter)."""
    return min(PIPELINE_PROBE_BATCHES, max(PIPELINE_PROBE_MIN_BATCHES, math.ceil(PIPELINE_PROBE_TARGET_SECONDS / step_seconds)))


def _build(factory, label: str):
    try:
        return factory()
    except TuneLoaderError:
        raise
    except SystemExit as error:
        raise TuneLoaderError(f"{label} called sys.exit({error.code!r}). Fix: return the object instead of "
                              "exiting.") from None
    except Exception as error:
        raise TuneLoaderError(f"Calling {label} failed with {type(error).__name__}: {error}") from error


def _reap_leftover_workers() -> int:
    """Waits briefly for pool workers to exit, kills the rest, and counts them. The forkserver and the
    resource tracker that forkserver and spawn start are not workers: they live as long as the training
    process, in the user's training too, and the next pool would have to start them again."""
    helpers = {multiprocessing.forkserver._forkserver._forkserver_pid,
               multiprocessing.resource_tracker._resource_tracker._pid}
    children = [child for child in psutil.Process().children(recursive=True) if child.pid not in helpers]
    _, alive = psutil.wait_procs(children, timeout=LEFTOVER_GRACE_SECONDS)
    for process in alive:
        process.kill()
    return len(alive)


def describe_failure(error: BaseException) -> str:
    """The reason a failed trial records: where TensorFlow wrapped the data code's exception (its "Graph
    execution error" carries the worker's whole traceback through Keras's enqueuer, about 50 lines), that
    exception and the line of the user's code that raised it."""
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


def innermost_user_frame(dump_lines: list[str]) -> str | None:
    """The first frame of user code in ``faulthandler`` dumps (most recent call first), as "FILE, line N,
    in FUNCTION"."""
    for line in dump_lines:
        match = FAULTHANDLER_FRAME.match(line)
        if match and _is_user_code(match["path"]):
            return f"{match['path']}, line {match['line']}, in {match['function']}"
    return None


def _is_user_code(path: str) -> bool:
    """False for the standard library, installed packages (Keras, TensorFlow) and tune-loader itself."""
    installed = "site-packages" in path or "dist-packages" in path
    return not (installed or path.startswith("<") or path.startswith(NOT_USER_CODE))


def serve(requests: BinaryIO, replies: BinaryIO, session: Session | None = None) -> None:
    """Answers requests until the parent closes the pipe: the user's errors and failed trials are replies,
    not crashes."""
    from probes import DataCodeError

    session = session or Session()
    while (request := read_message(requests)) is not None:
        started = time.perf_counter()
        try:
            reply = Reply(ok=True, value=session.handle(request))
        except (TuneLoaderError, DataCodeError) as error:
            reply = Reply(ok=False, user_error=True, message=str(error))
        except SystemExit as error:  # the user's code called sys.exit() inside a request
            reply = Reply(ok=False, user_error=True, message=f"Your code called sys.exit({error.code!r}) while "
                          f"tune-loader ran it ({type(request).__name__.lower()}). Fix: raise an exception instead.")
        except Exception as error:  # reported to the parent, which records the trial as failed
            reply = Reply(ok=False, message=describe_failure(error))
        write_message(replies, dataclasses.replace(reply, seconds=time.perf_counter() - started))


def die_with_parent() -> None:
    """Ends this process and every Keras worker it started soon after the parent is gone, however it went
    (SIGKILL included): a watchdog thread sees the parent change and kills the whole process group.

    It needs the GIL for a moment every half second, which user code
    spinning in C while holding it would deny; user code that sleeps,
    waits or runs Python does not.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="tune-loader-parent-watch", daemon=True).start()


def main() -> None:
    die_with_parent()
    heartbeat.install_from_environment()
    if method := os.environ.get(START_METHOD_ENVIRONMENT):
        multiprocessing.set_start_method(method, force=True)  # Keras builds its pools from the default context
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent asks for stacks before killing a hang
    faulthandler.enable(all_threads=True)  # a crash here or in a forked worker names itself on stderr
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the user's prints and C-level output must not corrupt the protocol
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, replies)
    exit_without_finalizing()


def exit_without_finalizing() -> None:
    """Ends the child once the parent has closed its pipe, skipping the interpreter's finalization.

    With TensorFlow loaded, tearing its modules down takes about a second,
    paid at the end of every run while the caller waits. The user's
    ``atexit`` handlers still run (the data file may clean up after itself),
    through CPython's ``atexit._run_exitfuncs``, private but unchanged since
    Python 3.0; nothing else is left to flush.
    """
    atexit._run_exitfuncs()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    # Run the copy imported as ``tuner.trial.child``, not ``__main__``, so the
    # classes the parent pickles (FileSource, ...) are the ones checked here.
    from tuner.trial import child

    child.main()
