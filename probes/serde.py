"""JSON round-trip for the frozen result dataclasses.

Every result type is a frozen dataclass whose fields are plain values,
tuples, optionals or other such dataclasses; ``to_dict`` and ``from_dict``
walk the type hints so no class has to hand-write its own conversion.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(obj: Any) -> Any:
    """Converts a dataclass tree to JSON-ready dicts, lists and scalars."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): to_dict(value) for key, value in obj.items()}
    return obj


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuilds ``cls`` from ``to_dict`` output, following its type hints."""
    return _convert(cls, data)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        return tuple(_convert(item_hint, item) for item in value)
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        return {key: _convert(value_hint, item) for key, item in value.items()}
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint) if f.init}
        return hint(**{k: _convert(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value
