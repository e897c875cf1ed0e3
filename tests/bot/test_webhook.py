"""Verifying and reading one webhook request, before any HTTP or store is involved."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from werkzeug.datastructures import Headers

from bot.payloads import Ignored
from bot.webhook import WebhookRejected, read_delivery, read_signed_body, sign, verify_signature
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


class Body:
    """A request body as the WSGI server hands it over: read in pieces, maybe slow or cut short."""

    def __init__(self, data: bytes, *, stall_after: int | None = None, piece: int = 1 << 20) -> None:
        self.data = data
        self.piece = piece
        self.position = 0
        self.stall_after = stall_after
        self.reads = 0

    def read(self, size: int) -> bytes:
        self.reads += 1
        if self.stall_after is not None and self.position >= self.stall_after:
            raise TimeoutError("timed out")
        chunk = self.data[self.position:self.position + min(size, self.piece)]
        self.position += len(chunk)
        return chunk


def test_a_streamed_body_is_verified_and_returned_whole() -> None:
    data = json.dumps(load_payload("pull_request.opened")).encode() * 40  # past one chunk
    body = Body(data)

    assert read_signed_body(body, length=len(data), limit=10**7, secret=SECRET, header=sign(SECRET, data)) == data
    assert body.reads > 1


def test_a_body_past_the_spool_size_is_verified_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"x": "' + b"y" * (3 * 1024 * 1024) + b'"}'

    assert read_signed_body(Body(data), length=None, limit=10**7, secret=SECRET,
                            header=sign(SECRET, data)) == data


@pytest.mark.parametrize(("length", "header", "status"), [
    (10**9, sign(SECRET, b"{}"), HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (2, None, HTTPStatus.UNAUTHORIZED),
])
def test_an_unsigned_or_oversized_announcement_is_refused_before_reading(length: int, header: str | None,
                                                                         status: HTTPStatus) -> None:
    body = Body(b"{}")

    with pytest.raises(WebhookRejected) as caught:
        read_signed_body(body, length=length, limit=1024, secret=SECRET, header=header)

    assert caught.value.status == status
    assert body.reads == 0


def test_a_body_longer_than_the_limit_stops_the_read_at_the_limit() -> None:
    body = Body(b"x" * 10_000)

    with pytest.raises(WebhookRejected) as caught:
        read_signed_body(body, length=None, limit=2048, secret=SECRET, header=sign(SECRET, b"x"))

    assert caught.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert body.position <= 2049


def test_a_body_shorter_than_announced_is_400_and_a_stalled_one_408() -> None:
    with pytest.raises(WebhookRejected) as short:
        read_signed_body(Body(b"{}"), length=10, limit=1024, secret=SECRET, header=sign(SECRET, b"{}"))
    with pytest.raises(WebhookRejected) as stalled:
        read_signed_body(Body(b"{}" * 100, stall_after=50, piece=25), length=200, limit=1024, secret=SECRET,
                         header=sign(SECRET, b"{}" * 100))

    assert (short.value.status, str(short.value)) == (HTTPStatus.BAD_REQUEST,
                                                      "body ended after 2 of the 10 bytes announced")
    assert (stalled.value.status, str(stalled.value)) == (HTTPStatus.REQUEST_TIMEOUT,
                                                          "the body stopped arriving after 50 bytes")


def test_a_forged_signature_is_401_after_streaming() -> None:
    with pytest.raises(WebhookRejected) as caught:
        read_signed_body(Body(b"{}"), length=2, limit=1024, secret=SECRET, header=sign("other", b"{}"))

    assert caught.value.status == HTTPStatus.UNAUTHORIZED


@pytest.mark.parametrize(("body", "why"), [
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "body nests objects or arrays deeper than 64 levels (100000)"),
    (b"[" * 50_000, "body nests objects or arrays deeper than 64 levels (50000)"),
    (b'{"action": NaN}', "body is not JSON"),
    (b'{"n": 1' + b"0" * 5000 + b"}", "body is not JSON"),
])
def test_hostile_json_is_400_never_an_exception(body: bytes, why: str) -> None:
    headers = Headers(delivery_headers("pull_request", body, SECRET))

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert why in str(caught.value)


@pytest.mark.parametrize(("header", "value", "why"), [
    ("X-GitHub-Delivery", "x" * 500, "X-GitHub-Delivery is not a delivery id (a GUID)"),
    ("X-GitHub-Delivery", "id with spaces", "X-GitHub-Delivery is not a delivery id (a GUID)"),
    ("X-GitHub-Event", "Pull Request", "X-GitHub-Event is not an event name"),
])
def test_malformed_github_headers_are_400(header: str, value: str, why: str) -> None:
    headers, body = _request("pull_request", load_payload("pull_request.opened"), **{header: value})

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert (caught.value.status, str(caught.value)) == (HTTPStatus.BAD_REQUEST, why)


@pytest.mark.parametrize("value", [b'"\\ud800"', b'"\\udc00\\ud800"', b"1e400", b"-1e400", b"1" + b"0" * 4000])
def test_text_the_standard_parser_reads_is_read_in_a_field_the_bot_ignores(value: bytes) -> None:
    # orjson refuses each of these; the standard parser, which decides, reads them.
    body = json.dumps(load_payload("pull_request.opened", {"pull_request.title": "TITLE"})).encode()
    body = body.replace(b'"TITLE"', b'"fix", "unused": ' + value)
    headers = Headers(delivery_headers("pull_request", body, SECRET))

    delivery = read_delivery(headers, body, secret=SECRET)

    assert isinstance(delivery.outcome, PullRequestEvent) and delivery.outcome.pull.title == "fix"


@pytest.mark.parametrize("encoded", [b"\\ud800", b"\xed\xa0\x80"])
def test_a_lone_surrogate_escaped_or_encoded_is_400_naming_the_field(encoded: bytes) -> None:
    body = json.dumps(load_payload("pull_request.opened", {"pull_request.title": "TITLE"})).encode()
    body = body.replace(b"TITLE", b"fix " + encoded)
    headers = Headers(delivery_headers("pull_request", body, SECRET))

    with pytest.raises(WebhookRejected) as caught:
        read_delivery(headers, body, secret=SECRET)

    assert str(caught.value) == ("pull_request payload: field 'pull_request.title' is not valid Unicode text "
                                 "(lone surrogate at character 4)")
