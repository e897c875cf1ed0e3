"""Query parameters of the API and the page, parsed and bounded: a bad one is a 400 naming it.

A value that reaches the store unchecked can fail there instead (a number past 64 bits overflows
SQLite's integer, a NUL cannot be sent to PostgreSQL): that would be a 500. Every parameter the
routes read goes through one of these functions, each raising Werkzeug's `BadRequest` with the
parameter's name and what it must be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

from werkzeug.exceptions import BadRequest

from bot.bounds import MAX_NAME, BoundsError, check_text, printable
from handlers.run_models import RunState


@overload
def int_arg(args: Mapping[str, str], name: str, *, low: int, high: int, default: int) -> int: ...
@overload
def int_arg(args: Mapping[str, str], name: str, *, low: int, high: int, default: None = None) -> int | None: ...
def int_arg(args: Mapping[str, str], name: str, *, low: int, high: int, default: int | None = None) -> int | None:
    """A whole number in `low..high`, or `default` when absent or empty."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    # int() accepts '1_000' and any number of digits; neither is a sensible query value.
    if not text.lstrip("+-").isdigit() or not text.isascii() or len(text) > 20:
        raise BadRequest(f"'{name}' must be a whole number, got {_show(raw)}")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}, got {value}")
    return value


def bool_arg(args: Mapping[str, str], name: str) -> bool | None:
    """true/false/1/0 (any case), or None when absent or empty."""
    raw = (args.get(name) or "").lower()
    if not raw:
        return None
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"'{name}' must be true or false, got {_show(raw)}")
    return raw in ("true", "1")


def state_arg(args: Mapping[str, str], name: str) -> RunState | None:
    """A run state by its value (any case), or None when absent or empty."""
    raw = args.get(name)
    if not raw:
        return None
    try:
        return RunState(raw.lower())
    except ValueError:
        valid = ", ".join(state.value for state in RunState)
        raise BadRequest(f"unknown {name} {_show(raw)}; valid states: {valid}") from None


def text_arg(args: Mapping[str, str], name: str) -> str | None:
    """Text of at most `MAX_NAME` characters without NUL, or None when absent or empty."""
    raw = args.get(name)
    if not raw:
        return None
    return text_value(name, raw)


def text_value(name: str, raw: str) -> str:
    """`raw` when it is storable text of at most `MAX_NAME` characters; `name` is named otherwise."""
    try:
        return check_text(raw, limit=MAX_NAME)
    except BoundsError as exc:
        raise BadRequest(f"'{name}' {exc}") from None


def _show(raw: str) -> str:
    """A parameter's value quoted for an error message: bounded and always printable."""
    return repr(printable(raw, 40))
