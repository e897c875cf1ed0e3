"""The wire form of events: the JSON the bus carries (in-process outbox rows and Pub/Sub messages).

Kept apart from the event definitions (`handlers.models`) so adding an event is one class there
and one entry in `_KINDS` here; decoding is driven by the dataclasses' type hints, so a field
added to an event travels without code here.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from handlers.models import (
    BuildStatus,
    CheckRunEvent,
    CheckSuiteEvent,
    Event,
    IssueCommentEvent,
    Notification,
    PullRequestEvent,
    PushEvent,
    RunStart,
    RunStatus,
)

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_PLAIN = frozenset({str, int, float, bool, type(None)})
_KINDS: dict[str, type] = {cls.kind.value: cls for cls in (
    PullRequestEvent, IssueCommentEvent, PushEvent, RunStart, BuildStatus, RunStatus, Notification,
    CheckRunEvent, CheckSuiteEvent)}


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-serialisable form of an event, for the bus (in-process or Pub/Sub)."""
    return {"kind": event.kind.value, "data": _encode(event)}


def _encode(value: Any) -> Any:
    """What `dataclasses.asdict` gives, enums as their values; walks the fields directly (every
    webhook's event is encoded while it is answered, and `asdict` deep-copies every leaf)."""
    names = _FIELD_NAMES.get(type(value))
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in fields(value))
    if names is not None:
        encoded = {}
        for name in names:
            field_value = getattr(value, name)
            encoded[name] = field_value if type(field_value) in _PLAIN else _encode(field_value)
        return encoded
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def event_from_dict(payload: Mapping[str, Any]) -> Event:
    """Inverse of `event_to_dict`; raises ValueError for an unknown kind or shape."""
    cls = _KINDS.get(str(payload.get("kind")))
    if cls is None:
        raise ValueError(f"unknown event kind {payload.get('kind')!r}")
    return _decode(cls, payload.get("data") or {})


def _decode(cls: type, data: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        hint = hints[f.name]
        value = data[f.name]
        target = next((a for a in (getattr(hint, "__args__", None) or (hint,))
                       if isinstance(a, type)), None)
        if value is None:
            pass
        elif target is not None and is_dataclass(target) and isinstance(value, Mapping):
            value = _decode(target, value)
        elif target is not None and issubclass(target, enum.Enum):
            value = target(value)
        elif getattr(hint, "__origin__", None) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
