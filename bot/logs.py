"""Structured logging: one JSON object per line in production, readable text on a laptop.

Every line carries the webhook delivery id and the run id of the work it belongs to, taken
from context variables that `log_context` sets at the edges (HTTP request, bus worker), so a
delivery can be followed from the webhook to the last handler with one query. What is logged
is chosen by the callers: never secrets, signatures or whole payloads.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from bot.config import ConfigurationError, LogFormat

_delivery_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("kfp_bot_delivery_id",
                                                                          default=None)
_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("kfp_bot_run_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "delivery_id", "run_id"}

_HANDLER_NAME = "kfp-bot"


@contextmanager
def log_context(*, delivery_id: str | None = None, run_id: str | None = None) -> Iterator[None]:
    """Tag every log line emitted inside the block (in this thread or task) with these ids.

    Only the ids given are set; an id set by an enclosing block stays visible otherwise.
    """
    tokens = []
    if delivery_id is not None:
        tokens.append((_delivery_id, _delivery_id.set(delivery_id)))
    if run_id is not None:
        tokens.append((_run_id, _run_id.set(run_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_ids() -> dict[str, str | None]:
    """The ids `log_context` set for the current thread or task."""
    return {"delivery_id": _delivery_id.get(), "run_id": _run_id.get()}


class ContextFilter(logging.Filter):
    """Copies the context ids onto each record so that any formatter can show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "delivery_id"):
            record.delivery_id = _delivery_id.get()
        if not hasattr(record, "run_id"):
            record.run_id = _run_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, delivery_id, run_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "delivery_id": getattr(record, "delivery_id", None),
            "run_id": getattr(record, "run_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [delivery run] message`, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name}={value}" for name, value in (("delivery", getattr(record, "delivery_id", None)),
                                                       ("run", getattr(record, "run_id", None))) if value]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class RedactingFormatter(logging.Formatter):
    """Masks secrets in the whole formatted line (message, extras and traceback alike)."""

    def __init__(self, inner: logging.Formatter, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.inner = inner
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


def configure_logging(format: LogFormat, level: str | int, *, stream: IO[str] | None = None,
                      redact: Callable[[str], str] | None = None) -> None:
    """Send the root logger's lines to `stream` (stderr) in `format`, at `level`.

    `redact` (the bot's `Redactor`, built from its settings) masks secrets in every line.
    Calling it again replaces the handler it installed before (no duplicated lines).
    """
    resolved = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(resolved, int):
        raise ConfigurationError(f"KFP_BOT_LOG_LEVEL: unknown log level {level!r} "
                                 "(use DEBUG, INFO, WARNING, ERROR or CRITICAL)")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    formatter: logging.Formatter = JsonFormatter() if format is LogFormat.JSON else TextFormatter()
    handler.setFormatter(RedactingFormatter(formatter, redact) if redact else formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(resolved)
    # The app logs every request itself, with the delivery id; werkzeug's own lines would repeat it.
    logging.getLogger("werkzeug").setLevel(max(resolved, logging.WARNING))
