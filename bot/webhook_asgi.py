"""The GitHub webhook's endpoint on the ASGI server of `kfp-bot serve`, in front of the Flask app.

`kfp-bot serve` runs uvicorn (`bot.server`): one event loop per web process reads every
connection, so a request costs no thread hand-off until its body has arrived and been verified.
`webhook_asgi` answers `POST /github/webhook` itself and hands every other request to `other`
(the Flask app, through a2wsgi's thread pool). Per delivery:

- on the event loop: the body is read with one deadline for all of it and verified while it
  arrives (`bot.webhook.SignedBody`: an unsigned request is refused before its body is read, a
  forged one is spooled past 1 MB); a refused body is drained when little of it is left, else
  the connection is closed after the answer;
- still on the loop: parse and bound it (`bot.webhook_endpoint.decide_delivery`, as the WSGI
  route does); then the delivery and its event are committed in one transaction with the others
  waiting at that moment, on the committer thread of `bot.accept_queue`, which wakes the bus.

Every line logged meanwhile carries the delivery id; one access line per request, as the Flask
routes log theirs. A failure is a JSON answer with a reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from functools import partial
from http import HTTPStatus
from typing import Any

from bot.accept_queue import AcceptQueue
from bot.config import Settings
from bot.edge import DRAIN_BYTES
from bot.logs import log_context
from bot.services import Services
from bot.webhook import (
    SIGNATURE_HEADER,
    SignedBody,
    WebhookRejected,
    body_timeout,
)
from bot.webhook_endpoint import (
    INTERNAL_ERROR,
    NO_SECRET,
    WEBHOOK_PATH,
    Answer,
    Refused,
    answer_accepted,
    decide_delivery,
    delivery_tag,
    keep_refusal,
    log_answer,
    refused,
)

log = logging.getLogger("kfp_bot.app")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AsgiHeaders:
    """A request's headers as the ASGI server hands them over (lowercase names, latin-1 bytes),
    looked up in any case; the first of a repeated header wins, as with Werkzeug's `Headers`."""

    __slots__ = ("_values",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        values: dict[bytes, bytes] = {}
        for name, value in raw:
            values.setdefault(name, value)
        self._values = values

    def get(self, key: str) -> str | None:
        """The header's value, None when absent."""
        value = self._values.get(key.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")


class ClientGone(Exception):
    """The client closed its connection before its request had arrived: nobody to answer."""


def webhook_asgi(other: AsgiApp, settings: Settings, services: Services, accept: AcceptQueue) -> AsgiApp:
    """An ASGI app answering `POST` on `WEBHOOK_PATH` (committing through `accept`) and
    passing every other request to `other`."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""

    async def read_body(headers: AsgiHeaders, incoming: Incoming) -> bytes:
        """The verified body; `WebhookRejected` otherwise."""
        reader = SignedBody(length=incoming.length, limit=settings.max_body_bytes, secret=secret,
                            header=headers.get(SIGNATURE_HEADER))
        try:
            try:
                async with asyncio.timeout(settings.read_timeout_seconds):
                    while not incoming.ended:
                        reader.feed(await incoming.chunk())
            except TimeoutError:
                raise body_timeout(reader.received) from None
            return reader.body()
        finally:
            reader.close()

    async def answer(headers: AsgiHeaders, receive: Receive) -> Answer:
        if not secret:
            log.error("webhook refused: KFP_BOT_WEBHOOK_SECRET is not configured")
            return NO_SECRET
        deadline = time.monotonic() + settings.read_timeout_seconds
        incoming = Incoming(receive, _content_length(headers))
        try:
            body = await read_body(headers, incoming)
        except WebhookRejected as exc:
            log.warning("webhook rejected (%d): %s", exc.status, exc)
            ended = exc.status != HTTPStatus.REQUEST_TIMEOUT and await incoming.drain(deadline)
            return refused(exc.status, str(exc), close=not ended)
        decided = decide_delivery(headers, body, settings)
        if isinstance(decided, Refused):  # a write: on the committer thread, not on this loop
            return await accept.write(partial(keep_refusal, services.store, decided))
        if isinstance(decided, Answer):
            return decided
        return answer_accepted(decided, await accept.accept(decided))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH or scope["method"] != "POST":
            await other(scope, receive, send)
            return
        started = time.monotonic()
        headers = AsgiHeaders(scope["headers"])
        with log_context(delivery_id=delivery_tag(headers)):
            try:
                result = await answer(headers, receive)
            except ClientGone:
                log.info("POST %s: the client left before its request had arrived", WEBHOOK_PATH)
                return
            except Exception:
                log.exception("unexpected error on POST %s", WEBHOOK_PATH)
                result = refused(HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
            log_answer(result.status, started, headers)
        await send_answer(send, result)

    return app


async def send_answer(send: Send, answer: Answer) -> None:
    """Send `answer` as a whole HTTP response."""
    body = answer.encoded()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if answer.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(headers: AsgiHeaders) -> int | None:
    """The announced length (the server has refused a malformed one); None for a chunked body."""
    value = headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


class Incoming:
    """A request's body as the ASGI server hands it over, remembering how far it got."""

    def __init__(self, receive: Receive, length: int | None) -> None:
        self._receive = receive
        self.length = length
        self.received = 0
        self.ended = False

    async def chunk(self) -> bytes:
        """The body's next chunk (b"" once it has ended); `ClientGone` if the client left."""
        if self.ended:
            return b""
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        self.ended = not message.get("more_body", False)
        chunk: bytes = message.get("body", b"")
        self.received += len(chunk)
        return chunk

    async def drain(self, deadline: float) -> bool:
        """Read and discard the rest of a refused body when at most `DRAIN_BYTES` of it are
        left, so that the client reads the answer and the connection can serve its next
        request; True if the body was read to its end by `deadline`."""
        if self.ended:
            return True
        if self.length is None or self.length - self.received > DRAIN_BYTES:
            return False
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                while not self.ended:
                    await self.chunk()
        except (TimeoutError, ClientGone):
            return False
        return True
