"""A recording relay between a Pub/Sub push subscription and the bot's `/pubsub/push`.

Google's emulator keeps no record of its push attempts, so tests put this relay on the push
endpoint: every request is forwarded unchanged to the bot and the bot's answer returned
unchanged, and the relay notes which message of which subscription was pushed, when the request
started and ended, and what the bot answered. A bot that cannot be reached is answered 502 (a
nack to Pub/Sub, as a dropped connection is).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from werkzeug.wrappers import Request, Response

from tests.support.server import ServedApp


@dataclass(frozen=True)
class Push:
    """One push request as relayed."""

    message_id: str
    subscription: str
    attributes: dict[str, str]
    started: float
    ended: float
    status: int
    outcome: str

    @property
    def kind(self) -> str | None:
        return self.attributes.get("kind")


class PushRecorder:
    """Serve on 127.0.0.1, relay to `target` (a URL); `url` is what the subscriptions push to."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Condition()
        self._pushes: list[Push] = []
        self._session = requests.Session()
        self._server = ServedApp(self._app)
        self.url = f"{self._server.url}/pubsub/push"

    def close(self) -> None:
        self._server.close()
        self._session.close()

    @property
    def pushes(self) -> list[Push]:
        with self._lock:
            return list(self._pushes)

    def of(self, predicate: Callable[[Push], bool]) -> list[Push]:
        return [p for p in self.pushes if predicate(p)]

    def summary(self) -> list[tuple[str, str, str | None, int, str]]:
        """(subscription, message id, kind, status, outcome) of every push, for failure messages."""
        return [(p.subscription.rsplit("/", 1)[-1], p.message_id, p.kind, p.status, p.outcome) for p in self.pushes]

    def wait_for(self, predicate: Callable[[list[Push]], bool], timeout: float = 60.0) -> bool:
        """True once `predicate(pushes)` holds; False after `timeout` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(list(self._pushes)), timeout)

    def _app(self, environ: dict, start_response: Callable) -> object:
        request = Request(environ)
        body = request.get_data()
        started = time.monotonic()
        try:
            answer = self._session.post(self.target, data=body, headers={
                k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization",
                                                                          "user-agent")}, timeout=600)
            status, text = answer.status_code, answer.text
        except requests.RequestException as exc:
            status, text = 502, json.dumps({"status": "unreachable", "reason": str(exc)})
        self._note(body, started, status, text)
        return Response(text, status=status, content_type="application/json")(environ, start_response)

    def _note(self, body: bytes, started: float, status: int, text: str) -> None:
        try:
            envelope = json.loads(body)
            message = envelope.get("message", {})
            outcome = json.loads(text).get("status", "") if text.startswith("{") else text
        except ValueError:
            envelope, message, outcome = {}, {}, text
        push = Push(message_id=str(message.get("messageId", "")), subscription=envelope.get("subscription", ""),
                    attributes=dict(message.get("attributes") or {}), started=started, ended=time.monotonic(),
                    status=status, outcome=str(outcome))
        with self._lock:
            self._pushes.append(push)
            self._lock.notify_all()
