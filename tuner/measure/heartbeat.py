"""How the parent sees a trial process stall: a few numbers in memory the child and its workers share.

The child (and every worker it forks, which inherit the mapping) writes
when a batch last came back from the user's code or reached the model, which
batches are being made and since when, which last came back, and the slowest
batch so far. The parent reads them between its polls and stops a step when no
batch has come for too long (``TrialMeasurer.stall_after``), long before a
total timeout would. Each field is one aligned 8-byte word, written whole,
so a reader never sees half of one; writers that race only ever lose a
beat, never the stall.

While ``watched`` is 0 a pause without batches is no stall: building the
model, and the first steps of every epoch, which wait for the epoch's pool to
start (a step per process worker: fresh interpreters under forkserver or spawn,
a forked copy of the training process on a loaded machine) and, in a ``fit``'s
first epoch, trace the graph (``epoch_model.start_batches``). One call of the user's batch code running past the
limit is a stall even then (``Progress.stalled``): Keras shuffles a
PyDataset's batches, so the first step may wait on a hung batch.
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
_FIELDS = ("last_progress", "returned", "slowest_seconds", "watched")
_FORMATS = {"last_progress": "d", "returned": "q", "slowest_seconds": "d", "watched": "q"}
_WORD = 8
# Calls of the user's batch code in flight, one slot each, chosen by the batch index: a pool runs at
# most its workers at once, over indices a queue apart, so two calls that share a slot are rare (and then
# the earlier one is lost to the heartbeat: its batch index, and its stall while a step is unwatched, which
# the step's total timeout still bounds). A slot is (index + 1, start, pid); index 0 is free.
_SLOTS = 256
_SLOT = struct.Struct("qdq")
_SIZE = _WORD * len(_FIELDS) + _SLOT.size * _SLOTS


@dataclass(frozen=True)
class Progress:
    """What the heartbeat says: ``last_progress`` (``time.monotonic()``, the same clock in every process on
    Linux), the oldest batch index asked for that has not come back and the last that came back (-1:
    none), the slowest batch so far in seconds, and whether a stall counts now."""

    last_progress: float
    oldest_in_flight: int
    oldest_in_flight_since: float  # its start (``time.monotonic()``); 0.0 when nothing is in flight
    returned: int
    slowest_seconds: float
    watched: bool

    def stalled(self, now: float, limit: float) -> bool:
        """No batch for ``limit`` seconds while watched; while not, one batch call running that long."""
        if self.watched:
            return now - self.last_progress > limit
        return self.oldest_in_flight >= 0 and now - self.oldest_in_flight_since > limit

    def where(self) -> str:
        """Which batch the user's code is stuck on, as far as the heartbeat knows: the call in flight the
        longest (the pool's other workers and a parallel tf.data ask for later batches meanwhile)."""
        if self.oldest_in_flight >= 0:
            return f"batch {self.oldest_in_flight} was asked for and has not come back"
        if self.returned >= 0:
            return f"the last batch to come back was batch {self.returned}"
        return "no batch came back"


class Heartbeat:
    """The shared words, over a file descriptor that the parent makes and the child inherits."""

    def __init__(self, fd: int):
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)

    @classmethod
    def create(cls) -> Heartbeat:
        """A fresh heartbeat in an unlinked temporary file (the parent's side), closed with this object."""
        handle = tempfile.TemporaryFile()
        handle.truncate(_SIZE)
        heartbeat = cls(handle.fileno())
        heartbeat._file = handle
        return heartbeat

    def _set(self, field: str, value: float | int) -> None:
        struct.pack_into(_FORMATS[field], self._map, _WORD * _FIELDS.index(field), value)

    def _get(self, field: str) -> float | int:
        return struct.unpack_from(_FORMATS[field], self._map, _WORD * _FIELDS.index(field))[0]

    @staticmethod
    def _slot_offset(index: int) -> int:
        return _WORD * len(_FIELDS) + _SLOT.size * (index % _SLOTS)

    def arm(self, watched: bool) -> None:
        """Starts a step: progress counts from now; ``watched`` says whether a stall counts yet."""
        self._set("last_progress", time.monotonic())
        self._set("returned", -1)
        self._set("watched", int(watched))
        self._map[_WORD * len(_FIELDS):] = bytes(_SLOT.size * _SLOTS)

    def watch(self, watched: bool) -> None:
        self._set("last_progress", time.monotonic())
        self._set("watched", int(watched))

    def requested(self, index: int) -> None:
        _SLOT.pack_into(self._map, self._slot_offset(index), index + 1, time.monotonic(), os.getpid())

    def returned(self, index: int, seconds: float) -> None:
        self._set("last_progress", time.monotonic())
        self._set("returned", index)
        self.ended(index)
        if seconds > self._get("slowest_seconds"):
            self._set("slowest_seconds", seconds)

    def ended(self, index: int) -> None:
        """The call of batch ``index`` is no longer in flight (it returned or raised)."""
        offset = self._slot_offset(index)
        if _SLOT.unpack_from(self._map, offset)[0] == index + 1:
            struct.pack_into("q", self._map, offset, 0)

    def beat(self, seconds: float | None = None) -> None:
        """A model step ended (``seconds``: how long it took, when known)."""
        self._set("last_progress", time.monotonic())
        if seconds is not None and seconds > self._get("slowest_seconds"):
            self._set("slowest_seconds", seconds)

    def read(self) -> Progress:
        index, since = self._oldest_in_flight()
        return Progress(self._get("last_progress"), index, since, self._get("returned"),
                        self._get("slowest_seconds"), bool(self._get("watched")))

    def calls_of_ended_processes(self) -> list[int]:
        """The batch indices of calls whose process is gone before they ended, newest first: a worker that
        died holding them (or a pool that Keras ended at an epoch's end)."""
        calls = _SLOT.iter_unpack(self._map[_WORD * len(_FIELDS):_SIZE])
        return [index - 1 for index, _, pid in sorted(calls, key=lambda call: -call[1]) if index and not _alive(pid)]

    def _oldest_in_flight(self) -> tuple[int, float]:
        """The index and start of the call in flight the longest, skipping calls of processes that are gone
        (Keras ends a process pool at each epoch's end, whatever its workers were doing); (-1, 0.0): none."""
        area = slice(_WORD * len(_FIELDS), _SIZE)
        first, second = self._map[area], self._map[area]  # a slot that differs was being written: skip it
        calls = (call for call, again in zip(_SLOT.iter_unpack(first), _SLOT.iter_unpack(second)) if call == again)
        alive = [(start, index - 1) for index, start, pid in calls if index and _alive(pid)]
        if not alive:
            return -1, 0.0
        since, index = min(alive)
        return index, since


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    try:
        yield
    except BaseException:  # a generator's StopIteration, the user's error: no batch, but no call in flight
        _current.ended(index)
        raise
    _current.returned(index, time.monotonic() - began)


def step(seconds: float | None = None) -> None:
    if _current is not None:
        _current.beat(seconds)


def watch(watched: bool) -> None:
    if _current is not None:
        _current.watch(watched)
