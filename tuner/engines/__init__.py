"""Keras-version code lives here and only here.

``keras3`` drives ``keras.utils.PyDataset``; ``tf_keras`` drives legacy
``tf_keras.utils.Sequence`` and plain generators through ``fit_generator``;
``torch_loader`` drives a ``torch.utils.data.DataLoader`` under Keras 3's ``fit``;
``grain_loader`` drives a Grain dataset under Keras 3's ``fit``;
``tfdata`` runs the same per-batch code through a tf.data pipeline, under
either Keras. ``registry`` lists them. Detection checks ``sys.modules`` first:
if the user's file did not import a framework, nothing in it can be that
framework's dataset, and tune-loader does not pay seconds of import to find
that out.
"""

from __future__ import annotations

import collections.abc
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from probes.profiles import DataKind
from tuner.core import Backend, EngineName, Label, LoaderConfig, WindowTiming
from tuner.engines import registry, snippets
from tuner.engines.snippets import CodeBlock
from tuner.errors import TuneLoaderError

if TYPE_CHECKING:
    from tuner.results import Recommendation

__all__ = ["Engine", "KerasEngine", "choose", "code_blocks", "load", "resolve"]


class Engine(Protocol):
    """Times real training: one ``fit`` of ``epochs`` epochs of ``batches`` batches of ``dataset`` under
    ``config``."""

    def run_window(self, model: Any, dataset: Any, config: LoaderConfig, batches: int, offset: int,
                   epochs: int = 1) -> WindowTiming:
        """The last epoch's timing (``EpochClock.timing``); ``offset`` is where in the dataset the window's
        batches start."""


class KerasEngine(Engine, Protocol):
    """An engine that owns one Keras flavour: its datasets, its models and its ``fit``."""

    name: EngineName
    backend: Backend  # the Keras 3 backend ``fit`` runs on (tuner.engines.backend); tf-keras's is tensorflow

    def adopt(self, dataset: Any) -> Any:
        """The user's dataset in the form this engine trains on."""

    def kind(self, dataset: Any) -> DataKind: ...

    def num_batches(self, dataset: Any) -> int | None:
        """Batches per epoch, or None when the dataset has no length."""

    def user_knobs(self, dataset: Any) -> dict[str, Any]:
        """The knobs the user's loader was built with, by the names its code takes (empty: it holds none)."""

    def batch(self, dataset: Any, index: int) -> Any:
        """Batch ``index`` (a stream's next batch: it has no indices)."""

    def fresh_stream(self, dataset: Any) -> Callable[[], Iterator] | None:
        """What starts a new iterator over a dataset whose batches have no index (a generator, a stream);
        None for an indexed one."""

    def fit_epochs(self, model: Any, data: Any, config: LoaderConfig, epochs: int = 1) -> WindowTiming:
        """Times the epochs of one ``fit`` over ``data`` as it is (a tf.data pipeline, say), paced as
        ``config``'s pool paces an epoch (``epoch_model.drain_batches`` and ``start_batches``)."""

    def run_cached_window(self, model: Any, batch: Any, config: LoaderConfig, batches: int, dataset: Any,
                          measure_epoch_end: bool) -> tuple[WindowTiming, float, float | None]:
        """One epoch of free data (``batch`` every time): its timing, the training process's CPU seconds, and
        the seconds from ``on_epoch_end`` until ``fit`` returned (None when not measured)."""

    def build_default_model(self, batch: tuple) -> tuple[Any, str]: ...

    def describe_model(self, model: Any) -> str: ...

    def owns_model(self, model: Any) -> bool: ...


def is_generator(obj: Any) -> bool:
    """A plain generator, or any iterator that is not a Keras dataset (a lock-guarded wrapper, say)."""
    from tuner.engines.common import GeneratorData  # lazily: it imports numpy, which choosing never needs

    if isinstance(obj, GeneratorData):
        return True
    return isinstance(obj, collections.abc.Iterator) and not is_keras3_dataset(obj) and not is_tf_keras_sequence(obj)


def _loaded(module: str, path: str) -> Any:
    """``module.path`` if that Keras is already imported, else None."""
    if module not in sys.modules:
        return None
    value = sys.modules[module]
    for part in path.split("."):
        value = getattr(value, part)
    return value


def is_keras3_dataset(obj: Any) -> bool:
    return (cls := _loaded("keras", "utils.PyDataset")) is not None and isinstance(obj, cls)


def is_tf_keras_sequence(obj: Any) -> bool:
    return (cls := _loaded("tf_keras", "utils.Sequence")) is not None and isinstance(obj, cls)


def is_torch_loader(obj: Any) -> bool:
    """A ``torch.utils.data.DataLoader``, or a torch ``Dataset`` whose ``make_dataloader(**knobs)`` builds
    one (``torch_loader.LoaderSource``)."""
    loader, dataset = _loaded("torch", "utils.data.DataLoader"), _loaded("torch", "utils.data.Dataset")
    return loader is not None and (isinstance(obj, loader) or (
        isinstance(obj, dataset) and callable(getattr(obj, "make_dataloader", None))))


def is_grain_dataset(obj: Any) -> bool:
    """A Grain ``MapDataset``, ``IterDataset`` or ``DataLoader`` (``grain_data.taken`` says how it is timed)."""
    kinds = [_loaded("grain", name) for name in ("MapDataset", "IterDataset", "DataLoader")]
    return any(kind is not None and isinstance(obj, kind) for kind in kinds)


def is_dataset(obj: Any) -> bool:
    return (is_keras3_dataset(obj) or is_tf_keras_sequence(obj) or is_torch_loader(obj) or is_grain_dataset(obj)
            or is_generator(obj))


def is_dataset_class(cls: type) -> bool:
    bases = [_loaded("keras", "utils.PyDataset"), _loaded("tf_keras", "utils.Sequence")]
    return any(base is not None and issubclass(cls, base) for base in bases)


def is_model(obj: Any) -> bool:
    bases = [_loaded("keras", "Model"), _loaded("tf_keras", "Model")]
    return any(base is not None and isinstance(obj, base) for base in bases)


def choose(dataset: Any, requested: str | None) -> EngineName:
    """The engine for ``dataset``: what it is decides, ``requested`` (``--engine``) may override.

    A tf-keras Sequence can run under Keras 3 (wrapped as a PyDataset: the
    migration comparison); a PyDataset cannot run under tf-keras; a plain
    generator runs under Keras 3 only inline, so asking for that is an error
    that says what to do instead.
    """
    if requested is not None:
        registry.entry(requested)  # an unknown name is refused with the known ones
    if is_keras3_dataset(dataset):
        if requested == EngineName.TF_KERAS:
            raise TuneLoaderError(
                f"{type(dataset).__name__} is a Keras 3 keras.utils.PyDataset, which tf-keras cannot train on. "
                "Fix: drop --engine tf-keras (or pass --engine keras3). Received: engine='tf-keras'"
            )
        return EngineName.KERAS3
    if is_tf_keras_sequence(dataset):
        return EngineName(requested or EngineName.TF_KERAS)
    if is_torch_loader(dataset):
        if requested not in (None, EngineName.TORCH_DATALOADER):
            raise TuneLoaderError(
                f"{type(dataset).__name__} is a torch DataLoader (or a Dataset with make_dataloader), which only "
                "the torch-dataloader engine times: its knobs are num_workers, prefetch_factor and "
                f"persistent_workers. Fix: drop --engine. Received: engine={requested!r}"
            )
        return EngineName.TORCH_DATALOADER
    if is_grain_dataset(dataset):
        if requested not in (None, EngineName.GRAIN):
            raise TuneLoaderError(
                f"{type(dataset).__name__} is a Grain dataset, which only the grain engine times: its knobs are "
                "mp_prefetch's worker_count and worker_buffer_size. Fix: drop --engine. "
                f"Received: engine={requested!r}")
        return EngineName.GRAIN
    if is_generator(dataset):
        if requested == EngineName.KERAS3:
            raise TuneLoaderError(
                "Keras 3 cannot run a plain generator in parallel: fit() takes it, but workers, "
                "use_multiprocessing and max_queue_size exist only on keras.utils.PyDataset, so the generator "
                "always runs inline and there is nothing to tune. Fix: drop --engine keras3 to tune it under "
                "tf-keras (fit_generator with workers), or rewrite it as a PyDataset (__len__ and __getitem__ "
                "returning batch i); the tf-keras report shows the gain that parallel batches measured. "
                "Received: engine='keras3' with a generator"
            )
        return EngineName.TF_KERAS
    raise TuneLoaderError(
        f"Expected {registry.datasets_taken()}. Received: {type(dataset).__name__}"
    )


def load(name: EngineName) -> KerasEngine:
    """Imports the engine (and with it its framework)."""
    return registry.load(name)


def resolve(dataset: Any, requested: str | None) -> KerasEngine:
    """The engine that trains ``dataset``, loaded."""
    return load(choose(dataset, requested))


def label_for(answer: Recommendation) -> Label:
    """How the answer's engine names a setting: its knob set's ``label``."""
    return registry.knob_set(answer.engine, answer.backend).label


def code_blocks(answer: Recommendation) -> list[CodeBlock]:
    """The answer as code to paste, as its engine's knob set writes it, then the tf.data pipeline when the
    race measured it faster."""
    blocks = registry.knob_set(answer.engine, answer.backend).code_blocks(answer)
    return blocks + ([snippets.tf_data(answer)] if answer.tf_data_is_faster else [])
