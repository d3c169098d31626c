"""State that a forked worker inherits but must not use: found in the dataset's attributes, as the thread
test finds state that threads must not share.

Under fork, Keras's process pool hands the dataset to its workers as ``initargs``, which the fork inherits
without pickling, so a dataset that does not pickle still runs in processes. What it inherits may still
break there: SQLite says a connection must not be carried across ``fork()``; a socket or an open file
shares its offset and buffer with the parent and every other worker; a thread does not exist in the child
at all; an initialised CUDA context cannot be used by a forked child. Each is named with where it was found,
and the reasons give the fix (open it lazily, in the worker that uses it).
"""

from __future__ import annotations

import io
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from typing import Any

from probes.profiles import ForkHazard, ForkHazardKind

# The walk stops this deep in the attributes and after this many objects: a dataset's handles sit near
# its top, and a walk through a large in-memory table must stay cheap.
MAX_DEPTH = 4
MAX_OBJECTS = 5000
_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), type)
# Array and framework objects hold no handle of the user's, and their internals are large: not walked.
_OPAQUE_PACKAGES = frozenset({"numpy", "pandas", "scipy", "tensorflow", "keras", "tf_keras", "torch", "jax", "jaxlib"})


def fork_hazards(dataset: Any, name: str = "dataset") -> tuple[ForkHazard, ...]:
    """The fork-unsafe objects reachable from ``dataset``'s attributes (named by their path, like
    ``dataset.conn``), and an initialised CUDA context in this process."""
    found = [ForkHazard(kind, path) for path, value in _walk(dataset, name) if (kind := _kind_of(value))]
    if _cuda_initialised():
        found.append(ForkHazard(ForkHazardKind.CUDA, "this process (torch.cuda)"))
    return tuple(found)


def _kind_of(value: Any) -> ForkHazardKind | None:
    if isinstance(value, sqlite3.Connection) and _open_connection(value):
        return ForkHazardKind.SQLITE
    if isinstance(value, socket.socket) and value.fileno() != -1:
        return ForkHazardKind.SOCKET
    if isinstance(value, io.IOBase) and not value.closed and value not in (sys.stdin, sys.stdout, sys.stderr):
        return ForkHazardKind.OPEN_FILE
    if isinstance(value, threading.Thread) and value.is_alive():
        return ForkHazardKind.THREAD
    return None


def _walk(root: Any, name: str) -> Iterator[tuple[str, Any]]:
    """Breadth-first over attributes, list items and dict values, each object once."""
    seen, queue = set(), [(name, root, 0)]
    while queue and len(seen) < MAX_OBJECTS:
        path, value, depth = queue.pop(0)
        if id(value) in seen or isinstance(value, _LEAVES):
            continue
        seen.add(id(value))
        yield path, value
        if depth < MAX_DEPTH and _kind_of(value) is None:
            queue.extend((child_path, child, depth + 1) for child_path, child in _children(path, value))


def _children(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    """Items of containers, and attributes of the user's (and libraries') objects; the standard library's
    own objects (a thread's, a logger's) are not looked into: their handles are shared by design."""
    if isinstance(value, dict):
        yield from ((f"{path}[{key!r}]", item) for key, item in list(value.items())[:100])
    elif isinstance(value, (list, tuple, set, frozenset)):
        yield from ((f"{path}[{index}]", item) for index, item in enumerate(list(value)[:100]))
    elif type(value).__module__.partition(".")[0] not in sys.stdlib_module_names | _OPAQUE_PACKAGES:
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            yield from ((f"{path}.{key}", item) for key, item in attributes.items())


def _open_connection(connection: sqlite3.Connection) -> bool:
    try:
        connection.total_changes  # noqa: B018  (raises once the connection is closed)
    except sqlite3.ProgrammingError:
        return False
    return True


def _cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # a torch build without CUDA support  # noqa: BLE001
        return False
