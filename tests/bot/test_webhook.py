"""Verifying and reading one webhook request, before any HTTP or store is involved."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from werkzeug.datastructures import Headers

from bot.payloads import Ignored
from bot.webhook import WebhookRejected, read_delivery, sign, verify_signature
from handlers.models import PullRequestEvent
from tests.support.webhooks import delivery_headers, load_payload

SECRET = "It's a Secret to Everybody"


def test_sign_matches_githubs_documented_example() -> None:
    # The example of GitHub's "Validating webhook deliveries" documentation.
    assert sign(SECRET, b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")


def test_a_correct_signature_passes() -> None:
    body = b'{"zen": "Keep it logically awesome."}'

    verify_signature(SECRET, body, sign(SECRET, body))


@pytest.mark.parametrize(("header", "why"), [
    (None, "missing X-Hub-Signature-256 header"),
    ("", "missing X-Hub-Signature-256 header"),
    (sign("another secret", b"{}"), "does not match the body"),
    (sign(SECRET, b"{} "), "does not match the body"),
    (sign(SECRET, b"{}").removeprefix("sha256="), "does not match the body"),
    ("sha1=" + "0" * 40, "does not match the body"),
    ("sha256=\u00e9\u00e9", "does not match the body"),
])
def test_a_missing_or_wrong_signature_is_401(header: str | None, why: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verify_signature(SECRET, b"{}", header)

    assert caught.value.status == HTTPStatus.UNAUTHORIZED
    assert why in str(caught.value)


def _request(event: str, payload: object, *, secret: str | None = SECRET, **header_changes: str | None):
    body = json.dumps(payload).encode()
    headers = Headers(delivery_headers(event, body, secret, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958"))
    for name, value in header_changes.items():
        header = name.replace("_", "-")
        del headers[header]
        if value is not None:
            headers[header] = value
    return headers, body


def test_a_signed_pull_request_becomes_an_event() -> None:
    headers, body = _request("pull_request", load_payload("pull_request.opened"))

    delivery = read_delivery(headers, body, secret=SECRET)

    assert delivery.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert delivery.event_name == "pull_request"
    assert isinstance(delivery.outcome, PullRequestEvent)
    assert delivery.outcome.delivery_id == delivery.delivery_id


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    body = b"this is not json"
    headers = Headers(delivery_headers("pull_request", body, "wrong secret"))

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert caught.value.status == HTTPStatus.UNAUTHORIZED


def test_an_unsigned_ping_is_refused_and_a_signed_one_answered() -> None:
    headers, body = _request("ping", load_payload("ping"), secret=None)
    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)
    assert caught.value.status == HTTPStatus.UNAUTHORIZED

    headers, body = _request("ping", load_payload("ping"))
    assert read_delivery(headers, body, secret=SECRET).outcome == Ignored("pong")


@pytest.mark.parametrize(("body", "why"), [
    (b"payload=%7B%7D", "body is not JSON: configure the webhook with content type application/json"),
    (b"\xff\xfe", "body is not JSON"),
    (b"[1, 2]", "body is JSON but not an object (got an array)"),
    (b'"text"', "body is JSON but not an object (got a string)"),
])
def test_a_body_that_is_not_a_json_object_is_400(body: bytes, why: str) -> None:
    headers = Headers(delivery_headers("pull_request", body, SECRET))

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert why in str(caught.value)


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_headers_are_400(missing: str) -> None:
    headers, body = _request("pull_request", load_payload("pull_request.opened"), **{missing: None})

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert str(caught.value) == f"missing {missing} header"


def test_a_body_that_is_not_the_announced_event_is_400_naming_the_field() -> None:
    headers, body = _request("issue_comment", load_payload("push"))

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert str(caught.value) == "issue_comment payload: field 'action' is missing"
