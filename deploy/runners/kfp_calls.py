"""What both KFP REST API versions share: the run as the bot sees it, errors, and retries.

A KFP endpoint is reached through two API versions (`kfp_v2beta1` for kfp 2 packages,
`kfp_v1beta1` for Argo workflows compiled by the kfp v1 SDK); both answer in the terms of this
module so the runner does not care which one it talks to. Failures split in two: the endpoint
could not be reached or answered 5xx/429 (`KfpEndpointUnavailable`, retried here with backoff,
then raised: a retry later may pass), or it refused the request with a 4xx (`KfpRequestRefused`,
carrying the API's own message: the same request will never pass).
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deploy.errors import RunError
from handlers.run_models import RunState

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses after which the same request may pass: throttling and server-side failures."""

RUN_NAME_LIMIT = 128
"""KFP stores run names in a 128-character column."""


class ApiVersion(enum.Enum):
    """The KFP REST API versions the runner speaks."""

    V2BETA1 = "v2beta1"
    V1BETA1 = "v1beta1"


class KfpEndpointUnavailable(RunError, ConnectionError):
    """The KFP endpoint could not be reached or kept failing (5xx); a later retry may pass.

    It is a `ConnectionError` too, so the push endpoint answers 5xx and Pub/Sub redelivers.
    """


class KfpRequestRefused(RunError):
    """The KFP endpoint refused a request (4xx): the request itself is wrong and will not pass."""

    def __init__(self, what: str, status: int, message: str) -> None:
        self.status = status
        self.api_message = message
        super().__init__(f"the KFP endpoint refused to {what} (HTTP {status}): {message}")


class Transient(Exception):
    """One attempt failed in a way that may pass on retry (internal to the API adapters)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing call is retried (exponential backoff)."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    request_timeout: float = 30.0

    def delays(self) -> Iterator[float]:
        """The pause before each retry (one fewer than `attempts`)."""
        delay = self.initial_delay
        for _ in range(max(self.attempts, 1) - 1):
            yield min(delay, self.max_delay)
            delay *= self.multiplier


@dataclass(frozen=True)
class RemoteRun:
    """A run on the KFP endpoint, mapped to the bot's states; `detail` says why it ended badly."""

    id: str
    name: str
    state: RunState
    api: ApiVersion
    detail: str = ""


@dataclass(frozen=True)
class RunSpec:
    """One run to create: the package and everything the API needs beside it."""

    name: str
    description: str
    experiment_id: str
    package_path: Path
    parameters: Mapping[str, Any]
    enable_caching: bool | None = None
    service_account: str | None = None
    pipeline_root: str | None = None


class KfpApi(Protocol):
    """One API version of one KFP endpoint, as the runner uses it."""

    version: ApiVersion

    def experiment_id(self, name: str) -> str:
        """The id of the experiment called `name`, created when missing."""

    def find_run(self, name: str, experiment_id: str | None = None) -> RemoteRun | None:
        """The run called `name` (in the experiment, when given), or None."""

    def create_run(self, spec: RunSpec) -> RemoteRun:
        """Create the run; after a transient failure, a run that did get created is returned."""

    def terminate_run(self, run_id: str) -> None:
        """Ask the endpoint to stop the run."""


def with_retries(host: str, what: str, attempt: Callable[[], T], policy: RetryPolicy, *,
                 recover: Callable[[], T | None] | None = None) -> T:
    """`attempt()` until it stops raising `Transient`; then `KfpEndpointUnavailable`.

    `recover` runs after a transient failure of a call that is not idempotent (creating a run):
    when it finds what the failed call may have created after all, that is the answer.
    """
    delays = policy.delays()
    while True:
        try:
            return attempt()
        except Transient as exc:
            reason = exc.reason
        delay = next(delays, None)
        if delay is None:
            raise KfpEndpointUnavailable(
                f"the KFP endpoint {host} could not {what}: {reason} (gave up after {policy.attempts} attempts)",
                hint="the step is retried when the event is redelivered or by the next reconcile pass")
        time.sleep(delay)
        if recover is not None:
            found = recover()
            if found is not None:
                return found


def api_message(body: bytes | str | None, fallback: str) -> str:
    """The human message of a KFP error body (grpc-gateway JSON: `message` or `error`)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = (body or "").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "error_message"):
            if isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()
    return text[:500] if text else fallback


def experiment_id(name: str, find: Callable[[str], str | None], create: Callable[[], str]) -> str:
    """The id of experiment `name`, found or else created (`create` returns the new id).

    Two workers may both miss the experiment and create it at once: the endpoint refuses the
    second with 409 Conflict, and the experiment the first created is found again; any other
    refusal, or a conflict with nothing to find, is raised.
    """
    found = find(name)
    if found is not None:
        return found
    try:
        return create()
    except KfpRequestRefused as exc:
        if exc.status != 409:
            raise
        again = find(name)
        if again is None:
            raise
        return again


def name_filter(key: str, name: str, *, operation_key: str) -> str:
    """A KFP filter (JSON-serialised `Filter` proto) matching one exact name.

    v2beta1 calls the operator field `operation`, v1beta1 `op`; both take the enum's number.
    """
    return json.dumps({"predicates": [{operation_key: 1, "key": key, "stringValue": name}]})


def run_name(pipeline: str, run_id: str) -> str:
    """The deterministic KFP run name of a kfp-bot run: how the run is found again without state."""
    return f"{pipeline[:RUN_NAME_LIMIT - len(run_id) - 1]}-{run_id}"
