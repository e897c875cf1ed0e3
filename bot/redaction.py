"""Secret values never leave the bot in text: one redaction, applied where text goes out.

Pipeline code is untrusted: an exception or an output tail may carry anything the code could
read, including the bot's own secrets. `Redactor` replaces every configured secret value (each
`SecretStr` setting, the GitHub App's private key and each line of it, a password in the
database URL) with `[redacted]`. It is built once from the settings at start-up and applied at
the edges where text leaves: the store (run errors and transition details, which feed the API,
the page and notifications), the reporter (checks, statuses, comments, replies), the chat
(Slack) and the log formatter.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from pydantic import SecretStr

from handlers.models import RepoRef
from handlers.reports import HeadReport, Notice, PullReport, RunReport
from handlers.run_models import Run

if TYPE_CHECKING:
    from bot.config import Settings
    from handlers.ports.chat import Chat
    from handlers.ports.code_host import Reporter

R = TypeVar("R", RunReport, HeadReport, PullReport, Notice)
MASK = "[redacted]"
# Shorter values would mask ordinary words; secrets are never this short in practice (the
# README says so next to KFP_BOT_WEBHOOK_SECRET).
MIN_SECRET_LENGTH = 6
# Lines of a PEM body are 64 characters; a pipeline printing part of the key still leaks lines.
_MIN_KEY_LINE = 16


class Redactor:
    """Replaces each of a fixed set of secret values in text with `[redacted]`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        """`text` with every secret value masked."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def deep(self, value: Any) -> Any:
        """Strings inside dicts, lists and tuples masked (Slack blocks, JSON bodies)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.deep(v) for v in value)
        return value

    def report(self, report: R) -> R:
        """A report (`handlers.reports`) whose texts and run are masked."""
        masked: dict[str, Any] = {}
        for field in dataclasses.fields(report):
            value = getattr(report, field.name)
            if isinstance(value, str):
                masked[field.name] = self(value)
            elif isinstance(value, Run):
                masked[field.name] = self.run(value)
        return dataclasses.replace(report, **masked)

    def run(self, run: Run) -> Run:
        """A run whose error and transition details are masked."""
        return dataclasses.replace(
            run, error=self(run.error) if run.error else run.error,
            transitions=tuple(dataclasses.replace(t, detail=self(t.detail)) for t in run.transitions))


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: each `SecretStr`, the App key (read from its file when
    given that way) and its lines, and a password in the database URL."""
    values = [getattr(settings, name).get_secret_value() for name in type(settings).model_fields
              if isinstance(getattr(settings, name), SecretStr)]
    try:
        key = settings.private_key_pem()
    except Exception:  # an unreadable key file stops `serve` elsewhere; nothing to mask here
        key = None
    if key:
        values.append(key.strip())
        values.extend(line.strip() for line in key.splitlines()
                      if len(line.strip()) >= _MIN_KEY_LINE and not line.startswith("-----"))
    if settings.database_url:
        password = urlparse(settings.database_url).password
        if password:
            values.append(password)
    return values


def redactor_for(settings: Settings) -> Redactor:
    """The bot's redactor, from its settings (built at start-up, never at import)."""
    return Redactor(secret_values(settings))


class RedactingReporter:
    """A `Reporter` whose reports and replies are masked before the real reporter sends them: runs
    reach the renderer already masked by the store; this masks what else the texts carry (notes,
    error text). Every port method is listed here on purpose (no pass-through): a new one must
    decide what to mask."""

    def __init__(self, inner: Reporter, redact: Redactor) -> None:
        self.inner = inner
        self.redact = redact

    def run_changed(self, report: RunReport) -> None:
        self.inner.run_changed(self.redact.report(report))

    def head_summary(self, report: HeadReport) -> None:
        self.inner.head_summary(self.redact.report(report))

    def pull_summary(self, report: PullReport) -> None:
        self.inner.pull_summary(self.redact.report(report))

    def acknowledge(self, repo: RepoRef, comment_id: int, installation_id: int | None) -> None:
        self.inner.acknowledge(repo, comment_id, installation_id)

    def notice(self, notice: Notice) -> None:
        self.inner.notice(self.redact.report(notice))

    def reply(self, repo: RepoRef, number: int, body: str, installation_id: int | None) -> None:
        self.inner.reply(repo, number, self.redact(body), installation_id)


class RedactingChat:
    """A `Chat` whose messages are masked before they are posted."""

    def __init__(self, inner: Chat, redact: Redactor) -> None:
        self.inner = inner
        self.redact = redact

    @property
    def settings(self) -> Any:
        """How the inner chat is used (channels, states, threads): nothing secret in it."""
        return getattr(self.inner, "settings", None)

    def post(self, channel: str, message: Mapping[str, Any], *, thread: str | None = None) -> Any:
        return self.inner.post(channel, self.redact.deep(dict(message)), thread=thread)

    def update(self, channel: str, message_id: str, message: Mapping[str, Any]) -> None:
        self.inner.update(channel, message_id, self.redact.deep(dict(message)))
