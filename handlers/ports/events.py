"""How events come and go: the bus handlers put follow-up work on, the decoders that turn a
backend's own notification (a Pub/Sub message) into an event, and the clock adapters read the
time from (injectable for tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from handlers.models import Event


class Bus(Protocol):
    """Where handlers put follow-up work (in-process queue or Pub/Sub)."""

    def publish(self, event: Event) -> None:
        """Enqueue an event; raises on failure so nothing is lost silently."""


@dataclass(frozen=True)
class Ignored:
    """A decoder's answer for a notification of its own service that needs nothing from the bot
    (another team's build, a state the bot does not act on): acknowledged quietly, at debug level."""

    reason: str


class NotificationDecoder(Protocol):
    """Turns a backend's own notification (a Pub/Sub message) into a bot event, or None if not its own."""

    def decode_notification(self, attributes: Mapping[str, str], data: bytes) -> Event | Ignored | None:
        """E.g. a Cloud Build `cloud-builds` message → `BuildStatus`; its own messages that need
        nothing → `Ignored`; shapes it does not know → None (the next decoder is asked)."""


class Clock(Protocol):
    """Time, injectable for tests."""

    def now(self) -> datetime:
        """The current UTC time."""
