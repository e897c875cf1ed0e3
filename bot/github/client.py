"""Authenticated PyGithub clients for the bot: one per App installation, or one for a token.

This is where settings become `github.Github` objects and where every GitHub call is guarded:
PyGithub's `GithubRetry` (configured by `RetryPolicy`, see `WriteSafeRetry`) retries 5xx answers
of reads and edits, and rate limits (waiting for `Retry-After` or `x-ratelimit-reset`, bounded),
with backoff; a POST that got a 5xx or lost its answer is never retried blindly, since GitHub may
have done it (the reporter looks it up first). Whatever still fails becomes one `GitHubError`
naming what the bot was doing and why GitHub refused, never a traceback and never a credential;
a rate limit longer than the bot waits is `GitHubRateLimited`, a `ConnectionError`, so the step
is rescheduled (Pub/Sub redelivers it) instead of holding a worker. One client
per installation is kept, so PyGithub caches the installation token and refreshes it before it
expires; concurrent workers share it.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import github
import requests
from github import Auth, Consts, GithubException, GithubIntegration, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Repository import Repository
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry
from urllib3.util.util import reraise

from bot.config import ConfigurationError, Settings
from handlers.models import RepoRef
from pipeline_registry.errors import KfpBotError

T = TypeVar("T")
log = logging.getLogger("kfp_bot.github")

# Anything that looks like a GitHub credential is cut from error messages, whatever produced them.
_SECRET_PATTERNS = (re.compile(r"\bgh[pousr]_[A-Za-z0-9_]{10,}"), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{10,}"),
                    re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._\-]{16,}"))


class GitHubError(KfpBotError):
    """A GitHub call failed after retries; the message names the action, never a credential.

    `status` is GitHub's HTTP status when it answered (None for network failures).
    """

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status

    @property
    def maybe_done(self) -> bool:
        """True when GitHub may have carried out the request anyway: a 5xx, or no answer."""
        return self.status is None or self.status >= 500


class GitHubRateLimited(GitHubError, ConnectionError):
    """GitHub asks to wait longer than the bot waits in one step: the step is retried later
    (a `ConnectionError`, so a Pub/Sub push answers 503 and the message is redelivered)."""


class WriteSafeRetry(GithubRetry):
    """`GithubRetry` that never repeats a write GitHub may have done, and bounds rate-limit waits.

    - A POST answered with a 5xx, or whose answer was lost (read timeout, dropped connection),
      is not retried here: GitHub may have created the comment or check run already, so the
      caller looks it up before creating again. Reads and PATCHes are retried as usual.
    - 403 and 429 rate limits (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):
      wait `Retry-After` seconds when given; else, with `x-ratelimit-remaining: 0`, until
      `x-ratelimit-reset`; else a 429 waits `secondary_rate_wait` ("at least one minute"), and a
      403 is left to `GithubRetry` (which reads the message). A wait longer than
      `max_rate_limit_wait` raises `RateLimitExceededExceedsMaxWait` at once.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST" and status_code >= 500:
            return False  # GitHub may have done it: the caller looks before writing again
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, method: str | None = None, url: str | None = None,  # type: ignore[override]
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: TracebackType | None = None) -> Retry:
        if error is not None and (method or "").upper() == "POST" and self._is_read_error(error):
            raise reraise(type(error), error, _stacktrace)  # sent, answer lost: maybe done
        if response is not None and response.status in (403, 429):
            wait = _rate_limit_wait(response, self.secondary_rate_wait)
            if wait is not None:
                if self.max_rate_limit_wait is not None and wait > self.max_rate_limit_wait:
                    raise RateLimitExceededExceedsMaxWait(response.status, _reason(response),
                                                          dict(response.headers), wait=wait)
                log.info("GitHub rate limit on %s %s (%s): waiting %.0f s", method, url, response.status, wait)
                retry = Retry.increment(self, method, url, response, error, _pool, _stacktrace)
                retry.get_backoff_time = lambda: wait  # type: ignore[method-assign]
                return retry
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _rate_limit_wait(response: BaseHTTPResponse, secondary_wait: float) -> float | None:
    """Seconds GitHub asks to wait before retrying, or None when the headers do not say."""
    headers = response.headers
    retry_after = headers.get("Retry-After")
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after)
    reset = headers.get("X-RateLimit-Reset")
    if headers.get("X-RateLimit-Remaining") == "0" and reset is not None and reset.strip().isdigit():
        return max(float(reset) - time.time(), 0.0) + 1  # the reset falls somewhere in that second
    if response.status == 429:
        return secondary_wait
    return None  # a 403: GithubRetry decides from the message whether it is a rate limit


def _reason(response: BaseHTTPResponse) -> str:
    return f"rate limited ({response.status})"


class GitHubMode(enum.Enum):
    """How the bot authenticates: as a GitHub App installation, or with one token."""

    APP = "app"
    TOKEN = "token"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to insist before giving up: `GithubRetry` settings, small in tests.

    Waits longer than `max_rate_limit_wait` (KFP_BOT_GITHUB_MAX_RATE_LIMIT_WAIT) for a rate limit
    give up at once with `GitHubRateLimited` rather than holding a worker for most of an hour: the
    step is retried later (Pub/Sub redelivers it, with its own backoff).
    """

    total: int = 5
    backoff_factor: float = 1.0
    backoff_max: float = 60.0
    max_rate_limit_wait: float = 60.0
    secondary_rate_wait: float = 60.0

    def build(self) -> GithubRetry:
        """A fresh `WriteSafeRetry`: 5xx (not for POST), 429 and rate-limited 403 answers are retried.

        PATCH is retried too (urllib3 leaves it out): the bot only PATCHes whole check runs and
        comment bodies, which is idempotent. POST stays allowed for rate limits, which GitHub
        answers before doing anything.
        """
        return WriteSafeRetry(total=self.total, backoff_factor=self.backoff_factor, backoff_max=self.backoff_max,
                           max_rate_limit_wait=self.max_rate_limit_wait,
                           secondary_rate_wait=self.secondary_rate_wait,
                           status_forcelist=list(range(500, 600)) + [429],
                           allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"})


class GitHubClients:
    """`github.Github` clients for `settings`: per installation (App) or one shared (token)."""

    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None, timeout_seconds: int = 15,
                 seconds_between_requests: float | None = Consts.DEFAULT_SECONDS_BETWEEN_REQUESTS,
                 seconds_between_writes: float | None = Consts.DEFAULT_SECONDS_BETWEEN_WRITES) -> None:
        """`seconds_between_*` keep PyGithub's pacing (GitHub's advice against secondary rate
        limits); tests pass None."""
        if settings.github_mode is None:
            raise ConfigurationError("GitHub credentials are not configured: set KFP_BOT_GITHUB_APP_ID and "
                                     "KFP_BOT_GITHUB_PRIVATE_KEY(_FILE), or KFP_BOT_GITHUB_TOKEN")
        self.mode = GitHubMode(settings.github_mode)
        self.api_url = settings.github_api_url
        self.web_host = _web_host(settings.github_api_url)
        self.retry = retry or RetryPolicy(max_rate_limit_wait=settings.github_max_rate_limit_wait)
        self._options = {"base_url": settings.github_api_url, "timeout": int(timeout_seconds),
                         "seconds_between_requests": seconds_between_requests,
                         "seconds_between_writes": seconds_between_writes, "lazy": True}
        self._token = settings.github_token.get_secret_value() if settings.github_token else None
        self._app_auth: Auth.AppAuth | None = None
        self.app_id = settings.github_app_id
        if self.mode is GitHubMode.APP:
            self._app_auth = Auth.AppAuth(settings.github_app_id, _checked_key(settings.private_key_pem()))
        self._lock = threading.Lock()
        self._clients: dict[int | None, github.Github] = {}
        self._auths: dict[int, Auth.AppInstallationAuth] = {}
        self._installations: dict[str, int] = {}
        self._integration: GithubIntegration | None = None

    # -- clients ---------------------------------------------------------------------------

    def github(self, repo: str, installation_id: int | None) -> github.Github:
        """The client acting for `repo`: its installation's (App mode) or the token's."""
        if self.mode is GitHubMode.TOKEN:
            return self._client(None, lambda: Auth.Token(self._token or ""))
        if installation_id is None:
            installation_id = self.installation_id_for(repo)
        return self._client(installation_id, lambda: self._installation_auth(installation_id))

    def repo(self, full_name: str, installation_id: int | None) -> Repository:
        """A lazy `Repository` (no request until something is asked of it)."""
        return self.github(full_name, installation_id).get_repo(full_name)

    def installation_id_for(self, repo: str) -> int:
        """The App installation that covers `repo` (asked of GitHub once, then remembered)."""
        with self._lock:
            known = self._installations.get(repo.lower())
        if known is not None:
            return known
        owner, _, name = repo.partition("/")
        with self._lock:
            if self._integration is None:
                self._integration = GithubIntegration(auth=self._app_auth, retry=self.retry.build(),
                                                      **self._options)
            integration = self._integration
        installation = self.call(f"finding the GitHub App installation of {repo}",
                                 lambda: integration.get_repo_installation(owner, name))
        with self._lock:
            self._installations[repo.lower()] = installation.id
        return installation.id

    def token_for(self, repo: RepoRef) -> str | None:
        """A token git can fetch `repo` with, or None when its clone URL is not on this GitHub.

        Never hands a credential to another host: a clone URL elsewhere gets None.
        """
        if (urlparse(repo.clone_url).hostname or "").lower() != self.web_host:
            return None
        if self.mode is GitHubMode.TOKEN:
            return self._token
        installation_id = self.installation_id_for(repo.full_name)
        self.github(repo.full_name, installation_id)
        auth = self._auths[installation_id]
        return self.call(f"getting an installation token for {repo.full_name}", lambda: auth.token)

    def _client(self, key: int | None, make_auth: Callable[[], Auth.Auth]) -> github.Github:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = github.Github(auth=make_auth(), retry=self.retry.build(), **self._options)
                self._clients[key] = client
            return client

    def _installation_auth(self, installation_id: int) -> Auth.AppInstallationAuth:
        assert self._app_auth is not None
        auth = self._app_auth.get_installation_auth(installation_id)
        self._auths[installation_id] = auth
        return auth

    # -- guarded calls ---------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one GitHub interaction; any failure becomes a `GitHubError` about `what`."""
        try:
            return fn()
        except RateLimitExceededExceedsMaxWait as exc:
            raise GitHubRateLimited(_scrub(f"GitHub: {what} failed: rate limited, and GitHub asks to wait "
                                     f"{exc.wait:.0f} s, longer than the bot waits "
                                     f"({self.retry.max_rate_limit_wait:.0f} s)"), status=exc.status,
                              hint="the step is retried later") from exc
        except GithubException as exc:
            raise GitHubError(_scrub(f"GitHub: {what} failed: {_describe(exc)}"), status=exc.status,
                              hint=_hint(exc.status, self.mode)) from exc
        except requests.exceptions.RetryError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            raise GitHubError(_scrub(f"GitHub: {what} failed after {self.retry.total} retries: "
                                     f"{reason or exc}"), hint="GitHub may be having an outage") from exc
        except requests.exceptions.RequestException as exc:
            raise GitHubError(_scrub(f"GitHub: {what} failed: cannot reach {self.api_url} "
                                     f"({type(exc).__name__})")) from exc


def _describe(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "").strip()
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e) for e in errors]
        message = f"{message} ({'; '.join(details)})" if message else "; ".join(details)
    return f"{exc.status} {message}".strip()


def _hint(status: int | None, mode: GitHubMode) -> str | None:
    who = "the GitHub App's installation" if mode is GitHubMode.APP else "KFP_BOT_GITHUB_TOKEN"
    return {
        401: "check the credentials: KFP_BOT_GITHUB_APP_ID and its private key, or KFP_BOT_GITHUB_TOKEN",
        403: f"{who} lacks a permission this needs (checks/statuses, issues and pull requests: write)",
        404: f"the repository or object does not exist, or {who} cannot see it",
        422: "GitHub rejected the request as invalid",
    }.get(status or 0)


def _scrub(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) + " ***") if m.lastindex else "***", text)
    return text


def _checked_key(pem: str | None) -> str:
    """The App private key, checked now so a bad key stops start-up instead of every request."""
    from cryptography.hazmat.primitives import serialization

    if not pem or not pem.strip():
        raise ConfigurationError("the GitHub App private key is empty (KFP_BOT_GITHUB_PRIVATE_KEY or "
                                 "KFP_BOT_GITHUB_PRIVATE_KEY_FILE)")
    try:
        serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigurationError("the GitHub App private key is not an unencrypted PEM private key: use the "
                                 ".pem file downloaded from the App's settings page") from None
    return pem


def _web_host(api_url: str) -> str:
    """github.com for api.github.com; the same host for GitHub Enterprise (`/api/v3`) and fakes."""
    host = (urlparse(api_url).hostname or "").lower()
    return "github.com" if host == "api.github.com" else host
