"""The messages between the parent and the trial process: typed requests, one reply each.

Each message is a pickled object behind an 8-byte length. Requests are
frozen dataclasses the child dispatches on by type, so a misspelt request
is a type error in the parent, not a missing method in the child.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from probes.profiles import DataKind
from tuner.core import Backend, EngineName, LoaderConfig


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
    class is importable by name; in the child a class that came by value
    (defined in ``__main__`` or a notebook) would wrongly look unpicklable.
    """

    payload: bytes
    label: str
    pickle_error: str
    engine: str | None = None


@dataclass(frozen=True)
class Load:
    """Import or unpickle the dataset and model, and choose the engine. Replies ``Loaded``."""

    source: FileSource | PickledSource


@dataclass(frozen=True)
class Prepare:
    """Build the model and run one untimed epoch (the first ``fit`` traces the graph)."""


@dataclass(frozen=True)
class Probe:
    """Profile the data code, the model step and Keras's pipeline. Replies ``(DatasetProfile, ModelProfile)``."""

    usable_cores: int


@dataclass(frozen=True)
class Window:
    """Time one ``fit`` of ``epochs`` epochs of ``batches`` batches from ``offset`` under ``config``. Replies
    ``(WindowTiming, leftover worker processes)``: the last epoch's timing, measured from the end of the one
    before when there is one."""

    config: LoaderConfig
    batches: int
    offset: int
    epochs: int = 1


Request = Load | Prepare | Probe | Window


@dataclass(frozen=True)
class Loaded:
    """What the child found in the source."""

    dataset_name: str
    kind: DataKind
    class_name: str
    engine: EngineName
    backend: Backend  # what Keras actually loaded in the trial process


@dataclass(frozen=True)
class Reply:
    """The outcome of one request: a value, or a message that is the user's error or a failed trial."""

    ok: bool
    value: Any = None
    user_error: bool = False
    message: str = ""
    seconds: float = 0.0


def write_message(stream: BinaryIO, message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(body)) + body)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    """The next message, or None when the other side closed the pipe between messages."""
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
