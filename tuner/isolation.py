"""The parent's handle on the trial runner: timeouts, memory budget, clean kills.

Every request waits in short polls; between polls the process tree's PSS is
sampled, so a trial's peak memory is measured while it runs and a trial over
the budget is stopped before it takes the machine down. Killing means the
whole process group: the runner and every Keras worker it forked.
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
from typing import Any

from probes.memory import tree_pss_bytes
from tuner.errors import TuneLoaderError
from tuner.runner import read_message, write_message

POLL_SECONDS = 0.2
STDERR_LINES_KEPT = 60


class TrialStopped(Exception):
    """A request did not finish: ``status`` is ``failed`` or ``infeasible``."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RunnerProcess:
    """One ``python -m tuner.runner`` child in its own process group."""

    def __init__(self, memory_budget_bytes: int | None = None):
        self.memory_budget_bytes = memory_budget_bytes
        self.process: subprocess.Popen | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("KERAS_BACKEND", "tensorflow")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuner.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        self._stderr_tail.clear()
        threading.Thread(target=self._drain_stderr, args=(self.process.stderr,), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, operation: str, *arguments: Any, timeout: float) -> tuple[Any, int]:
        """Runs ``operation`` in the runner; returns its value and the peak tree PSS.

        Raises ``TuneLoaderError`` for the user's errors, ``TrialStopped`` for a
        timeout, a crash, a blown memory budget or an error inside ``fit``.
        """
        if self.process is None or self.process.poll() is not None:
            raise TrialStopped("failed", "the trial runner is not running")
        write_message(self.process.stdin, (operation, arguments))
        deadline = time.monotonic() + timeout
        peak = 0
        stdout = self.process.stdout
        while True:
            ready, _, _ = select.select([stdout], [], [], POLL_SECONDS)
            if ready:
                break
            peak = max(peak, tree_pss_bytes(self.pid))
            if self.process.poll() is not None:
                reason = self._death_reason()
                self.kill()
                raise TrialStopped("failed", reason)
            if self.memory_budget_bytes and peak > self.memory_budget_bytes:
                self.kill()
                raise TrialStopped(
                    "infeasible",
                    f"memory {peak / 2**20:,.0f} MiB went over the budget of "
                    f"{self.memory_budget_bytes / 2**20:,.0f} MiB (--max-memory)",
                )
            if time.monotonic() > deadline:
                self.kill()
                raise TrialStopped("failed", f"timed out after {timeout:.0f} s (a worker hung or the data code is too slow)")
        try:
            reply = read_message(stdout)
        except EOFError:
            reply = None
        if reply is None:
            reason = self._death_reason()
            self.kill()
            raise TrialStopped("failed", reason)
        peak = max(peak, tree_pss_bytes(self.pid))
        if reply["ok"]:
            return reply["value"], peak
        if reply["user_error"]:
            raise TuneLoaderError(reply["message"])
        raise TrialStopped("failed", reply["message"])

    def kill(self) -> None:
        """Kills the runner and every process in its group, then reaps the runner."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def close(self) -> None:
        """Asks the runner to exit (closing stdin), then makes sure its group is gone."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            pass
        self.kill()

    def stderr_tail(self) -> str:
        return "".join(self._stderr_tail)

    def _death_reason(self) -> str:
        code = self.process.poll()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
            return f"the trial runner died from {name}{hint}"
        last = [line.strip() for line in self._stderr_tail if line.strip()]
        return f"the trial runner exited with code {code}" + (f": {last[-1]}" if last else "")

    def _drain_stderr(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self._stderr_tail.append(raw.decode(errors="replace"))
