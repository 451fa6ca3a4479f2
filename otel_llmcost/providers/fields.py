"""Reading SDK objects and plain dicts alike, whatever their shape.

Responses arrive as pydantic models (parsed by the SDK), as dicts (raw bodies, SSE
events, tests), or as something unexpected; these helpers read a field from any of
them and turn a bad value into "absent", never an exception.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for dicts, ``None`` otherwise.

    A pydantic (v2) model's declared fields are read from its ``__dict__``; a name it does
    not declare is looked up where ``BaseModel.__getattr__`` would look (its extras, its
    class), without the failing ``__getattr__`` and its AttributeError (microseconds each).
    """
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    values = getattr(obj, "__dict__", None)
    if type(values) is dict:
        value = values.get(name, _MISSING)
        if value is not _MISSING:
            return value
        cls = type(obj)
        if getattr(cls, "__pydantic_fields__", None) is not None and not name.startswith("_"):
            if hasattr(cls, name):  # a property or method: found before __getattr__
                return getattr(obj, name, None)
            extra = getattr(obj, "__pydantic_extra__", None)
            return extra.get(name) if extra else None
    return getattr(obj, name, None)


_NO_FIELDS: dict[str, Any] = {}


def fields_of(obj: Any) -> dict[str, Any]:
    """The declared fields of an SDK model (its ``__dict__``), a dict as is, else nothing.

    For per-chunk hot paths: ``getattr`` of a field a pydantic model does not declare
    goes through ``BaseModel.__getattr__`` and an AttributeError, microseconds per chunk.
    """
    if isinstance(obj, dict):
        return obj
    fields = getattr(obj, "__dict__", None)
    return fields if isinstance(fields, dict) else _NO_FIELDS


def as_int(value: Any) -> int:
    """A non-negative token count, or 0 for anything that is not one (bools excluded)."""
    if type(value) is int:
        return value if value > 0 else 0
    if isinstance(value, float) and value == value and 0 < value < 1e15:
        return int(value)
    return 0


def as_float(value: Any) -> float | None:
    """An int or float (not a bool) as a float, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def plain(value: Any) -> Any:
    """SDK objects as JSON-able data (pydantic ``model_dump``, JSON mode, no None fields);
    lists and tuples of them as lists; anything else as it is. For prompt hashes, token
    counts and content capture, which must see the same data whatever shape it came in."""
    if isinstance(value, (str, dict)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        try:
            return dump(exclude_none=True, mode="json")
        except Exception:
            return repr(value)
    return value


def to_json(value: Any, *, fallback: str) -> str:
    """``value`` as JSON, SDK objects included (others as ``str``); ``fallback`` if it cannot be."""
    try:
        return json.dumps(value, default=lambda o: plain(o) if hasattr(o, "model_dump") else str(o))
    except Exception:
        return fallback
