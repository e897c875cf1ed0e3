"""The reusable fake-server base: routing, recording, fault injection and crash visibility."""

from __future__ import annotations

import pytest
import requests

from tests.fakes.http import FakeHTTPServer, Incoming, JsonResponse


class EchoServer(FakeHTTPServer):
    """A minimal fake: echoes route parameters and the JSON body; /boom is a bug in the fake."""

    def __init__(self) -> None:
        super().__init__()
        self.add_route("POST", "/items/{item_id:int}/notes/{name}", self.echo)
        self.add_route("GET", "/boom", self.boom)

    def echo(self, incoming: Incoming) -> JsonResponse:
        return JsonResponse(201, {"params": incoming.params, "body": incoming.json()}, {"X-Echo": "yes"})

    def boom(self, incoming: Incoming) -> JsonResponse:
        raise RuntimeError("bug in the fake")


def test_routes_convert_parameters_and_record_requests() -> None:
    with EchoServer() as server:
        answer = requests.post(f"{server.url}/items/12/notes/first?verbose=1", json={"text": "hi"},
                               headers={"Authorization": "Bearer secret-value"}, timeout=5)
        assert answer.status_code == 201 and answer.headers["X-Echo"] == "yes"
        assert answer.json() == {"params": {"item_id": 12, "name": "first"}, "body": {"text": "hi"}}
        assert requests.post(f"{server.url}/items/x/notes/first", json={}, timeout=5).status_code == 404

        first, second = server.requests
        assert (first.method, first.path, first.query, first.status) == ("POST", "/items/12/notes/first",
                                                                         {"verbose": "1"}, 201)
        assert first.json == {"text": "hi"} and first.auth_scheme == "Bearer"
        assert first.headers["Authorization"] == "Bearer ***"
        assert "secret-value" not in repr(server.requests)
        assert second.status == 404 and second.auth_scheme is None


def test_faults_answer_matching_requests_in_order() -> None:
    with EchoServer() as server:
        fault = server.fail_next("POST", r"/items/\d+/notes/.*", 503, times=2, headers={"Retry-After": "3"})
        server.fail_next("*", r"/items/7/.*", 500, body={"message": "custom"})
        url = f"{server.url}/items/7/notes/a"
        answers = [requests.post(url, json={}, timeout=5) for _ in range(4)]
        assert [a.status_code for a in answers] == [503, 503, 500, 201]
        assert answers[0].headers["Retry-After"] == "3"
        assert answers[0].json() == {"message": "Service Unavailable"}
        assert answers[2].json() == {"message": "custom"}
        assert fault.times == 0 and server.pending_faults == []
        assert [r.status for r in server.requests_to("POST", r"/items/7/.*")] == [503, 503, 500, 201]


def test_a_crash_in_the_fake_is_not_passed_off_as_a_remote_error() -> None:
    server = EchoServer()
    with pytest.raises(AssertionError, match="bug in the fake"):
        with server:
            assert requests.get(f"{server.url}/boom", timeout=5).status_code == 500
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
