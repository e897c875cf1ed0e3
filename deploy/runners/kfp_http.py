"""JSON over HTTP to a KFP endpoint with `requests`: the v1beta1 API and the v2beta1 health probe.

The kfp 2 SDK has no v1beta1 client any more (kfp-server-api 2.x only generates v2beta1), so
the v1beta1 calls are plain REST. Every call has a timeout, retries 5xx/429 and connection
failures with backoff (`kfp_calls.with_retries`) and turns a 4xx into `KfpRequestRefused` with
the API's own message.

An endpoint behind Google's inverse proxy (AI Platform Pipelines, `*.googleusercontent.com`)
needs a Google access token: `default_session` uses the bot's application default credentials
for those hosts, as `kfp.Client` does for its own calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from deploy.endpoints import is_loopback
from deploy.runners.kfp_calls import (
    RETRY_STATUSES,
    KfpRequestRefused,
    RetryPolicy,
    T,
    Transient,
    api_message,
    with_retries,
)

_INVERSE_PROXY = re.compile(r"\S+\.googleusercontent\.com/?$")
_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def normalise_host(host: str) -> str:
    """`host` with a scheme and no trailing slash: http for loopback addresses, https otherwise."""
    host = host.strip().rstrip("/")
    if not host:
        raise ValueError("the KFP host is empty (set KFP_BOT_KFP_HOST)")
    if re.match(r"^https?://", host):
        return host
    return f"{'http' if is_loopback(host) else 'https'}://{host}"


def default_session(host: str) -> requests.Session:
    """A session for `host`: authorised with application default credentials behind the inverse proxy."""
    if _INVERSE_PROXY.match(urlsplit(host).netloc or host):
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=[_CLOUD_PLATFORM])
        return AuthorizedSession(credentials)
    return requests.Session()


class JsonHttp:
    """JSON requests to one KFP endpoint, retried and mapped to the runner's errors."""

    def __init__(self, host: str, session_factory: Callable[[], requests.Session], policy: RetryPolicy) -> None:
        self.host = host
        self._session_factory = session_factory
        self._session: requests.Session | None = None
        self.policy = policy

    def call(self, what: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             body: Any = None, missing_ok: bool = False,
             recover: Callable[[], T | None] | None = None) -> Any:
        """The JSON answer of `method path`; None for a 404 when `missing_ok`.

        Raises `KfpRequestRefused` (4xx, or an answer that is not the API's JSON) and
        `KfpEndpointUnavailable` (still failing after the retries).
        """
        return with_retries(self.host, what, lambda: self._once(what, method, path, params, body, missing_ok),
                            self.policy, recover=recover)

    def _once(self, what: str, method: str, path: str, params: Mapping[str, Any] | None, body: Any,
              missing_ok: bool) -> Any:
        if self._session is None:
            self._session = self._session_factory()
        timeout = self.policy.request_timeout
        try:
            response = self._session.request(method, f"{self.host}{path}", params=params, json=body,
                                             timeout=(timeout, timeout))
        except requests.RequestException as exc:
            raise Transient(_describe(exc)) from None
        if response.status_code in RETRY_STATUSES:
            raise Transient(f"HTTP {response.status_code}: {api_message(response.content, response.reason)}")
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise KfpRequestRefused(what, response.status_code, api_message(response.content, response.reason))
        if not response.content.strip():
            return {}
        try:
            return response.json()
        except ValueError:
            raise KfpRequestRefused(what, response.status_code,
                                    f"{self.host} answered {path} with something that is not the KFP API's JSON "
                                    "(a sign-in page?): check the host and the bot's credentials") from None


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "the request timed out"
    if isinstance(exc, requests.ConnectionError):
        errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        return f"cannot connect: {errno.group(1).strip()}" if errno else "cannot connect"
    return f"{type(exc).__name__}: {exc}"
