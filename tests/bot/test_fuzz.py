"""Property-based fuzzing of the edge (hypothesis): reading a delivery and parsing the API's queries.

Whatever a signed body holds, `read_delivery` answers with a `Delivery` or a `WebhookRejected`
400, never another exception; an event it lets through can be stored and sent on the bus. The
same bodies posted to the real Flask app on a socket, and arbitrary query strings sent to the
API, are answered 2xx or 4xx with JSON, never 500. Example counts are modest to stay fast.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from bot.app import create_app
from bot.config import Settings
from bot.services import Services
from bot.store import SqlStore
from bot.webhook import WebhookRejected, read_delivery
from handlers.event_codec import event_from_dict, event_to_dict
from handlers.models import Event
from tests.support.server import ServedApp
from tests.support.webhooks import available_payloads, delivery_headers, load_payload

SECRET = "fuzz-secret"
FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Any event name a client can send in a header: latin-1 text without line breaks.
EVENTS = st.sampled_from(["pull_request", "issue_comment", "push", "ping", "check_run"]) | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=12)
# Every code point, lone surrogates included (json.dumps writes them as \u escapes).
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | ANY_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(ANY_TEXT, inner, max_size=3), max_leaves=8)


def _leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*prefix, key))
    else:
        yield prefix


BASES = {name: load_payload(name) for name in available_payloads()}
LEAVES = {name: [path for path in _leaves(payload) if path] for name, payload in BASES.items()}


@st.composite
def mutated_payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    """(event name, body): a GitHub example with up to three fields replaced by arbitrary JSON."""
    name = draw(st.sampled_from(sorted(BASES)))
    payload = copy.deepcopy(BASES[name])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(LEAVES[name]))
        node = payload
        for key in path[:-1]:
            node = node[key] if isinstance(node, dict) and isinstance(node.get(key), dict) else None
            if node is None:
                break
        if node is not None:
            node[path[-1]] = draw(JSON_VALUES)
    event = name.split(".")[0] if draw(st.booleans()) else draw(EVENTS)
    return event, json.dumps(payload).encode()


BODIES = mutated_payloads() | st.tuples(EVENTS, st.binary(max_size=300)) | st.tuples(
    EVENTS, JSON_VALUES.map(lambda value: json.dumps(value).encode()))


def _headers(event: str, body: bytes) -> Headers:
    headers = delivery_headers("x", body, SECRET)
    headers["X-GitHub-Event"] = event
    return Headers(headers)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_read_delivery_answers_an_event_or_a_400_and_nothing_else(case: tuple[str, bytes]) -> None:
    event, body = case
    try:
        delivery = read_delivery(_headers(event, body), body, secret=SECRET)
    except WebhookRejected as exc:
        assert exc.status == HTTPStatus.BAD_REQUEST
        return
    if isinstance(delivery.outcome, Event):
        encoded = event_to_dict(delivery.outcome)
        json.dumps(encoded).encode("utf-8")  # storable and publishable: valid text only
        assert event_from_dict(encoded) == delivery.outcome


class IdleBus:
    """A bus whose workers never run: accepted events stay in the store's outbox (the handlers
    are not what this test fuzzes)."""

    notify_blocks = False

    def notify(self, ids: Any = ()) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 30.0) -> bool:
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    with SqlStore(f"sqlite:///{root / 'bot.db'}") as store:
        services = Services(store=store, bus=IdleBus())  # type: ignore[arg-type]
        app = create_app(Settings(webhook_secret=SECRET, data_dir=root), services)
        with ServedApp(app) as served:
            yield served


@FAST
@given(BODIES)
def test_the_webhook_never_answers_500(server: ServedApp, case: tuple[str, bytes]) -> None:
    event, body = case
    assume(event == event.strip())  # requests refuses to send a header value with outer spaces
    response = requests.post(f"{server.url}/github/webhook", data=body, headers=dict(_headers(event, body)),
                             timeout=30)

    assert response.status_code in (200, 202, 400), response.text
    assert response.headers["Content-Type"] == "application/json"


QUERY_KEYS = st.sampled_from(["repo", "pr", "sha", "pipeline", "state", "active", "limit", "failed", "delivery"])
QUERY_VALUES = (st.binary(max_size=30) | st.integers().map(lambda n: str(n).encode())
                | st.sampled_from([b"9223372036854775808", b"-1", b"0", b"1e3", b"true", b"queued", b"%00"]))


@FAST
@given(st.sampled_from(["/api/runs", "/api/deliveries", "/api/runs/", "/dashboard/runs"]),
       st.lists(st.tuples(QUERY_KEYS | st.text(max_size=5).map(str), QUERY_VALUES), max_size=4))
def test_api_queries_never_answer_500(server: ServedApp, path: str, query: list[tuple[str, bytes]]) -> None:
    if path.endswith("/"):
        path += quote_from_bytes(query[0][1] if query else b"\x00", safe=b"")
    text = "&".join(f"{quote_from_bytes(k.encode(), safe=b'')}={quote_from_bytes(v, safe=b'')}" for k, v in query)

    response = requests.get(f"{server.url}{path}?{text}", timeout=30)

    assert response.status_code in (200, 400, 404), response.text
