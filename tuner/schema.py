"""The JSON Schema of ``results.json``, derived from the result dataclasses so it cannot drift from them.

``python -m tuner.schema`` rewrites ``tuner/results.schema.json``, which ships in the package; a test
checks that the shipped file is what the dataclasses give and that a real results.json validates.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from pathlib import Path
from typing import Any

from tuner.results import SCHEMA_VERSION, Recommendation

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def results_schema() -> dict:
    definitions: dict[str, dict] = {}
    root = _schema(Recommendation, definitions)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"tune-loader results.json, schema version {SCHEMA_VERSION}", **root, "$defs": definitions}


def _schema(kind: Any, definitions: dict[str, dict]) -> dict:
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if kind is type(None):
        return {"type": "null"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(argument, definitions) for argument in arguments]}
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return {"type": "array", "items": _schema(arguments[0], definitions)}
        return {"type": "array", "prefixItems": [_schema(a, definitions) for a in arguments],
                "minItems": len(arguments), "maxItems": len(arguments)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(arguments[1], definitions)}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return {"type": "string", "enum": [member.value for member in kind]}
    if dataclasses.is_dataclass(kind):
        if kind.__name__ not in definitions:
            definitions[kind.__name__] = {}  # placeholder: a dataclass may refer to itself
            definitions[kind.__name__] = _dataclass_schema(kind, definitions)
        return {"$ref": f"#/$defs/{kind.__name__}"}
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    raise TypeError(f"results.json has a field of a type the schema cannot express. Received: {kind!r}")


def _dataclass_schema(kind: type, definitions: dict[str, dict]) -> dict:
    hints = typing.get_type_hints(kind)
    fields = dataclasses.fields(kind)
    required = [f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return {"type": "object", "description": (kind.__doc__ or "").strip().splitlines()[0],
            "properties": {f.name: _schema(hints[f.name], definitions) for f in fields}, "required": required}


def main() -> None:
    SCHEMA_PATH.write_text(json.dumps(results_schema(), indent=1) + "\n")
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
