"""How the parent sees a trial process stall: a few numbers in memory the child and its workers share.

The child (and every worker it forks, which inherit the mapping) writes
when a batch last came back from the user's code or reached the model, which
batch was last asked for and which last came back, and the slowest batch
so far. The parent reads them between its polls and stops a step when no
batch has come for too long (``TrialMeasurer.stall_after``), long before a
total timeout would. Each field is one aligned 8-byte word, written whole,
so a reader never sees half of one; writers that race only ever lose a
beat, never the stall.

While ``watched`` is 0 nothing counts as a stall: importing the user's file
and building the dataset (bounded by ``--load-timeout``), and the first step
of every ``fit``, which traces the graph and waits for the pool to start
(bounded by the window's total timeout).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

ENVIRONMENT = "TUNE_LOADER_HEARTBEAT_FD"
_FIELDS = ("last_progress", "requested", "returned", "slowest_seconds", "watched")
_FORMATS = {"last_progress": "d", "requested": "q", "returned": "q", "slowest_seconds": "d", "watched": "q"}
_WORD = 8


@dataclass(frozen=True)
class Progress:
    """What the heartbeat says: ``last_progress`` (``time.monotonic()``, the same clock in every process on
    Linux), the last batch index asked for and the last that came back (-1: none), the slowest batch so
    far in seconds, and whether a stall counts now."""

    last_progress: float
    requested: int
    returned: int
    slowest_seconds: float
    watched: bool

    def where(self) -> str:
        """Which batch the user's code is stuck on, as far as the heartbeat knows."""
        if self.requested > self.returned:
            return f"batch {self.requested} was asked for and has not come back"
        if self.returned >= 0:
            return f"the last batch to come back was batch {self.returned}"
        return "no batch came back"


class Heartbeat:
    """The shared words, over a file descriptor that the parent makes and the child inherits."""

    def __init__(self, fd: int):
        self.fd = fd
        self._map = mmap.mmap(fd, _WORD * len(_FIELDS))

    @classmethod
    def create(cls) -> Heartbeat:
        """A fresh heartbeat in an unlinked temporary file (the parent's side), closed with this object."""
        handle = tempfile.TemporaryFile()
        handle.truncate(_WORD * len(_FIELDS))
        heartbeat = cls(handle.fileno())
        heartbeat._file = handle
        return heartbeat

    def _set(self, field: str, value: float | int) -> None:
        struct.pack_into(_FORMATS[field], self._map, _WORD * _FIELDS.index(field), value)

    def _get(self, field: str) -> float | int:
        return struct.unpack_from(_FORMATS[field], self._map, _WORD * _FIELDS.index(field))[0]

    def arm(self, watched: bool) -> None:
        """Starts a step: progress counts from now; ``watched`` says whether a stall counts yet."""
        self._set("last_progress", time.monotonic())
        self._set("requested", -1)
        self._set("returned", -1)
        self._set("watched", int(watched))

    def watch(self, watched: bool) -> None:
        self._set("last_progress", time.monotonic())
        self._set("watched", int(watched))

    def requested(self, index: int) -> None:
        self._set("requested", index)

    def returned(self, index: int, seconds: float) -> None:
        self._set("last_progress", time.monotonic())
        self._set("returned", index)
        if seconds > self._get("slowest_seconds"):
            self._set("slowest_seconds", seconds)

    def beat(self, seconds: float | None = None) -> None:
        """A model step ended (``seconds``: how long it took, when known)."""
        self._set("last_progress", time.monotonic())
        if seconds is not None and seconds > self._get("slowest_seconds"):
            self._set("slowest_seconds", seconds)

    def read(self) -> Progress:
        return Progress(self._get("last_progress"), self._get("requested"), self._get("returned"),
                        self._get("slowest_seconds"), bool(self._get("watched")))


_current: Heartbeat | None = None


def install_from_environment() -> None:
    """The child's side: opens the heartbeat whose descriptor the parent passed, if any. Outside a trial
    process (the user's own training, unit tests) every call below does nothing."""
    global _current
    fd = os.environ.get(ENVIRONMENT)
    if fd:
        _current = Heartbeat(int(fd))


@contextlib.contextmanager
def batch(index: int) -> Iterator[None]:
    """Around one call of the user's batch code."""
    if _current is None:
        yield
        return
    _current.requested(index)
    began = time.monotonic()
    yield
    _current.returned(index, time.monotonic() - began)


def step(seconds: float | None = None) -> None:
    if _current is not None:
        _current.beat(seconds)


def watch(watched: bool) -> None:
    if _current is not None:
        _current.watch(watched)
