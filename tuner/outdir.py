"""The output folder: checked before TensorFlow starts, held by one run at a time, its previous results kept.

Two runs writing one folder would split one study between them and
overwrite each other's report, so a run takes an exclusive ``flock`` on
``FOLDER/.tune-loader.lock`` first. The kernel drops the lock when its
holder dies however it dies, so a lock file that still names an owner but
is free was left by a run that is gone, and is taken over with a note. The
file is emptied, never deleted, on release: deleting it would let a waiting
run lock a file that no longer has a name.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
import tempfile
from pathlib import Path

from tuner.errors import TuneLoaderError

LOCK_NAME = ".tune-loader.lock"
RESULT_FILES = ("study.db", "results.json", "report.html", "trials.csv", "windows.csv", "summary.md")
PREVIOUS = "previous"


class OutputFolder:
    """A folder this run alone writes to. ``claim()`` it, then ``keep_previous()`` once the input proved good."""

    def __init__(self, path: Path, lock_file, took_over_from: str):
        self.path = path
        self._lock_file = lock_file
        self.took_over_from = took_over_from  # the owner named by a stale lock, or ""

    @classmethod
    def claim(cls, path: Path) -> OutputFolder:
        """Checks that ``path`` is, or can become, a writable folder, and locks it; one line if not."""
        received = f"Received: --out {path}"
        if path.exists() and not path.is_dir():
            raise TuneLoaderError(f"--out names a file, but tune-loader writes a folder of results there. "
                                  f"Fix: pass a folder (new or existing). {received}")
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()  # a lock file left in a read-only folder would still open
            lock_file = open(path / LOCK_NAME, "a+")
        except OSError as error:
            raise TuneLoaderError(f"Cannot write the output folder ({error.strerror}). Fix: pass an --out "
                                  f"folder you can write to. {received}") from error
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read(lock_file) or "another process"
            lock_file.close()
            raise TuneLoaderError(f"{path} is in use by another tune-loader run ({owner}). Fix: wait for it to "
                                  f"finish, or pass another --out. {received}") from None
        stale = _read(lock_file)
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()} on {socket.gethostname()}, started {_utc_now():%Y-%m-%d %H:%M:%S} UTC")
        lock_file.flush()
        return cls(path, lock_file, stale)

    def keep_previous(self) -> Path | None:
        """Moves an earlier run's results into ``previous/<UTC time>/`` so this run starts a fresh study; returns
        where they went (None when there were none)."""
        found = [self.path / name for name in RESULT_FILES if (self.path / name).exists()]
        if not found:
            return None
        kept = self.path / PREVIOUS / f"{_utc_now():%Y%m%dT%H%M%S.%fZ}"
        kept.mkdir(parents=True)
        for file in found:
            file.rename(kept / file.name)
        return kept

    def release(self) -> None:
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.close()  # closing drops the flock

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(lock_file) -> str:
    lock_file.seek(0)
    return lock_file.read().strip()


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
