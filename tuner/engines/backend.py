"""The Keras 3 backend the user trains with, and what it changes for the loader knobs.

Keras 3 reads its backend from ``KERAS_BACKEND``, else from the ``backend``
key of ``$KERAS_HOME/keras.json`` (``~/.keras/keras.json``), else uses
TensorFlow (keras/src/backend/config.py). The PyDataset knobs mean the same
under every backend, but the pipeline behind them does not:

- TensorFlow wraps the batches in tf.data; without a pool it adds
  ``prefetch(AUTOTUNE)``, and its autotuner can make an epoch wait.
- JAX and torch iterate the PyDataset themselves. On a CPU, JAX fetches no
  batch ahead: without a pool a batch is made, then trained on.
- Keras's process pool is ``multiprocessing.Pool``, started with Python's
  default method, ``fork`` on Linux before Python 3.14. JAX runs threads of
  its own and warns that forking it can deadlock, so processes are not
  tried under JAX.

tf-keras always trains on TensorFlow, whatever ``KERAS_BACKEND`` says.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tuner.core import Backend, StartMethod
from tuner.errors import TuneLoaderError

TRAINING_BACKENDS = tuple(Backend)
_EXTRA = {Backend.JAX: "pip install 'tune-loader[jax]' (or pip install jax)",
          Backend.TORCH: "pip install torch (the CPU build is enough to tune a data loader)",
          Backend.TENSORFLOW: "pip install tensorflow"}
FORK_UNSAFE = (
    "under the JAX backend Keras starts its process pool with os.fork() (Python's default start method on Linux), "
    "and JAX, which runs threads of its own, warns that forking it can deadlock; tune-loader does not recommend a "
    "setting that can hang your training, so it timed inline and threads only"
)


@dataclass(frozen=True)
class BackendChoice:
    """A backend and where it came from: ``--backend``, ``KERAS_BACKEND``, a keras.json, or Keras's default."""

    name: Backend
    source: str


def configured(requested: str | None = None, environ: Mapping[str, str] = os.environ) -> BackendChoice:
    """The backend Keras 3 would train with here, or ``requested`` (``--backend``) when given.

    Refuses a backend that cannot train (numpy, openvino) or is not installed, before any trial starts.
    """
    if requested:
        name, source = requested, "--backend"
    elif environ.get("KERAS_BACKEND"):
        name, source = environ["KERAS_BACKEND"], "KERAS_BACKEND"
    else:
        config = _keras_json(environ)
        name, source = _read_backend(config), str(config)
        if not name:
            name, source = Backend.TENSORFLOW, "Keras's default"
    if name not in TRAINING_BACKENDS:
        raise TuneLoaderError(
            f"tune-loader times training, and Keras 3 trains only with the {', '.join(TRAINING_BACKENDS)} backends. "
            f"Fix: pass --backend {Backend.TENSORFLOW} (or {Backend.JAX}, {Backend.TORCH}), or set KERAS_BACKEND to "
            f"one of them. Received: backend={name!r} from {source}"
        )
    choice = BackendChoice(Backend(name), source)
    if importlib.util.find_spec(choice.name.value) is None:
        raise TuneLoaderError(
            f"The {choice.name} backend ({choice.source}) is not installed in this Python. "
            f"Fix: {_EXTRA[choice.name]}, or pass --backend to tune under another. Received: backend={choice.name!r}"
        )
    return choice


def _keras_json(environ: Mapping[str, str]) -> Path:
    """Where Keras 3 reads its config: ``$KERAS_HOME/keras.json``, else ``~/.keras`` (``/tmp/.keras`` when the
    home folder is not writable)."""
    if "KERAS_HOME" in environ:
        return Path(environ["KERAS_HOME"]) / "keras.json"
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras" / "keras.json"


def _read_backend(config: Path) -> str | None:
    """The ``backend`` key of a keras.json; None when the file is missing or unreadable, as Keras treats it."""
    try:
        value = json.loads(config.read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def processes_excluded(backend: Backend, start_method: StartMethod) -> str | None:
    """Why processes are not tried under ``backend`` when their workers start by ``start_method``, or None
    when they are: only forking JAX is unsafe (a spawned or forkserver worker is a fresh interpreter)."""
    return FORK_UNSAFE if backend == Backend.JAX and start_method == StartMethod.FORK else None


def label(backend: Backend) -> str:
    return {Backend.TENSORFLOW: "TensorFlow", Backend.JAX: "JAX", Backend.TORCH: "PyTorch"}.get(backend, backend)


def what_it_changes(backend: Backend, start_method: StartMethod) -> str:
    """One line for the report: how this backend feeds a PyDataset, and whether processes were allowed (their
    workers started by ``start_method``)."""
    if backend == Backend.TENSORFLOW:
        return ("TensorFlow: without a pool Keras feeds the batches through tf.data with prefetch, so one batch is "
                "made while the model trains on the last; processes were allowed")
    if backend == Backend.JAX:
        return ("JAX: Keras iterates the PyDataset itself and, on a CPU, fetches no batch ahead, so without a pool a "
                "batch is made, then trained on; " + ("processes were not tried (fork is unsafe under JAX)"
                                                      if processes_excluded(backend, start_method)
                                                      else f"processes were allowed (started by {start_method})"))
    return ("PyTorch: Keras iterates the PyDataset itself (a DataLoader without workers around it), so without a "
            "pool a batch is made, then trained on; processes were allowed")
