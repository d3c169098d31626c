"""Finding the processes a CLI run left behind, even those orphaned when their parent died: each run is
tagged through an environment variable that every process it starts inherits."""

from __future__ import annotations

import os
import time
import uuid

import psutil

TAG = "TUNE_LOADER_TEST_RUN"


def tagged_env() -> tuple[dict[str, str], str]:
    tag = uuid.uuid4().hex
    return {**os.environ, TAG: tag}, tag


def tagged_processes(tag: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TAG) == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def left_after(tag: str, grace_seconds: float = 10.0) -> list[psutil.Process]:
    """The tagged processes still alive after ``grace_seconds`` (an orphan's watchdog needs a moment)."""
    deadline = time.monotonic() + grace_seconds
    while (alive := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive
