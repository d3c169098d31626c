"""Finds the dataset (and optionally the model) in the user's Python file.

The convention, in order of precedence:

1. ``--dataset NAME`` / ``--model NAME`` name any attribute of the file.
2. A function ``make_dataset()`` (and ``make_model()``) taking no arguments; else a function
   ``make_dataloader(**knobs)`` that returns a torch DataLoader, called with none (its defaults).
3. A dataset instance at module level.
4. A dataset class or generator function defined in the file that can be
   called with no arguments.

A dataset is a Keras 3 ``PyDataset``, a tf-keras ``Sequence``, a torch ``DataLoader`` (or a torch
``Dataset`` with ``make_dataloader``) or a plain generator (``tuner.engines`` decides which engine runs it).

Several candidates at the first level that has any is an error naming them
all, never a guess.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tuner.engines import registry
from tuner.engines.snippets import DATALOADER_FACTORY  # make_dataloader(**knobs): a DataLoader's knobs handed over
from tuner.errors import TuneLoaderError

DATASET_FACTORY = "make_dataset"
MODEL_FACTORY = "make_model"


@dataclass(frozen=True)
class Found:
    """A chosen attribute of the user's file and how to turn it into an object."""

    name: str
    build: Callable[[], Any]


def import_user_file(path: str | Path) -> ModuleType:
    """Imports ``path`` as a module; its own directory goes on ``sys.path`` first."""
    path = Path(path).resolve()
    if not path.is_file():
        raise TuneLoaderError(
            f"No such file: {path}. Expected a Python file that defines a dataset, "
            f"e.g. a `{DATASET_FACTORY}()` function. Received: path={path}"
        )
    if path.suffix != ".py":
        raise TuneLoaderError(f"Expected a Python file ending in .py. Received: path={path}")
    sys.path.insert(0, str(path.parent))
    module_name = _module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as error:
        raise TuneLoaderError(
            f"{path.name} called sys.exit({error.code!r}) while being imported (line {_user_line(error, path)}). "
            f"tune-loader imports the file to find the dataset. Fix: put script code under "
            f"`if __name__ == \"__main__\":`. Received: file={path}"
        ) from None
    except Exception as error:
        raise TuneLoaderError(
            f"Importing {path.name} failed at line {_user_line(error, path)} with "
            f"{type(error).__name__}: {error}. Fix the file so that `python {path.name}` runs."
        ) from error
    return module


def _module_name(path: Path) -> str:
    """The file's own name as a module when ``import STEM`` finds this very file (its folder is first on
    ``sys.path``), so that a worker started by spawn or forkserver, which unpickles the dataset by its
    class's module, imports the file again as the user's training would; otherwise (the name is taken, or
    not an identifier) a private name."""
    stem = path.stem
    if stem.isidentifier() and stem not in sys.modules:
        importlib.invalidate_caches()  # the folder's listing may predate the file
        try:
            found = importlib.util.find_spec(stem)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.origin and Path(found.origin).resolve() == path:
            return stem
    return f"tune_loader_user_{stem}"


def _user_line(error: BaseException, path: Path) -> int | None:
    """The line of ``path`` where ``error`` arose: a syntax error's own line, else the deepest frame in the
    file (frames below it are the code it called, those above it Python's import machinery)."""
    if isinstance(error, SyntaxError) and error.filename == str(path):
        return error.lineno
    in_file = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)]
    return in_file[-1].lineno if in_file else None


def find_dataset(
    module: ModuleType,
    chosen: str | None,
    *,
    is_dataset: Callable[[Any], bool],
    is_dataset_class: Callable[[type], bool],
) -> Found:
    """Picks the dataset per the module docstring's convention."""
    if chosen:
        return _chosen(module, chosen, "--dataset", is_instance=is_dataset)
    for name in (DATASET_FACTORY, DATALOADER_FACTORY):
        if callable(factory := getattr(module, name, None)):
            return Found(name, factory)
    public = _public_attributes(module)
    instances = [name for name, value in public if is_dataset(value)]
    if instances:
        return _only_one(instances, module, lambda name: getattr(module, name), "dataset instances")
    classes = [
        name
        for name, value in public
        if getattr(value, "__module__", None) == module.__name__
        and ((inspect.isclass(value) and is_dataset_class(value)) or inspect.isgeneratorfunction(value))
    ]
    buildable = [name for name in classes if _constructible(getattr(module, name))]
    if buildable:
        return _only_one(buildable, module, lambda name: getattr(module, name), "dataset classes")
    needing_arguments = [name for name in classes if name not in buildable]
    hint = (
        f" Found classes that need arguments: {', '.join(needing_arguments)}."
        if needing_arguments
        else ""
    )
    raise TuneLoaderError(
        f"No dataset found in {_file_name(module)}.{hint} Expected a `{DATASET_FACTORY}()` function that "
        f"returns {registry.datasets_taken()}; a `{DATALOADER_FACTORY}(**knobs)` function that returns a torch "
        "DataLoader; any of those datasets at module level; a PyDataset or Sequence subclass that takes no "
        f"arguments; or a generator function that takes none. Fix: add `def {DATASET_FACTORY}(): return MyDataset(...)`, or pass "
        "--dataset NAME."
    )


def find_model(module: ModuleType, chosen: str | None, *, is_model: Callable[[Any], bool]) -> Found | None:
    """The user's model factory or instance, or None to use tune-loader's small default."""
    if chosen:
        return _chosen(module, chosen, "--model", is_instance=is_model)
    factory = getattr(module, MODEL_FACTORY, None)
    if callable(factory):
        return Found(MODEL_FACTORY, factory)
    models = [name for name, value in _public_attributes(module) if is_model(value)]
    if models:
        return _only_one(models, module, lambda name: getattr(module, name), "models", flag="--model")
    return None


def _chosen(module: ModuleType, name: str, flag: str, *, is_instance: Callable[[Any], bool]) -> Found:
    if not hasattr(module, name):
        available = ", ".join(n for n, _ in _public_attributes(module)) or "nothing public"
        raise TuneLoaderError(
            f"{_file_name(module)} has no attribute {name!r} (it defines: {available}). "
            f"Fix: pass {flag} with one of those names. Received: {flag} {name}"
        )
    value = getattr(module, name)
    if is_instance(value):
        return Found(name, lambda: value)
    if callable(value):
        return Found(name, value)
    raise TuneLoaderError(
        f"{name!r} in {_file_name(module)} is a {type(value).__name__}, neither the object to tune nor a "
        f"function or class that builds it with no arguments. Received: {flag} {name}"
    )


def _only_one(names, module, value_of, what: str, flag: str = "--dataset") -> Found:
    if len(names) > 1:
        raise TuneLoaderError(
            f"Found several {what} in {_file_name(module)}: {', '.join(names)}. "
            f"Expected one. Fix: choose with {flag} NAME (e.g. {flag} {names[0]})."
        )
    name = names[0]
    value = value_of(name)
    builds_itself = inspect.isclass(value) or inspect.isgeneratorfunction(value)
    return Found(name, value if builds_itself else (lambda: value))


def _constructible(cls: type) -> bool:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def _public_attributes(module: ModuleType) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in vars(module).items() if not name.startswith("_")]


def _file_name(module: ModuleType) -> str:
    return Path(module.__file__).name if getattr(module, "__file__", None) else module.__name__
