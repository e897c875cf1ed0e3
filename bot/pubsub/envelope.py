"""The push envelope: what a push subscription POSTs (`{"message": {...}, "subscription": ...}`).

`parse_envelope` reads it strictly (a body that is not an envelope is `MalformedEnvelope`, with
the ids it could read, for the log) and `message_key` names a message for dedupe and leases:
subscription *and* message id, since message ids are unique within a topic only ("ID of this
message, assigned by the server when the message is published. Guaranteed to be unique within
the topic", https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage); for a message
our relay published, subscription and outbox row, since publishing is at-least-once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PushMessage:
    """One message as a push subscription delivers it."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    subscription: str = ""
    publish_time: str | None = None
    delivery_attempt: int | None = None


class MalformedEnvelope(ValueError):
    """A push body that is not a Pub/Sub envelope; carries the ids it could read, for the log."""

    def __init__(self, reason: str, *, message_id: str | None = None, subscription: str | None = None) -> None:
        super().__init__(reason)
        self.message_id = message_id
        self.subscription = subscription


def parse_envelope(body: bytes) -> PushMessage:
    """The message of a push body (`{"message": {...}, "subscription": ...}`), or `MalformedEnvelope`."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEnvelope(f"body is not JSON ({exc})") from None
    if not isinstance(envelope, dict):
        raise MalformedEnvelope(f"body is JSON but not an object (got {type(envelope).__name__})")
    subscription = envelope.get("subscription") if isinstance(envelope.get("subscription"), str) else None
    message = envelope.get("message")
    if not isinstance(message, dict):
        raise MalformedEnvelope("no 'message' object in the body", subscription=subscription)
    message_id = message.get("messageId") or message.get("message_id")
    message_id = str(message_id) if isinstance(message_id, (str, int)) and message_id != "" else None
    if message_id is None:
        raise MalformedEnvelope("the message has no messageId", subscription=subscription)
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise MalformedEnvelope("message attributes are not a map of strings", message_id=message_id,
                                subscription=subscription)
    raw = message.get("data") or ""
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except (binascii.Error, ValueError):
        data = None
    if data is None:
        raise MalformedEnvelope("message data is not base64", message_id=message_id, subscription=subscription)
    attempt = envelope.get("deliveryAttempt", message.get("deliveryAttempt"))
    published = message.get("publishTime") or message.get("publish_time")
    return PushMessage(message_id=message_id, data=data, attributes=dict(attributes),
                       subscription=subscription or "",
                       publish_time=str(published) if published else None,
                       delivery_attempt=attempt if isinstance(attempt, int) else None)


STEP_ATTRIBUTE = "step"
"""The attribute our relay sets on each message: the id of the outbox row it publishes."""


def message_key(message: PushMessage) -> str:
    """What identifies a message for dedupe: `<subscription> step <outbox row id>` for a message our
    relay published (a row published twice, by a relay that stopped between Pub/Sub's answer and
    marking the row sent, arrives as two message ids), otherwise `<subscription> <message id>`
    (ids are unique per topic only)."""
    step = message.attributes.get(STEP_ATTRIBUTE, "")
    if step.isascii() and step.isdigit() and "kind" in message.attributes:
        return f"{message.subscription} step {int(step)}"
    return f"{message.subscription} {message.message_id}"
