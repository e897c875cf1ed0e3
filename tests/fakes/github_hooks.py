"""The fake GitHub's App webhook: deliveries it made, listed and redelivered like GitHub does.

GitHub keeps every attempt to deliver an App's webhook for a few days and never retries a
failed one by itself; an App lists them (`GET /app/hook/deliveries`, newest first, cursor
pagination) and asks for another attempt (`POST /app/hook/deliveries/{id}/attempts`, 202), both
with its JWT. Attempts of the same event share a `guid` (the `X-GitHub-Delivery` header); a
redelivery is a new attempt with `redelivery: true`.

`AppWebhook` seeds and inspects one App's webhook. With a `url` it really sends: `deliver` and
every redelivery POST the payload to it, signed with the secret, and record the status the
receiver answered (0 when nothing answered), so a test can point it at the bot on 127.0.0.1.

    hook = AppWebhook(fake, app_id=4242, url=bot_url + "/github/webhook", secret="s3cret")
    hook.add_delivery("issue_comment", payload, status_code=503)   # failed while the bot was down
    ...
    assert hook.attempts(guid)[-1]["status_code"] == 202
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

import requests

from tests.fakes.github_api import MAX_PER_PAGE, Call, Endpoint
from tests.fakes.github_model import ApiError, GitHubState
from tests.fakes.http import JsonResponse

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DEFAULT_PER_PAGE = 30
SEND_TIMEOUT_SECONDS = 10  # GitHub gives a receiver 10 s


@dataclass
class Delivery:
    """One attempt to deliver an event to the App's webhook."""

    id: int
    guid: str
    event: str
    action: str | None
    body: bytes
    delivered_at: datetime
    status_code: int
    status: str
    redelivery: bool = False
    duration: float = 0.0
    installation_id: int | None = None
    repository_id: int | None = None


@dataclass
class Hook:
    """An App's webhook configuration and its deliveries, oldest first."""

    app_id: int
    url: str | None = None
    secret: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)


class _Hooks:
    """Every App's webhook of one fake (kept beside its state, not in it)."""

    def __init__(self) -> None:
        self.by_app: dict[int, Hook] = {}
        self.ids = itertools.count(90_000_000_001)


_REGISTRY: WeakKeyDictionary[GitHubState, _Hooks] = WeakKeyDictionary()


def _hooks(state: GitHubState) -> _Hooks:
    hooks = _REGISTRY.get(state)
    if hooks is None:
        hooks = _REGISTRY[state] = _Hooks()
    return hooks


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery as GitHub lists it (`hook-delivery-item`)."""
    return {"id": delivery.id, "guid": delivery.guid, "delivered_at": _stamp(delivery.delivered_at),
            "redelivery": delivery.redelivery, "duration": delivery.duration, "status": delivery.status,
            "status_code": delivery.status_code, "event": delivery.event, "action": delivery.action,
            "installation_id": delivery.installation_id, "repository_id": delivery.repository_id,
            "throttled_at": None}


def _status_text(code: int) -> str:
    if 200 <= code < 300:
        return "OK"
    return f"Invalid HTTP Response: {code}" if code else "We couldn't deliver this payload: failed to connect"


def _send(hook: Hook, event: str, guid: str, body: bytes) -> tuple[int, float]:
    """POST the payload to the hook's URL like GitHub; the receiver's status (0 when none) and seconds."""
    if not hook.url:
        return 0, 0.0
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/fake",
               "X-GitHub-Event": event, "X-GitHub-Delivery": guid, "X-GitHub-Hook-ID": str(hook.app_id),
               "X-GitHub-Hook-Installation-Target-Type": "integration",
               "X-GitHub-Hook-Installation-Target-ID": str(hook.app_id)}
    if hook.secret is not None:
        digest = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    started = time.monotonic()
    try:
        answer = requests.post(hook.url, data=body, headers=headers, timeout=SEND_TIMEOUT_SECONDS)
    except requests.RequestException:
        return 0, round(time.monotonic() - started, 3)
    return answer.status_code, round(time.monotonic() - started, 3)


def _record(hooks: _Hooks, hook: Hook, *, guid: str, event: str, action: str | None, body: bytes,
            status_code: int, at: datetime, redelivery: bool, duration: float = 0.0) -> Delivery:
    payload = json.loads(body) if body else {}
    delivery = Delivery(id=next(hooks.ids), guid=guid, event=event, action=action, body=body, delivered_at=at,
                        status_code=status_code, status=_status_text(status_code), redelivery=redelivery,
                        duration=duration, installation_id=(payload.get("installation") or {}).get("id"),
                        repository_id=(payload.get("repository") or {}).get("id"))
    hook.deliveries.append(delivery)
    return delivery


class AppWebhook:
    """Seeds and shows the webhook of App `app_id` on `fake` (see the module docstring)."""

    def __init__(self, fake: FakeGitHub, app_id: int, *, url: str | None = None,
                 secret: str | None = None) -> None:
        self.fake = fake
        self.app_id = app_id
        with fake.lock:
            hook = _hooks(fake.state).by_app.setdefault(app_id, Hook(app_id))
            hook.url, hook.secret = url, secret

    @property
    def _hook(self) -> Hook:
        return _hooks(self.fake.state).by_app[self.app_id]

    def point_at(self, url: str | None) -> None:
        """Send later deliveries to `url` (None: nowhere, every attempt fails)."""
        with self.fake.lock:
            self._hook.url = url

    def add_delivery(self, event: str, payload: Mapping[str, Any], *, status_code: int,
                     guid: str | None = None, at: datetime | None = None,
                     redelivery: bool = False) -> dict[str, Any]:
        """An attempt GitHub made in the past with the outcome `status_code` (nothing is sent)."""
        with self.fake.lock:
            delivery = _record(_hooks(self.fake.state), self._hook, guid=guid or str(uuid.uuid4()), event=event,
                               action=payload.get("action"), body=json.dumps(payload).encode(),
                               status_code=status_code, at=at or datetime.now(UTC),
                               redelivery=redelivery)
            return delivery_json(delivery)

    def deliver(self, event: str, payload: Mapping[str, Any], *, guid: str | None = None) -> dict[str, Any]:
        """Deliver an event now: POST it to the hook's URL and record the outcome."""
        body = json.dumps(payload).encode()
        guid = guid or str(uuid.uuid4())
        status, duration = _send(self._hook, event, guid, body)
        with self.fake.lock:
            delivery = _record(_hooks(self.fake.state), self._hook, guid=guid, event=event,
                               action=payload.get("action"), body=body, status_code=status,
                               at=datetime.now(UTC), redelivery=False, duration=duration)
            return delivery_json(delivery)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every attempt, newest first, as GitHub lists them."""
        with self.fake.lock:
            return [delivery_json(d) for d in reversed(self._hook.deliveries)]

    def attempts(self, guid: str) -> list[dict[str, Any]]:
        """The attempts of one event, oldest first."""
        with self.fake.lock:
            return [delivery_json(d) for d in self._hook.deliveries if d.guid == guid]


# -- endpoints ---------------------------------------------------------------------------------

def _hook_of(call: Call) -> Hook:
    hook = _hooks(call.state).by_app.get(call.actor.app_id or 0)
    if hook is None:
        raise ApiError.not_found()
    return hook


def list_deliveries(call: Call) -> JsonResponse:
    """Newest first; `cursor` names the first delivery of the page, the Link header the next one."""
    hook = _hook_of(call)
    query = call.incoming.query
    try:
        per_page = min(max(int(query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
    except ValueError:
        raise ApiError(422, "Invalid pagination parameters") from None
    newest_first = sorted(hook.deliveries, key=lambda d: d.id, reverse=True)
    cursor = query.get("cursor")
    if cursor:
        try:
            start = int(cursor.removeprefix("v1_"))
        except ValueError:
            raise ApiError(422, "Invalid cursor") from None
        newest_first = [d for d in newest_first if d.id <= start]
    page, rest = newest_first[:per_page], newest_first[per_page:]
    headers = {}
    if rest:
        params = urlencode({"per_page": per_page, "cursor": f"v1_{rest[0].id}"})
        headers["Link"] = f'<{call.bodies.api}{call.incoming.path}?{params}>; rel="next"'
    return JsonResponse(200, [delivery_json(d) for d in page], headers)


def redeliver(call: Call) -> JsonResponse:
    """A new attempt of the delivery's event, sent now; 202 like GitHub (which sends it later)."""
    hook = _hook_of(call)
    original = next((d for d in hook.deliveries if d.id == call.param("delivery_id")), None)
    if original is None:
        raise ApiError.not_found()
    status, duration = _send(hook, original.event, original.guid, original.body)
    _record(_hooks(call.state), hook, guid=original.guid, event=original.event, action=original.action,
            body=original.body, status_code=status, at=datetime.now(UTC), redelivery=True,
            duration=duration)
    return JsonResponse(202, {})


ENDPOINTS = [
    Endpoint("GET", "/app/hook/deliveries", list_deliveries, app_jwt=True),
    Endpoint("POST", "/app/hook/deliveries/{delivery_id:int}/attempts", redeliver, app_jwt=True),
]
