"""The parent side of the trial process: starts the child, sends it requests, watches it, kills it.

Every request waits in short polls; every ``PSS_SAMPLE_SECONDS`` the process
tree's PSS is sampled, and at every poll its RSS, which bounds the PSS from
above, so a trial's peak memory is measured while it runs and a trial over
the budget is stopped before it takes the machine down. Killing means the
whole process group: the child and every Keras worker it forked. A restart
(import, model build, graph tracing: several seconds) happens before the
next window's clock starts, so it never lands in a timing.
"""

from __future__ import annotations

import collections
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from probes.load import cpu_snapshot, foreign_cores
from probes.memory import tree_pss_bytes, tree_rss_bytes
from probes.profiles import DatasetProfile, ModelProfile
from tuner.core import Backend, LoaderConfig, StopKind, TrialStatus
from tuner.errors import TuneLoaderError
from tuner.measure import heartbeat
from tuner.measure.epoch_model import with_fixed_cost
from tuner.search.measurer import Measurement, TrialStopped
from tuner.trial.child import START_METHOD_ENVIRONMENT, innermost_user_frame
from tuner.trial.protocol import (FileSource, Load, Loaded, PickledSource, Prepare, Probe, Request, Window,
                                  read_message, write_message)

POLL_SECONDS = 0.2
# Reading PSS walks every page of the trial process (13 ms for TensorFlow's): at every poll that is 6% of a
# core beside the timed epochs, so it is read this often, and the cheap RSS bound at every poll.
PSS_SAMPLE_SECONDS = 1.0
PAUSE_SECONDS = 10.0  # a poll this late: the machine did not run (RunningClock)
STDERR_LINES_KEPT = 500  # a stack dump of every thread of a big pool fits
DUMP_WAIT_SECONDS = 0.5
LOAD_TIMEOUT_SECONDS = 300.0  # importing the file and building the dataset (--load-timeout)
# Without --trial-timeout, a step stalls when no batch has come for this many times the slowest batch
# so far, and never sooner than MIN_STALL_SECONDS (heartbeat.py).
STALL_BATCHES = 20
MIN_STALL_SECONDS = 30.0
MIN_WINDOW_BATCHES = 32
REAP_SECONDS = 5.0
# TensorFlow's and absl's C++ log lines ("I0000 00:00:...", "W1202 ...", "WARNING: All log messages before
# absl::InitializeLog() ..."): never the reason a user needs.
TF_LOG_LINE = re.compile(r"^\s*([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")
# What faulthandler writes first when a process of the trial crashes (the child enables it; a forked Keras
# worker inherits it), and the signal each of its words stands for.
FATAL_ERROR = "Fatal Python error: "
FATAL_SIGNALS = {"Segmentation fault": "SIGSEGV", "Aborted": "SIGABRT", "Bus error": "SIGBUS",
                 "Floating-point exception": "SIGFPE", "Floating point exception": "SIGFPE",
                 "Illegal instruction": "SIGILL"}


def worker_crash_reason(words: str, lost_batches: list[int], user_frame: str | None) -> str | None:
    """The failure a worker's crash records (``words``: what faulthandler named), or None when the crash
    neither held a batch (``lost_batches``: calls of processes that are gone) nor ran the user's code: a
    helper process that TensorFlow's fork aborts as it exits loses nothing, and a lost batch the heartbeat
    did not see is still caught by the stall limit."""
    if not lost_batches and user_frame is None:
        return None
    name = FATAL_SIGNALS.get(words, words)
    held = f" while making batch {lost_batches[0]}" if lost_batches else ""
    return (f"a worker process died from {name}{held}" + (f", at {user_frame}" if user_frame else "")
            + f" ({words}): the data code crashes in a worker process, and Keras's pool replaces the dead "
            "worker without the batch it held")


# The flag that bounds what timed out in a step before the first trial: a stall between batches, or the step.
TIMEOUT_FIX = {StopKind.STALL: " Fix: if a batch can take that long, pass a larger --trial-timeout.",
               StopKind.TIMEOUT: " Fix: raise --load-timeout if it is only slow."}


class RunningClock:
    """``time.monotonic()`` less the pauses seen between calls: a call ``PAUSE_SECONDS`` after the last one
    means nothing here ran (a virtual machine's host can stop it for minutes while the monotonic clock runs
    on), so the user's code did not stall, it did not run. Called every ``POLL_SECONDS``."""

    def __init__(self):
        self.last = time.monotonic()
        self.paused = 0.0

    def now(self) -> float:
        now = time.monotonic()
        if now - self.last > PAUSE_SECONDS:
            self.paused += now - self.last
        self.last = now
        return now - self.paused


class TrialProcess:
    """One ``python -m tuner.trial.child`` in its own process group."""

    def __init__(self, memory_budget_bytes: int | None = None, backend: Backend = Backend.TENSORFLOW,
                 start_method: str | None = None):
        self.memory_budget_bytes = memory_budget_bytes
        self.backend = backend  # KERAS_BACKEND for the child: the one the user trains with (engines.backend)
        self.start_method = start_method  # how the child starts process pools (--start-method)
        self.process: subprocess.Popen | None = None
        self.last_foreign_cores = 0.0  # what other processes used during the last request (probes.load)
        self.busy = False  # a request is in flight (an interrupted call leaves it so)
        self.heartbeat = heartbeat.Heartbeat.create()  # kept across restarts: the slowest batch stays known
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._fatal: str | None = None  # what faulthandler said crashed during the request in flight

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["KERAS_BACKEND"] = self.backend
        env[heartbeat.ENVIRONMENT] = str(self.heartbeat.fd)
        if self.start_method:
            env[START_METHOD_ENVIRONMENT] = self.start_method
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuner.trial.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
            pass_fds=(self.heartbeat.fd,),
        )
        self._stderr_tail.clear()
        threading.Thread(target=self._drain_stderr, args=(self.process.stderr,), daemon=True).start()

    def call(self, request: Request, *, timeout: float, stall_after: float | None = None) -> tuple[Any, int]:
        """Runs ``request`` in the child; returns its value and the peak tree PSS.

        Raises ``TuneLoaderError`` for the user's errors, ``TrialStopped`` for a
        timeout (``timeout`` in all, or ``stall_after`` seconds without a
        batch: ``heartbeat``), a crash, a blown memory budget or an error
        inside ``fit``.
        """
        if self.process is None or self.process.poll() is not None:
            raise TrialStopped(TrialStatus.FAILED, "the trial process is not running", StopKind.DIED)
        pids, trees = (os.getpid(),), (self.process.pid,)  # not this process's other children: a user's load
        before, began = cpu_snapshot(pids, trees), time.monotonic()
        self.busy, self._fatal = True, None
        self.heartbeat.arm(watched=not isinstance(request, Load))  # importing the file is not watched
        write_message(self.process.stdin, request)
        peak = self._wait_for_reply(began + timeout, timeout, stall_after)
        try:
            reply = read_message(self.process.stdout)
        except EOFError:
            reply = None
        self.busy = False
        self.last_foreign_cores = foreign_cores(before, cpu_snapshot(pids, trees), time.monotonic() - began)
        if reply is None:
            self._fail(self._death_reason(), kind=StopKind.DIED)
        peak = max(peak, tree_pss_bytes(self.process.pid))
        if reply.ok:
            return reply.value, peak
        if reply.user_error:
            raise TuneLoaderError(reply.message)
        raise TrialStopped(TrialStatus.FAILED, reply.message)

    def _wait_for_reply(self, deadline: float, timeout: float, stall_after: float | None) -> int:
        """Polls until the reply is ready, sampling memory and the heartbeat; returns the peak PSS seen.
        Both timeouts run on a ``RunningClock``: a pause of the whole machine is no stall."""
        peak, clock, next_sample = 0, RunningClock(), 0.0
        while not select.select([self.process.stdout], [], [], POLL_SECONDS)[0]:
            now = clock.now()
            budget = self.memory_budget_bytes
            if now >= next_sample or (budget and tree_rss_bytes(self.process.pid) > budget):
                peak, next_sample = max(peak, tree_pss_bytes(self.process.pid)), now + PSS_SAMPLE_SECONDS
            if self.process.poll() is not None:
                self._fail(self._death_reason(), kind=StopKind.DIED)
            if self._fatal and (crash := self._crash_reason()):
                self._fail(crash, kind=StopKind.CRASH)
            if budget and peak > budget:
                self._fail(f"memory {peak / 2**20:,.0f} MiB went over the budget of "
                           f"{budget / 2**20:,.0f} MiB (--max-memory)", TrialStatus.INFEASIBLE, StopKind.MEMORY)
            if now > deadline:
                self._fail(f"timed out after {timeout:.0f} s{self._stuck_at()} (a worker hung or the data code "
                           "is too slow)", kind=StopKind.TIMEOUT)
            progress = self.heartbeat.read()
            if stall_after and progress.stalled(now, stall_after):
                self._fail(f"timed out: no batch came for {stall_after:.0f} s ({progress.where()})"
                           f"{self._stuck_at()}", kind=StopKind.STALL)
        return peak

    @property
    def slowest_batch_seconds(self) -> float:
        """The slowest batch (or model step) any trial process has shown so far."""
        return self.heartbeat.read().slowest_seconds

    def _stuck_at(self) -> str:
        """Where the user's code is stuck: every process in the group dumps its threads' stacks (the child
        registers ``faulthandler`` on ``SIGUSR1``; forked workers inherit it), and the innermost frame of
        user code names the line."""
        self._stderr_tail.clear()
        try:
            os.killpg(self.process.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return ""
        time.sleep(DUMP_WAIT_SECONDS)
        frame = innermost_user_frame(list(self._stderr_tail))
        return f", stuck at {frame}" if frame else ""

    def _fail(self, reason: str, status: TrialStatus = TrialStatus.FAILED, kind: StopKind = StopKind.ERROR) -> None:
        self.kill()
        raise TrialStopped(status, reason, kind)

    def kill(self) -> None:
        """Kills the child and every process in its group, then reaps the child."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process, self.busy = None, False

    def close(self) -> None:
        """Asks an idle child to exit (closing its stdin), then makes sure its group is gone. A child still
        busy with a request (the run was interrupted) is killed at once: it may be stuck in user code."""
        if self.process is None:
            return
        if self.busy:
            self.kill()
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            pass
        self.kill()

    def _death_reason(self) -> str:
        """Why the child ended, once it is reaped (its pipe closes a moment before it exits); the last line
        it wrote that is not a TensorFlow log line says what happened."""
        try:
            code = self.process.wait(timeout=REAP_SECONDS)
        except subprocess.TimeoutExpired:
            return "the trial process closed its pipe and stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
            return f"the trial process died from {name}{hint}"
        last = [line.strip() for line in self._stderr_tail if line.strip() and not TF_LOG_LINE.match(line)]
        return f"the trial process exited with code {code}" + (f": {last[-1]}" if last else "")

    def _crash_reason(self) -> str | None:
        """Why the trial must end now that faulthandler said a process of it crashed in native code, or None
        when the crash cost no batch (``worker_crash_reason``). Keras's pool replaces a dead worker without a
        word, and the batch it held never comes."""
        time.sleep(DUMP_WAIT_SECONDS)  # the rest of the dump
        if self.process.poll() is not None:
            self._fail(self._death_reason(), kind=StopKind.DIED)
        words, self._fatal = self._fatal.strip(), None
        return worker_crash_reason(words, self.heartbeat.calls_of_ended_processes(),
                                   innermost_user_frame(list(self._stderr_tail)))

    def _drain_stderr(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            self._stderr_tail.append(line)
            if line.startswith(FATAL_ERROR) and self.busy:
                self._fatal = line[len(FATAL_ERROR):]


class TrialMeasurer:
    """Times windows in a trial process (implements ``search.measurer.Measurer``): loads the user's
    workload once, and restarts the process after a kill.

    ``window_size``, ``window_timeout`` and ``fixed_cost`` come from the
    probes (``api.configure_measurer``); until then windows are short and
    timeouts generous. Every step after the dataset is built also stops
    when no batch has come for ``stall_after()`` seconds.
    """

    def __init__(self, source: FileSource | PickledSource, *, memory_budget_bytes: int | None,
                 load_timeout: float = LOAD_TIMEOUT_SECONDS, backend: Backend = Backend.TENSORFLOW,
                 trial_timeout: float | None = None, start_method: str | None = None):
        self.source = source
        self.process = TrialProcess(memory_budget_bytes, backend, start_method)
        self.load_timeout = load_timeout
        self.trial_timeout = trial_timeout  # --trial-timeout, when the user gave one
        self.window_size: Callable[[LoaderConfig], int] = lambda config: MIN_WINDOW_BATCHES
        self.window_timeout: Callable[[int], float] = lambda batches: load_timeout
        self.fixed_cost: Callable[[LoaderConfig], tuple[float, float]] | None = None
        self.epoch_batches: int | None = None
        self.loaded: Loaded | None = None

    def start(self) -> None:
        self.process.start()
        self.loaded = self._stage(Load(self.source), "Importing your file and building the dataset")
        self._stage(Prepare(), "The warm-up (building the model, one untimed epoch under the defaults)")

    def probe(self, usable_cores: int) -> tuple[DatasetProfile, ModelProfile]:
        return self._stage(Probe(usable_cores), "Probing the data code, the model step and Keras's pipeline")

    def stall_after(self) -> float:
        """How long a step may go without a batch: ``--trial-timeout`` when given, else ``STALL_BATCHES``
        times the slowest batch so far, at least ``MIN_STALL_SECONDS``."""
        return self.trial_timeout or max(MIN_STALL_SECONDS, STALL_BATCHES * self.process.slowest_batch_seconds)

    def _stage(self, request: Request, stage: str) -> Any:
        """A step before the first trial, under ``load_timeout`` (``--load-timeout``) in all and the stall
        limit once the dataset is built; a failure names it and the flag that bounds it."""
        try:
            value, _ = self.process.call(request, timeout=self.load_timeout, stall_after=self.stall_after())
        except TrialStopped as stop:
            raise TuneLoaderError(f"{stage} failed: {stop.reason}.{TIMEOUT_FIX.get(stop.kind, '')}") from stop
        return value

    def measure(self, config: LoaderConfig, window_index: int, epochs: int = 1,
                batches: int | None = None) -> Measurement:
        """A lone epoch misses what Keras spends after ``on_epoch_end``; the probe's estimate of it is added.
        Consecutive epochs contain it, so nothing is added to them. Each epoch gets the window's timeout
        (``--trial-timeout`` is per epoch)."""
        if self.process.process is None:
            self.start()
        batches = batches or self.window_size(config)
        offset = (window_index * batches) % self.epoch_batches if self.epoch_batches else 0
        began = time.perf_counter()
        (timing, leftovers), peak = self.process.call(Window(config, batches, offset, epochs),
                                                      timeout=epochs * self.window_timeout(batches),
                                                      stall_after=self.stall_after())
        if self.fixed_cost is not None:
            start_up, after_epoch = self.fixed_cost(config)
            timing = with_fixed_cost(timing, start_up, after_epoch if epochs == 1 else 0.0)
        return Measurement(timing, peak, leftovers, time.perf_counter() - began, self.process.last_foreign_cores)

    def close(self) -> None:
        self.process.close()
