"""The engines tune-loader can time, one entry each: adding an engine is its module, a member of
``tuner.core.EngineName`` and one line in ``ENGINES``.

An entry names the engine, where its class lives (imported only to train, so
that choosing costs no framework import), its knob set (``tuner.engines.knobs``)
and what to install when its framework is missing. Nothing here imports a
framework.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from tuner.core import Backend, EngineName
from tuner.errors import TuneLoaderError


@dataclass(frozen=True)
class EngineEntry:
    name: EngineName
    module: str
    class_name: str
    knobs: str  # the knob set's name in tuner.engines.knobs
    install: str  # the fix when importing ``module`` fails
    keras: str  # the Keras that trains it, as sentences name it
    knobs_by_backend: tuple[tuple[str, str], ...] = ()  # (Keras backend, knob set) where it has more knobs
    only_backend: Backend | None = None  # the one backend it trains on, whatever KERAS_BACKEND says
    migrates_to: EngineName | None = None  # the engine its data would move to (--compare-keras3 times both)
    # How the backend feeds the data is the PyDataset's (engines.backend.what_it_changes)
    feeds_a_pydataset: bool = False
    takes: tuple[str, ...] = ()  # the datasets it trains on, as errors name them


ENGINES = (
    EngineEntry(EngineName.KERAS3, "tuner.engines.keras3", "Keras3Engine", "KERAS_KNOBS", "pip install keras",
                "Keras 3", ((Backend.TORCH, "PYDATASET_IN_DATALOADER_KNOBS"),), feeds_a_pydataset=True,
                takes=("a keras.utils.PyDataset",)),
    EngineEntry(EngineName.TF_KERAS, "tuner.engines.tf_keras", "TfKerasEngine", "TF_KERAS_KNOBS",
                "pip install 'tune-loader[legacy]' (or pip install tf-keras matching your TensorFlow)", "tf-keras",
                only_backend=Backend.TENSORFLOW, migrates_to=EngineName.KERAS3,
                takes=("a tf_keras.utils.Sequence", "a plain generator")),
    EngineEntry(EngineName.TORCH_DATALOADER, "tuner.engines.torch_loader", "TorchLoaderEngine",
                "DATALOADER_KNOBS", "pip install 'tune-loader[torch]' (or pip install torch)", "Keras 3",
                takes=("a torch DataLoader",)),
    EngineEntry(EngineName.GRAIN, "tuner.engines.grain_loader", "GrainEngine", "GRAIN_KNOBS",
                "pip install 'tune-loader[grain]' (or pip install grain)", "Keras 3",
                takes=("a Grain MapDataset, IterDataset or DataLoader",)),
)

NAMES = tuple(entry.name for entry in ENGINES)


def datasets_taken() -> str:
    """Every kind of dataset some engine trains on, as one phrase for errors."""
    kinds = [kind for found in ENGINES for kind in found.takes]
    return ", ".join(kinds[:-1]) + ", or " + kinds[-1]


def entry(name: str) -> EngineEntry:
    for candidate in ENGINES:
        if candidate.name == name:
            return candidate
    raise TuneLoaderError(f"Unknown engine. Expected one of {', '.join(NAMES)}. Received: engine={name!r}")


def knob_set(name: str, backend: str | None = None):
    """The engine's knobs (``tuner.engines.knobs``) under the Keras ``backend``."""
    from tuner.engines import knobs

    found = entry(name)
    return getattr(knobs, dict(found.knobs_by_backend).get(backend, found.knobs))


def inline_uses_tf_data(name: EngineName, backend: Backend) -> bool:
    """Whether Keras feeds the engine's pool-less data through tf.data, prefetch and autotuner included:
    under TensorFlow, where its knob set says so (``torch_data_loader_adapter.py`` reads a DataLoader through
    ``from_generator`` without a prefetch)."""
    return backend == Backend.TENSORFLOW and knob_set(name, backend).inline_through_tf_data


def load(name: str):
    """Imports the engine (and with it its framework) and returns an instance."""
    found = entry(name)
    try:
        module = importlib.import_module(found.module)
    except ImportError as error:
        raise TuneLoaderError(
            f"The {found.name} engine could not be imported ({error}). Fix: {found.install}. "
            f"Received: engine={found.name!r}"
        ) from error
    return getattr(module, found.class_name)()
