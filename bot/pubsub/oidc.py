"""Checking that a push request really comes from our Pub/Sub push subscription.

A push subscription with authentication sends `Authorization: Bearer <OIDC token>`: a JWT that
Google signs, whose audience is the one configured on the subscription and whose `email` is
the subscription's service account. `PushTokenVerifier` checks the signature against Google's
certificates (fetched with `google-auth`, cached as long as Google's Cache-Control allows), the
expiry, the audience, the issuer and the email, so that nobody else can inject events.

The certificates URL and the HTTP transport are arguments: tests serve their own certificates
on 127.0.0.1 and sign tokens with their own key, with no network.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kfp_bot_errors import KfpBotError

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CERTS_TIMEOUT_SECONDS = 10.0
# Google's certificates say how long they may be cached; never trust a copy longer than this.
MAX_CACHE_SECONDS = 3600.0
DEFAULT_CACHE_SECONDS = 300.0


class PushAuthFailure(enum.Enum):
    """Why a push request was refused; the value is the HTTP status it gets."""

    UNAUTHENTICATED = 401
    FORBIDDEN = 403
    CERTS_UNAVAILABLE = 503


class PushAuthError(KfpBotError):
    """A push request whose token is missing, invalid, or not from the expected account."""

    def __init__(self, failure: PushAuthFailure, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failure = failure

    @property
    def status(self) -> int:
        """The HTTP status the push request gets."""
        return self.failure.value


@dataclass(frozen=True)
class PushIdentity:
    """Who signed a verified push request."""

    email: str
    issuer: str
    audience: str
    subject: str | None = None


class CachingRequest:
    """A `google.auth.transport.Request` that remembers successful GETs for their Cache-Control max-age.

    Without it every push request would download Google's certificates again. Only GET answers
    with status 200 are kept, each at most `MAX_CACHE_SECONDS`; other requests go straight through.
    """

    def __init__(self, inner: Any = None, *, timeout_seconds: float = CERTS_TIMEOUT_SECONDS) -> None:
        if inner is None:
            from google.auth.transport.requests import Request

            inner = Request()
        self._inner = inner
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Any]] = {}

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> Any:
        if method.upper() != "GET":
            return self._inner(url, method=method, body=body, headers=headers,
                               timeout=timeout or self._timeout, **kwargs)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            return cached[1]
        response = self._inner(url, method="GET", body=body, headers=headers,
                               timeout=timeout or self._timeout, **kwargs)
        if response.status == 200:
            seconds = _max_age(response.headers)
            if seconds > 0:
                with self._lock:
                    self._cache[url] = (now + seconds, response)
        return response


def _max_age(headers: Mapping[str, str] | None) -> float:
    control = ""
    for name, value in (headers or {}).items():
        if name.lower() == "cache-control":
            control = value
    if re.search(r"\b(no-store|no-cache)\b", control):
        return 0.0
    found = re.search(r"\bmax-age=(\d+)", control)
    seconds = float(found.group(1)) if found else DEFAULT_CACHE_SECONDS
    return min(seconds, MAX_CACHE_SECONDS)


class PushTokenVerifier:
    """Verifies the `Authorization` header of a push request against one audience and account."""

    def __init__(self, audience: str, service_account: str, *, certs_url: str = GOOGLE_CERTS_URL,
                 request: Any = None, issuers: tuple[str, ...] = GOOGLE_ISSUERS,
                 clock_skew_seconds: int = 10) -> None:
        """`request` is a google-auth transport (default: requests, with caching by max-age)."""
        if not audience or not service_account:
            raise ValueError("push token verification needs an audience and a service account email")
        self.audience = audience
        self.service_account = service_account
        self.certs_url = certs_url
        self.issuers = issuers
        self._request: Any = request if request is not None else CachingRequest()  # a google.auth Request, duck-typed
        self._skew = clock_skew_seconds

    def verify(self, authorization: str | None) -> PushIdentity:
        """The identity behind a valid `Bearer` token, else `PushAuthError` saying what was wrong."""
        from google.auth import exceptions as auth_exceptions
        from google.oauth2 import id_token

        token = _bearer(authorization)
        try:
            claims = id_token.verify_token(token, self._request, audience=self.audience,
                                           certs_url=self.certs_url, clock_skew_in_seconds=self._skew)
        except auth_exceptions.TransportError as exc:
            raise PushAuthError(PushAuthFailure.CERTS_UNAVAILABLE,
                                f"could not fetch the token certificates from {self.certs_url}: {exc}",
                                hint="Pub/Sub will retry") from None
        except (auth_exceptions.GoogleAuthError, ValueError) as exc:
            raise PushAuthError(PushAuthFailure.UNAUTHENTICATED, f"invalid push token: {exc}",
                                hint=f"the push subscription must send an OIDC token for audience "
                                     f"{self.audience}") from None
        return self._identity(claims)

    def _identity(self, claims: Mapping[str, Any]) -> PushIdentity:
        issuer = str(claims.get("iss", ""))
        email = str(claims.get("email", ""))
        if issuer not in self.issuers:
            raise PushAuthError(PushAuthFailure.FORBIDDEN, f"push token issued by {issuer or 'nobody'!r}, "
                                f"expected one of {', '.join(self.issuers)}")
        if email != self.service_account:
            raise PushAuthError(PushAuthFailure.FORBIDDEN,
                                f"push token is for {email or 'no email'!r}, expected {self.service_account}",
                                hint="set the push subscription's service account to "
                                     "KFP_BOT_PUBSUB_PUSH_SERVICE_ACCOUNT")
        if claims.get("email_verified") is not True:
            raise PushAuthError(PushAuthFailure.FORBIDDEN, f"push token email {email} is not verified")
        return PushIdentity(email=email, issuer=issuer, audience=self.audience,
                            subject=str(claims["sub"]) if claims.get("sub") else None)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise PushAuthError(PushAuthFailure.UNAUTHENTICATED, "push request without an Authorization header",
                            hint="enable authentication (OIDC token) on the push subscription")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PushAuthError(PushAuthFailure.UNAUTHENTICATED,
                            f"push request Authorization is not a Bearer token (scheme {scheme!r})")
    return token.strip()
