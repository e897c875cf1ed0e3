"""Typed, bounded access to a webhook's JSON payload (`Reader`), with errors naming the field.

`bot.payloads` reads GitHub's payload dicts only through a `Reader`: a field that is missing, of
the wrong type or outside `bot.bounds` is a `PayloadError` naming its dotted path, which the
webhook answers with a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bot.bounds import MAX_ID, MAX_NUMBER, BoundsError, check_int, check_text
from kfp_bot_errors import KfpBotError

T = TypeVar("T")

_MISSING = object()
_PARTS: dict[str, tuple[str, ...]] = {}  # dotted paths, split once (the code names a few dozen)


class PayloadError(KfpBotError):
    """The JSON body is not the event its header says: a field is missing or has the wrong type."""

    def __init__(self, event_name: str, field: str, problem: str) -> None:
        self.event_name = event_name
        self.field = field
        super().__init__(f"{event_name} payload: field '{field}' {problem}")


class Reader:
    """Typed access to nested payload fields, with errors naming the dotted path."""

    def __init__(self, event_name: str, payload: Mapping[str, Any]) -> None:
        self.event_name = event_name
        self._event_name = event_name
        self._payload = payload

    def get(self, path: str, kind: type[T], *, default: Any = _MISSING, nullable: bool = False,
            check: Callable[[Any], Any] | None = None) -> T:
        """The value at `path`; `default` when absent (or null) and a default is given.

        Present values are bounded (`bot.bounds`): `check` when given, otherwise every string
        must be valid text and every number an id in GitHub's range.
        """
        value: Any = self._payload
        parts = _PARTS.get(path) or _PARTS.setdefault(path, tuple(path.split(".")))
        for depth, part in enumerate(parts):
            if type(value) is not dict and not isinstance(value, Mapping):
                raise PayloadError(self._event_name, ".".join(parts[:depth]), "is not an object")
            value = value.get(part, _MISSING)
            if value is _MISSING or value is None:
                if value is None and nullable:
                    return None  # type: ignore[return-value]
                if default is not _MISSING:
                    return default
                raise PayloadError(self._event_name, path, "is missing" if value is _MISSING else "is null")
        # bool is an int in Python; a JSON true where a number belongs is still the wrong type.
        if type(value) is not kind and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise PayloadError(self._event_name, path,
                               f"should be {_TYPE_NAMES.get(kind, kind.__name__)}, "
                               f"got {json_type(value)}")
        if check is None:
            check = _DEFAULT_CHECKS.get(kind)
        if check is not None:
            try:
                check(value)
            except BoundsError as exc:
                raise PayloadError(self._event_name, path, str(exc)) from None
        return value

    def has(self, path: str) -> bool:
        """True when `path` is present and not null (e.g. `issue.pull_request`)."""
        value: Any = self._payload
        for part in path.split("."):
            if not isinstance(value, Mapping) or value.get(part) is None:
                return False
            value = value[part]
        return True


def _id(value: int) -> int:
    return check_int(value, 1, MAX_ID)


def issue_number(value: int) -> int:
    return check_int(value, 1, MAX_NUMBER)


_DEFAULT_CHECKS: dict[type, Callable[[Any], Any]] = {str: check_text, int: _id}

_TYPE_NAMES = {str: "a string", int: "a number", bool: "true or false", dict: "an object",
               Mapping: "an object", list: "an array"}


def json_type(value: Any) -> str:
    """How a JSON value is called in error messages (`an array`, `a string`, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
