"""The parent side of the trial process: starts the child, sends it requests, watches it, kills it.

Every request waits in short polls; between polls the process tree's PSS is
sampled, so a trial's peak memory is measured while it runs and a trial over
the budget is stopped before it takes the machine down. Killing means the
whole process group: the child and every Keras worker it forked. A restart
(import, model build, graph tracing: several seconds) happens before the
next window's clock starts, so it never lands in a timing.
"""

from __future__ import annotations

import collections
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from probes.load import cpu_snapshot, foreign_cores
from probes.memory import tree_pss_bytes
from probes.profiles import DatasetProfile, ModelProfile
from tuner.analysis.epoch_model import with_fixed_cost
from tuner.errors import TuneLoaderError
from tuner.results import LoaderConfig, TrialStatus
from tuner.search.measurer import Measurement, TrialStopped
from tuner.trial.protocol import (FileSource, Load, Loaded, PickledSource, Prepare, Probe, Request, Window,
                                  read_message, write_message)

POLL_SECONDS = 0.2
STDERR_LINES_KEPT = 60
STARTUP_TIMEOUT_SECONDS = 300.0
PROBE_TIMEOUT_SECONDS = 300.0
MIN_WINDOW_BATCHES = 32


class TrialProcess:
    """One ``python -m tuner.trial.child`` in its own process group."""

    def __init__(self, memory_budget_bytes: int | None = None):
        self.memory_budget_bytes = memory_budget_bytes
        self.process: subprocess.Popen | None = None
        self.last_foreign_cores = 0.0  # what other processes used during the last request (probes.load)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuner.trial.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        self._stderr_tail.clear()
        threading.Thread(target=self._drain_stderr, args=(self.process.stderr,), daemon=True).start()

    def call(self, request: Request, *, timeout: float) -> tuple[Any, int]:
        """Runs ``request`` in the child; returns its value and the peak tree PSS.

        Raises ``TuneLoaderError`` for the user's errors, ``TrialStopped`` for a
        timeout, a crash, a blown memory budget or an error inside ``fit``.
        """
        if self.process is None or self.process.poll() is not None:
            raise TrialStopped(TrialStatus.FAILED, "the trial process is not running")
        pids = (os.getpid(), self.process.pid)
        before, began = cpu_snapshot(pids), time.monotonic()
        write_message(self.process.stdin, request)
        peak = self._wait_for_reply(began + timeout, timeout)
        try:
            reply = read_message(self.process.stdout)
        except EOFError:
            reply = None
        self.last_foreign_cores = foreign_cores(before, cpu_snapshot(pids), time.monotonic() - began)
        if reply is None:
            self._fail(self._death_reason())
        peak = max(peak, tree_pss_bytes(self.process.pid))
        if reply.ok:
            return reply.value, peak
        if reply.user_error:
            raise TuneLoaderError(reply.message)
        raise TrialStopped(TrialStatus.FAILED, reply.message)

    def _wait_for_reply(self, deadline: float, timeout: float) -> int:
        """Polls until the reply is ready, sampling memory; returns the peak PSS seen."""
        peak = 0
        while not select.select([self.process.stdout], [], [], POLL_SECONDS)[0]:
            peak = max(peak, tree_pss_bytes(self.process.pid))
            if self.process.poll() is not None:
                self._fail(self._death_reason())
            if self.memory_budget_bytes and peak > self.memory_budget_bytes:
                self._fail(f"memory {peak / 2**20:,.0f} MiB went over the budget of "
                           f"{self.memory_budget_bytes / 2**20:,.0f} MiB (--max-memory)", TrialStatus.INFEASIBLE)
            if time.monotonic() > deadline:
                self._fail(f"timed out after {timeout:.0f} s (a worker hung or the data code is too slow)")
        return peak

    def _fail(self, reason: str, status: TrialStatus = TrialStatus.FAILED) -> None:
        self.kill()
        raise TrialStopped(status, reason)

    def kill(self) -> None:
        """Kills the child and every process in its group, then reaps the child."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def close(self) -> None:
        """Asks the child to exit (closing its stdin), then makes sure its group is gone."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            pass
        self.kill()

    def _death_reason(self) -> str:
        code = self.process.poll()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
            return f"the trial process died from {name}{hint}"
        last = [line.strip() for line in self._stderr_tail if line.strip()]
        return f"the trial process exited with code {code}" + (f": {last[-1]}" if last else "")

    def _drain_stderr(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self._stderr_tail.append(raw.decode(errors="replace"))


class TrialMeasurer:
    """Times windows in a trial process (implements ``search.measurer.Measurer``): loads the user's
    workload once, and restarts the process after a kill.

    ``window_size``, ``window_timeout`` and ``fixed_cost`` come from the
    probes (``api.configure_measurer``); until then windows are short and
    timeouts generous.
    """

    def __init__(self, source: FileSource | PickledSource, *, memory_budget_bytes: int | None):
        self.source = source
        self.process = TrialProcess(memory_budget_bytes)
        self.window_size: Callable[[LoaderConfig], int] = lambda config: MIN_WINDOW_BATCHES
        self.window_timeout: Callable[[int], float] = lambda batches: STARTUP_TIMEOUT_SECONDS
        self.fixed_cost: Callable[[LoaderConfig], tuple[float, float]] | None = None
        self.epoch_batches: int | None = None
        self.loaded: Loaded | None = None

    def start(self) -> None:
        self.process.start()
        try:
            self.loaded, _ = self.process.call(Load(self.source), timeout=STARTUP_TIMEOUT_SECONDS)
            self.process.call(Prepare(), timeout=STARTUP_TIMEOUT_SECONDS)
        except TrialStopped as stop:
            raise TuneLoaderError(f"Loading the dataset and model and running a first epoch failed: {stop.reason}") from stop

    def probe(self, usable_cores: int) -> tuple[DatasetProfile, ModelProfile]:
        try:
            profiles, _ = self.process.call(Probe(usable_cores), timeout=PROBE_TIMEOUT_SECONDS)
        except TrialStopped as stop:
            raise TuneLoaderError(f"Probing the data code and the model failed: {stop.reason}") from stop
        return profiles

    def measure(self, config: LoaderConfig, window_index: int, epochs: int = 1) -> Measurement:
        """A lone epoch misses what Keras spends after ``on_epoch_end``; the probe's estimate of it is added.
        Consecutive epochs contain it, so nothing is added to them."""
        if self.process.process is None:
            self.start()
        batches = self.window_size(config)
        offset = (window_index * batches) % self.epoch_batches if self.epoch_batches else 0
        began = time.perf_counter()
        (timing, leftovers), peak = self.process.call(Window(config, batches, offset, epochs),
                                                      timeout=self.window_timeout(batches * epochs))
        if self.fixed_cost is not None:
            start_up, after_epoch = self.fixed_cost(config)
            timing = with_fixed_cost(timing, start_up, after_epoch if epochs == 1 else 0.0)
        return Measurement(timing, peak, leftovers, time.perf_counter() - began, self.process.last_foreign_cores)

    def close(self) -> None:
        self.process.close()
