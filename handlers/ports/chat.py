"""The chat port: the service run notifications are posted to (Slack), and the messages it
answers with, which the notifier edits in place and threads under.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatMessage:
    """A posted chat message: the channel's ID (as the chat service answered it, never the
    configured name: Slack edits only by ID) and the message's id (Slack's `ts`)."""

    channel: str
    ts: str


class Chat(Protocol):
    """A chat service the notifier posts to (Slack)."""

    def post(self, channel: str, message: Mapping[str, Any], *, thread: str | None = None) -> ChatMessage:
        """Post `message` ({"text", "blocks"}) to `channel` (a name or an ID; in `thread`): the
        posted message, with the channel's ID."""

    def update(self, channel: str, message_id: str, message: Mapping[str, Any]) -> None:
        """Replace a posted message; `channel` is the channel's ID (`ChatMessage.channel`)."""
