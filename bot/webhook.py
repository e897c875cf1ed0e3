"""Deciding what one webhook request is: verified, then parsed into an event or ignored.

The signature (`X-Hub-Signature-256`, HMAC-SHA256 of the raw body with the shared secret) is
checked before anything in the request is parsed, with a constant-time comparison, so an
unsigned or forged request never reaches the JSON parser. `read_signed_body` verifies while
the body streams in: a request without a signature is refused before its body is read, and a
forged one costs a bounded amount of memory (the body is spooled to a temporary file past
`SPOOL_BYTES`). A verified body is then bounded (`bot.bounds`: nesting depth before parsing,
ids, text, SHAs, names) so that nothing the handlers cannot take is answered 202. Everything
here is pure: no store, no bus, no network; the HTTP route turns the outcome into a status code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

import orjson

from bot.bounds import MAX_DEPTH, BoundsError, check_depth
from bot.payload_reader import PayloadError, json_type
from bot.payloads import Ignored, parse_event
from handlers.models import Event
from kfp_bot_errors import KfpBotError

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
_PREFIX = "sha256="
CHUNK_BYTES = 64 * 1024
SPOOL_BYTES = 1024 * 1024
"""A body is kept in memory up to this size while it is verified, on disk beyond it."""
# GitHub's delivery ids are GUIDs and event names are lowercase words; anything else is refused
# before it reaches the store or a log line.
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_EVENT_NAME = re.compile(r"[a-z_]{1,64}")


class BodyStream(Protocol):
    """Where a request body is read from (`bot.edge.DeadlineStream`, a file, a socket file)."""

    def read(self, size: int, /) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...


class HeaderLookup(Protocol):
    """Request headers looked up by name (Werkzeug's `Headers` does it case-insensitively)."""

    def get(self, key: str, /) -> str | None:
        """The header's value, None when absent."""
        ...


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
    _compare(sign(secret, body).removeprefix(_PREFIX), header)


def read_signed_body(stream: BodyStream, *, length: int | None, limit: int, secret: str | bytes,
                     header: str | None) -> bytes:
    """The body of a request, read from `stream` only as far as needed and verified on the way
    (`SignedBody`); a stream that raises `TimeoutError` (the server's read timeout) is a 408."""
    reader = SignedBody(length=length, limit=limit, secret=secret, header=header)
    try:
        while (wanted := reader.wanted()) > 0:
            try:
                chunk = stream.read(wanted)
            except TimeoutError:
                raise body_timeout(reader.received) from None
            if not chunk:
                break
            reader.feed(chunk)
        return reader.body()
    finally:
        reader.close()


def body_timeout(received: int) -> WebhookRejected:
    """The 408 for a body that stopped arriving after `received` bytes."""
    return WebhookRejected(HTTPStatus.REQUEST_TIMEOUT, f"the body stopped arriving after {received} bytes")


class SignedBody:
    """A request body verified while it arrives, whichever server delivers its chunks.

    Refused (`WebhookRejected`) before anything is read when `length` (the announced
    Content-Length) is over `limit` (413) or the signature header is missing (401); a body that
    turns out longer than `limit` stops the read (413). The HMAC is updated chunk by chunk; a body
    of unknown or large length is spooled to a temporary file past `SPOOL_BYTES`, so a forged
    25 MB body never sits in memory. `close` releases the spool.
    """

    def __init__(self, *, length: int | None, limit: int, secret: str | bytes, header: str | None) -> None:
        if length is not None and length > limit:
            raise WebhookRejected(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  f"body is larger than the limit of {limit} bytes")
        if not header:
            raise WebhookRejected(HTTPStatus.UNAUTHORIZED, f"missing {SIGNATURE_HEADER} header: the webhook "
                                                           "must be configured with the bot's secret")
        key = secret.encode() if isinstance(secret, str) else secret
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._header = header
        self._length = length
        self._limit = limit
        self._chunks: list[bytes] = []
        # A body announced small enough is kept as its chunks; one of unknown length is spooled.
        small = length is not None and length <= SPOOL_BYTES
        self._spool = None if small else tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        self.received = 0

    def wanted(self) -> int:
        """How many bytes to read next; 0 once the announced length has arrived."""
        left = CHUNK_BYTES if self._length is None else min(CHUNK_BYTES, self._length - self.received)
        return max(0, min(left, self._limit + 1 - self.received))

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the body."""
        if not chunk:
            return
        self.received += len(chunk)
        if self.received > self._limit:
            raise WebhookRejected(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  f"body is larger than the limit of {self._limit} bytes")
        self._mac.update(chunk)
        if self._spool is None:
            self._chunks.append(chunk)
        else:
            self._spool.write(chunk)

    def body(self) -> bytes:
        """The whole body once it has ended: 400 if shorter than announced, 401 if forged."""
        if self._length is not None and self.received < self._length:
            raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"body ended after {self.received} of the "
                                                          f"{self._length} bytes announced")
        _compare(self._mac.hexdigest(), self._header)
        if self._spool is None:
            return self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._spool.seek(0)
        return self._spool.read()

    def close(self) -> None:
        """Release what holds the body."""
        self._chunks = []
        if self._spool is not None:
            self._spool.close()


def _compare(digest: str, header: str) -> None:
    expected = (_PREFIX + digest).encode()
    # Header values are latin-1 text; compare bytes so odd characters cannot raise.
    if not hmac.compare_digest(expected, header.strip().encode("latin-1", "replace")):
        raise WebhookRejected(HTTPStatus.UNAUTHORIZED, f"{SIGNATURE_HEADER} does not match the body: "
                                                       "check that GitHub and the bot use the same secret")


def read_delivery(headers: HeaderLookup, body: bytes | bytearray, *, secret: str | bytes,
                  bot_login: str | None = None, deploy_branches: Sequence[str] = ()) -> Delivery:
    """Verify, then parse a webhook request; raises `WebhookRejected` with the status to answer.

    `headers` must look names up case-insensitively (Werkzeug's `Headers` does).
    """
    verify_signature(secret, body, headers.get(SIGNATURE_HEADER))
    return parse_delivery(headers, body, bot_login=bot_login, deploy_branches=deploy_branches)


def parse_delivery(headers: HeaderLookup, body: bytes | bytearray, *, bot_login: str | None = None,
                   deploy_branches: Sequence[str] = ()) -> Delivery:
    """Parse a request whose signature was verified; raises `WebhookRejected` (400) naming the cause."""
    event_name = (headers.get(EVENT_HEADER) or "").strip()
    delivery_id = (headers.get(DELIVERY_HEADER) or "").strip()
    if not event_name:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"missing {EVENT_HEADER} header")
    if not delivery_id:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"missing {DELIVERY_HEADER} header")
    if not _EVENT_NAME.fullmatch(event_name):
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"{EVENT_HEADER} is not an event name")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"{DELIVERY_HEADER} is not a delivery id (a GUID)")
    payload = _json_object(body)
    try:
        outcome = parse_event(event_name, delivery_id, payload, bot_login=bot_login,
                              deploy_branches=deploy_branches)
    except PayloadError as exc:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, str(exc)) from None
    return Delivery(delivery_id=delivery_id, event_name=event_name, outcome=outcome)


def _json_object(body: bytes | bytearray) -> Mapping[str, Any]:
    try:
        check_depth(body, MAX_DEPTH)
    except BoundsError as exc:
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"body {exc}") from None
    try:
        payload = _parse_json(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, "body is not JSON: configure the webhook with "
                                                      "content type application/json") from None
    except RecursionError:  # check_depth makes this unreachable; never a 500 if it is not
        raise WebhookRejected(HTTPStatus.BAD_REQUEST, f"body nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(HTTPStatus.BAD_REQUEST,
                              f"body is JSON but not an object (got {json_type(payload)})")
    return payload


def _parse_json(body: bytes | bytearray) -> Any:
    """The JSON value of `body`, as the standard parser reads it, found faster.

    Parsing is the webhook's largest cost: the standard parser took a sixth of a web process's CPU
    a delivery, orjson about a fifth of that. orjson refuses some text the standard parser reads: a
    lone surrogate escape (which `bot.bounds` then refuses naming the field, if the field is read
    at all), a number beyond a double's range. Those bodies, and any other orjson refuses, are read
    again by the standard parser, so what is accepted and how a refusal reads do not depend on the
    fast path. One difference is left: an integer beyond 64 bits is a float from orjson, which a
    field read as a number refuses as the wrong type instead of as out of range.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    """`NaN` and `Infinity` are not JSON (RFC 8259), though Python's parser takes them."""
    raise ValueError(f"{name} is not JSON")
