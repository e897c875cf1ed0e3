"""A small threaded HTTP server for fakes of remote JSON APIs (GitHub, Slack, ...).

A fake subclasses `FakeHTTPServer`, registers routes and keeps its state in memory. The base
serves real HTTP on 127.0.0.1 (an ephemeral port, one thread per connection) so client libraries
are exercised over real sockets; it records every request with the status it got, and can answer
the next matching requests with injected faults so tests can watch a client retry and give up.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

_REDACTED = "***"


class BadRequestBody(ValueError):
    """The request body is not the JSON the fake expects."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, and the status it answered.

    `headers` hold the Authorization header as ``"<scheme> ***"``: the credential is never kept,
    its scheme is in `auth_scheme`. `query` keeps the last value of a repeated parameter. `actor`
    is who the fake authenticated the caller as (e.g. ``installation:1``), when it did.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    status: int
    auth_scheme: str | None = None
    actor: str | None = None

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Incoming:
    """A request being handled: what route handlers read; `notes` carries what they learn."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    params: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON; an empty body is an empty object. Raises BadRequestBody."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadRequestBody(f"body is not JSON: {exc}") from exc


@dataclass(frozen=True)
class JsonResponse:
    """What a handler answers: a status, a JSON-serialisable body (None for no body), headers;
    or `raw` bytes of `content_type` (media downloads)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str | None = None


@dataclass
class Fault:
    """An injected answer for the next `times` requests matching `method` and `path_pattern`."""

    method: str
    path_pattern: str
    status: int
    times: int
    headers: Mapping[str, str]
    body: Any
    after: bool = False
    """Answer the fault only after the request was carried out (a write done, the answer lost)."""

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and re.fullmatch(self.path_pattern, path) is not None


@dataclass
class Hold:
    """Requests matching `method` and `path_pattern` wait, unanswered, until `release()`: a service
    that hangs (its clients see no answer), so a test can act while a client is inside a call."""

    method: str
    path_pattern: str
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and re.fullmatch(self.path_pattern, path) is not None

    def release(self) -> None:
        """Answer the held requests (and the next ones) normally."""
        self.released.set()


Handler = Callable[[Incoming], JsonResponse]


@dataclass(frozen=True)
class _Route:
    method: str
    regex: re.Pattern[str]
    converters: Mapping[str, Callable[[str], Any]]
    handler: Handler


def _compile(template: str) -> tuple[re.Pattern[str], dict[str, Callable[[str], Any]]]:
    """``/repos/{owner}/{repo}/pulls/{number:int}`` -> a regex with named groups, and converters."""
    converters: dict[str, Callable[[str], Any]] = {}

    def group(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2) or "str"
        converters[name] = int if kind == "int" else str
        return {"int": rf"(?P<{name}>\d+)", "path": rf"(?P<{name}>.+)"}.get(kind, rf"(?P<{name}>[^/]+)")

    pattern = re.sub(r"\{(\w+)(?::(\w+))?\}", group, template)
    return re.compile(pattern), converters


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log: the fake records requests itself."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FakeHTTPServer:
    """Base for HTTP fakes: routing, recording, fault injection, start/stop.

    Use as a context manager (``with FakeSlack() as slack:``) or call `start` / `stop`. Handlers run
    one at a time under `lock`, so fakes need no locking of their own.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._routes: list[_Route] = []
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._holds: list[Hold] = []
        self.server_errors: list[str] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on an ephemeral port of 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            return self
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        # A short poll interval: shutdown() waits up to one interval, and tests stop servers often.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (held requests are released)."""
        for hold in self._holds:
            hold.release()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if exc_type is None and self.server_errors:
            # A bug in the fake must not pass for a remote 500 the client handled gracefully.
            raise AssertionError(f"{type(self).__name__} crashed handling requests:\n"
                                 + "\n".join(self.server_errors))

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:43121``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- routes, recording, faults ---------------------------------------------------------

    def add_route(self, method: str, template: str, handler: Handler) -> None:
        """Answer `method` requests whose path matches `template` (``{name}``, ``{name:int}``)."""
        regex, converters = _compile(template)
        self._routes.append(_Route(method.upper(), regex, converters, handler))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self.lock:
            return list(self._requests)

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path fully matches the regex `path_pattern`."""
        return [r for r in self.requests
                if r.method == method.upper() and re.fullmatch(path_pattern, r.path)]

    def clear_requests(self) -> None:
        """Forget the recorded requests (state is kept)."""
        with self.lock:
            self._requests.clear()

    def fail_next(self, method: str, path_pattern: str, status: int, times: int = 1,
                  headers: Mapping[str, str] | None = None, body: Any = None, *, after: bool = False) -> Fault:
        """Answer the next `times` requests matching `method` (or ``*``) and the regex `path_pattern`
        (matched against the whole path, no query) with `status`, before any other handling.

        With `after`, the request is carried out first and only its answer is replaced: a 5xx
        after the service did the write, as a real service may answer (a timeout behind a proxy).
        `body` and `headers` default to what the fake's service answers for that status
        (`default_fault`). Faults are consumed in the order they were added.
        """
        default_body, default_headers = self.default_fault(status)
        fault = Fault(method.upper(), path_pattern, status, times,
                      {**default_headers, **(headers or {})}, default_body if body is None else body, after)
        with self.lock:
            self._faults.append(fault)
        return fault

    def hold(self, method: str, path_pattern: str) -> Hold:
        """Hold every request matching `method` (or ``*``) and the regex `path_pattern` until the
        returned hold is released; `Hold.arrived` is set once one arrived."""
        hold = Hold(method.upper(), path_pattern)
        with self.lock:
            self._holds.append(hold)
        return hold

    @property
    def pending_faults(self) -> list[Fault]:
        """Injected faults not yet used up."""
        with self.lock:
            return [f for f in self._faults if f.times > 0]

    # -- hooks for subclasses --------------------------------------------------------------

    def default_fault(self, status: int) -> tuple[Any, dict[str, str]]:
        """Body and headers of an injected fault when the test gives none."""
        return {"message": HTTPStatus(status).phrase}, {}

    def not_found(self, incoming: Incoming) -> JsonResponse:
        """The answer for a path no route serves."""
        return JsonResponse(404, {"message": "Not Found"})

    def dispatch(self, incoming: Incoming, handler: Handler) -> JsonResponse:
        """Run `handler`; subclasses wrap this to authenticate first."""
        return handler(incoming)

    def response_headers(self, incoming: Incoming, response: JsonResponse) -> dict[str, str]:
        """Headers added to every answer (subclasses add their service's usual headers)."""
        return {}

    # -- the WSGI application --------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        incoming = Incoming(
            method=request.method.upper(),
            path=request.path,
            query=dict(parse_qsl(request.query_string.decode(), keep_blank_values=True)),
            headers={k: v for k, v in request.headers.items()},
            body=request.get_data(),
        )
        for hold in [h for h in self._holds if not h.released.is_set()]:
            if hold.matches(incoming.method, incoming.path):
                hold.arrived.set()
                hold.released.wait()
        with self.lock:
            response = self._answer(incoming)
            extra = self.response_headers(incoming, response)
            self._record(incoming, response.status)
        if response.raw is not None:
            reply = Response(response.raw, status=response.status, content_type=response.content_type)
        else:
            payload = b"" if response.body is None else json.dumps(response.body).encode()
            reply = Response(payload, status=response.status,
                             content_type="application/json; charset=utf-8" if payload else None)
        for name, value in {**extra, **response.headers}.items():
            reply.headers[name] = str(value)
        return reply(environ, start_response)

    def _answer(self, incoming: Incoming) -> JsonResponse:
        for fault in self._faults:
            if fault.times > 0 and fault.matches(incoming.method, incoming.path):
                fault.times -= 1
                incoming.notes["fault"] = True
                if not fault.after:
                    return JsonResponse(fault.status, fault.body, fault.headers)
                self._route(incoming)  # done, and its answer lost
                return JsonResponse(fault.status, fault.body, fault.headers)
        return self._route(incoming)

    def _route(self, incoming: Incoming) -> JsonResponse:
        for route in self._routes:
            match = route.regex.fullmatch(incoming.path)
            if match and route.method == incoming.method:
                incoming.params = {k: route.converters[k](v) for k, v in match.groupdict().items()}
                try:
                    return self.dispatch(incoming, route.handler)
                except Exception:  # a bug in the fake: answer 500 but make it visible
                    self.server_errors.append(f"{incoming.method} {incoming.path}\n{traceback.format_exc()}")
                    return JsonResponse(500, {"message": "fake server error (see server_errors)"})
        return self.not_found(incoming)

    def _record(self, incoming: Incoming, status: int) -> None:
        headers = dict(incoming.headers)
        scheme = None
        for name in [n for n in headers if n.lower() == "authorization"]:
            scheme = headers[name].split(" ", 1)[0] if headers[name] else ""
            headers[name] = f"{scheme} {_REDACTED}"
        self._requests.append(RecordedRequest(
            method=incoming.method, path=incoming.path, query=dict(incoming.query), headers=headers,
            body=incoming.body, status=status, auth_scheme=scheme, actor=incoming.notes.get("actor"),
        ))
