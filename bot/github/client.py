"""Authenticated PyGithub clients for the bot: one per App installation, or one for a token.

This is where settings become `github.Github` objects and where every GitHub call is guarded:
PyGithub's `GithubRetry` (configured by `RetryPolicy`, see `bot.github.retry`) retries 5xx answers
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
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests
from github import Auth, Consts, Github, GithubException, GithubIntegration
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.Repository import Repository

from bot.config import ConfigurationError, Settings
from bot.github.retry import RetryPolicy, WriteNotRepeated, WriteSafeRetry
from handlers.models import RepoRef
from kfp_bot_errors import KfpBotError

T = TypeVar("T")
__all__ = ["GitHubClients", "GitHubError", "GitHubMode", "GitHubRateLimited", "RetryPolicy", "WriteSafeRetry"]

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


class GitHubMode(enum.Enum):
    """How the bot authenticates: as a GitHub App installation, or with one token."""

    APP = "app"
    TOKEN = "token"


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
        # Passed to every github.Github and GithubIntegration (their keyword arguments).
        self._options: dict[str, Any] = {"base_url": settings.github_api_url, "timeout": int(timeout_seconds),
                         "seconds_between_requests": seconds_between_requests,
                         "seconds_between_writes": seconds_between_writes, "lazy": True}
        self._token = settings.github_token.get_secret_value() if settings.github_token else None
        self._app_auth: Auth.AppAuth | None = None
        self.app_id = settings.github_app_id
        if self.mode is GitHubMode.APP and settings.github_app_id is not None:
            self._app_auth = Auth.AppAuth(settings.github_app_id, _checked_key(settings.private_key_pem()))
        self._lock = threading.Lock()
        self._clients: dict[int | None, Github] = {}
        self._auths: dict[int, Auth.AppInstallationAuth] = {}
        self._installations: dict[str, int] = {}
        self._integration: GithubIntegration | None = None

    # -- clients ---------------------------------------------------------------------------

    def github(self, repo: str, installation_id: int | None) -> Github:
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

    def _client(self, key: int | None, make_auth: Callable[[], Auth.Auth]) -> Github:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = Github(auth=make_auth(), retry=self.retry.build(), **self._options)
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
            cause = exc.args[0] if exc.args else None
            if isinstance(cause, WriteNotRepeated):
                raise GitHubError(_scrub(f"GitHub: {what} failed: {cause.status} (a write is not repeated "
                                         "blindly: GitHub may have done it)"), status=cause.status,
                                  hint="GitHub may be having an outage") from exc
            reason = getattr(cause, "reason", None)
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
