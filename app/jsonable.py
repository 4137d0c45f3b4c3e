"""JSON-ready values of views and screen pops, for the hot paths that cannot afford
FastAPI's ``jsonable_encoder``.

Invariant: the result is built only of ``dict`` (str keys), ``list``, ``str``, ``int``,
``float``, ``bool`` and ``None``.  Enums become their value, dataclasses and pydantic
models their fields (recursively), sets and tuples lists, anything else its ``str``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (see the module invariant)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)
