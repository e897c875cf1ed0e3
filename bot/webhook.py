"""Deciding what one webhook request is: verified, then parsed into an event or ignored.

The signature (`X-Hub-Signature-256`, HMAC-SHA256 of the raw body with the shared secret) is
checked before anything in the request is parsed, with a constant-time comparison, so an
unsigned or forged request never reaches the JSON parser. Everything here is pure: no store,
no bus, no network; the HTTP route turns the outcome into a status code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Mapping, Sequence

from bot.payloads import Ignored, PayloadError, json_type, parse_event
from handlers.models import Event
from pipeline_registry.errors import KfpBotError

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
_PREFIX = "sha256="


class WebhookRejected(KfpBotError):
    """The request is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Delivery:
    """A verified webhook request: its ids and what it became."""

    delivery_id: str
    event_name: str
    outcome: Event | Ignored


def sign(secret: str | bytes, body: bytes | bytearray) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` (also used by tests and fakes)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return _PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes | bytearray, header: str | None) -> None:
    """Raise `WebhookRejected(401)` unless `header` is the signature of `body` with `secret`."""
    if not header:
        raise WebhookRejected(HTTPStatus.UNAUTHORIZED, f"missing {SIGNATURE_HEADER} header: the webhook "
                                                       "must be configured with the bot's secret")
    expected = sign(secret, body).encode()
    # Header values are latin-1 text; compare bytes so odd characters cannot raise.
    if not hmac.compare_digest(expected, header.strip().encode("latin-1", "replace")):
        raise WebhookRejected(HTTPStatus.UNAUTHORIZED, f"{SIGNATURE_HEADER} does not match the body: "
                                                       "check that GitHub and the bot use the same secret")


def read_delivery(headers: Mapping[str, str], body: bytes | bytearray, *, secret: str | bytes,
                  bot_login: str | None = None, deploy_branches: Sequence[str] = ()) -> Delivery:
    """Verify, then parse a webhook request; raises `WebhookRejected` with the status to answer.

    `headers` must look names up case-insensitively (Werkzeug's `Headers` does).
    """
    verify_signature(secret, body, headers.get(SIGNATURE_HEADER))
    event_name = (headers.get(EVENT_HEADER) or "").strip()
    delivery_id = (headers.get(DELIVERY_HEADER) or "").strip()
    if not event_name:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"missing {EVENT_HEADER} header")
    if not delivery_id:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"missing {DELIVERY_HEADER} header")
    payload = _json_object(body)
    try:
        outcome = parse_event(event_name, delivery_id, payload, bot_login=bot_login,
                              deploy_branches=deploy_branches)
    except PayloadError as exc:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, str(exc)) from None
    return Delivery(delivery_id=delivery_id, event_name=event_name, outcome=outcome)


def _json_object(body: bytes | bytearray) -> Mapping[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, "body is not JSON: configure the webhook with "
                                                      "content type application/json") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(HTTPStatus.BAD_REQUEST,
                              f"body is JSON but not an object (got {json_type(payload)})")
    return payload
