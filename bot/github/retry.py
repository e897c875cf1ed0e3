"""GitHub's retry policy for the bot's PyGithub clients: `RetryPolicy` builds a `WriteSafeRetry`.

PyGithub's own `GithubRetry` (a urllib3 `Retry`) is configured rather than a retry loop written
by hand. `WriteSafeRetry` refuses to repeat a write GitHub may have done and bounds every wait
for a rate limit (see its docstring); the callers (`bot.github.client`, `bot.github.github_reporter`)
turn what it gives up on into visible errors and look writes up before creating them again.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from github import GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry
from urllib3.util.util import reraise

log = logging.getLogger("kfp_bot.github")


class WriteSafeRetry(GithubRetry):
    """`GithubRetry` that never repeats a write GitHub may have done, and bounds rate-limit waits.

    - A POST answered with a 5xx, or whose answer was lost (read timeout, dropped connection),
      is not retried here (`WriteNotRepeated`): GitHub may have created the comment or check run
      already, so the caller looks it up before creating again. Reads, PATCHes and the POSTs
      that GitHub makes idempotent (an installation token, a reaction: 200 with the existing
      one) are retried as usual.
    - 403 and 429 rate limits (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):
      wait `Retry-After` seconds when given; else, with `x-ratelimit-remaining: 0`, until
      `x-ratelimit-reset`; else a 429 waits `secondary_rate_wait` ("at least one minute"), and a
      403 is left to `GithubRetry` (which reads the message). A wait longer than
      `max_rate_limit_wait` raises `RateLimitExceededExceedsMaxWait` at once.
    """

    def increment(self, method: str | None = None, url: str | None = None,  # type: ignore[override]
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: TracebackType | None = None) -> Retry:
        if (method or "").upper() == "POST" and not _REPEATABLE_POST.search(urlparse(url or "").path):
            # GitHub may have done it: the caller looks before writing again.
            if error is not None and self._is_read_error(error):
                raise reraise(type(error), error, _stacktrace)
            if response is not None and response.status >= 500:
                raise WriteNotRepeated(_pool, url, response.status)
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
        # PyGithub declares `response` narrower (HTTPResponse) than urllib3, which passes any BaseHTTPResponse.
        return super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[arg-type]


# POSTs GitHub answers the same way when repeated: a new installation token; a reaction (200
# with the existing one, https://docs.github.com/en/rest/reactions/reactions).
_REPEATABLE_POST = re.compile(r"(/app/installations/\d+/access_tokens|/reactions)$")


class WriteNotRepeated(MaxRetryError):
    """A POST answered with a 5xx, deliberately not retried (GitHub may have done the write)."""

    def __init__(self, pool: Any, url: str | None, status: int) -> None:
        super().__init__(pool, url or "", ResponseError(f"{status} answer to a write, not repeated"))
        self.status = status


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
