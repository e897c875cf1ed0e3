"""What every gRPC fake of a Google Cloud service shares: recording, refusals and injected faults.

A fake subclasses `RecordingGrpcService`, keeps its state under `self._lock`, builds method
handlers with `self._unary(...)` and raises `Rejection` where the real service would refuse a
request; tests read `calls` / `requests(method)` and script failures with `_add_fault`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc


class Rejection(Exception):
    """A request the real service would refuse, with the gRPC status it answers."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RecordedCall:
    """One RPC as the fake received it and the status it answered."""

    method: str
    request: Any
    code: grpc.StatusCode


@dataclass
class Fault:
    """A scripted failure of one method: `remaining` calls (None: all), before or after the work."""

    code: grpc.StatusCode
    message: str
    remaining: int | None
    after_processing: bool


class RecordingGrpcService:
    """Recording, fault injection and serving on 127.0.0.1 for a fake gRPC service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._holds: dict[str, threading.Event] = {}
        self._held = threading.Condition()
        self._waiting: dict[str, int] = {}
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> None:
        """Serve on an ephemeral port of 127.0.0.1 (subclasses build their handlers here)."""
        raise NotImplementedError

    def _serve(self, *handlers: grpc.GenericRpcHandler) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        server.add_generic_rpc_handlers(handlers)
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server

    def hold(self, method: str) -> None:
        """Keep every call of `method` waiting, unanswered, until `release(method)` (a slow service,
        or one whose caller dies mid-call); the call is then processed as usual."""
        with self._held:
            self._holds[method] = threading.Event()

    def wait_held(self, method: str, count: int = 1, timeout: float = 60.0) -> bool:
        """True once `count` calls of `method` are waiting on a hold; False after `timeout`."""
        with self._held:
            return self._held.wait_for(lambda: self._waiting.get(method, 0) >= count, timeout)

    def held(self, method: str) -> int:
        """How many calls of `method` have waited on a hold so far."""
        with self._held:
            return self._waiting.get(method, 0)

    def release(self, method: str) -> None:
        """Let the held calls of `method` (and later ones) through."""
        with self._held:
            gate = self._holds.pop(method, None)
        if gate is not None:
            gate.set()

    def _wait_if_held(self, method: str) -> None:
        with self._held:
            gate = self._holds.get(method)
            if gate is None:
                return
            self._waiting[method] = self._waiting.get(method, 0) + 1
            self._held.notify_all()
        gate.wait()

    def stop(self) -> None:
        """Stop serving (held calls are let go first)."""
        for method in list(self._holds):
            self.release(method)
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:<port>`, for the client factories (`make_cloudbuild_client`, ...)."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _add_fault(self, method: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(method, deque()).append(fault)

    def clear_faults(self) -> None:
        """Forget every fault not yet answered."""
        with self._lock:
            self._faults.clear()

    def requests(self, method: str) -> list[Any]:
        """The requests `method` received, in order (failed ones included)."""
        with self._lock:
            return [c.request for c in self.calls if c.method == method]

    def _unary(self, name: str, request_type: Any, handler: Callable[[Any], Any],
               serialize: Callable[[Any], bytes]) -> grpc.RpcMethodHandler:
        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            self._wait_if_held(name)
            fault = self._take_fault(name)
            try:
                if fault is not None and not fault.after_processing:
                    raise Rejection(fault.code, fault.message)
                response = handler(request)
                if fault is not None:
                    raise Rejection(fault.code, fault.message)
            except Rejection as abort:
                self._record(name, request, abort.code)
                context.abort(abort.code, abort.message)
            self._record(name, request, grpc.StatusCode.OK)
            return response

        return grpc.unary_unary_rpc_method_handler(serve, request_deserializer=request_type.deserialize,
                                                   response_serializer=serialize)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(method)
            if not queue:
                return None
            fault = queue[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.popleft()
            return fault

    def _record(self, method: str, request: Any, code: grpc.StatusCode) -> None:
        with self._lock:
            self.calls.append(RecordedCall(method, type(request)(request), code))
