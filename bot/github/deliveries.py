"""Redelivery of the App's failed webhook deliveries: an outage of the bot loses nothing GitHub still holds.

GitHub never retries a failed webhook delivery by itself. It does keep every attempt for a few
days and lets the App ask for another one, with the App's JWT (not an installation token):
`GET /app/hook/deliveries` lists attempts newest first (cursor pagination through the `Link`
header), `POST /app/hook/deliveries/{id}/attempts` redelivers (202). Attempts of one event share
its `guid`, the `X-GitHub-Delivery` header the bot records.

An event is redelivered when, within the last three days (GitHub refuses older ones), none of
its attempts succeeded, the bot's store has no record of its guid (an attempt GitHub counted
as failed, say a timeout, may still have been accepted), and it was not already attempted
`max_attempts` times (a payload the bot refuses every time must not be resent for three days).
Events never retried go first, oldest first (a PR's events arrive in their order), then those
already retried; at most `max_redeliveries` per pass.

PyGithub (2.x) has no call for the App hook endpoints, so they go through the requester of a
`GithubIntegration` (App auth, the bot's retry policy), and every failure becomes a `GitHubError`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from github import Auth, Consts, GithubIntegration

from bot.config import Settings
from bot.github.client import GitHubClients, GitHubError, GitHubMode

log = logging.getLogger("kfp_bot.github.deliveries")

DELIVERIES_PATH = "/app/hook/deliveries"
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')

Seen = Callable[[str], bool]
"""Whether the bot's store has recorded a delivery guid (a read-only look-up)."""


@dataclass(frozen=True)
class RedeliveryPolicy:
    """How far back to look and how much to resend in one pass."""

    max_age: timedelta = timedelta(days=3)
    max_redeliveries: int = 20
    max_attempts: int = 5
    max_pages: int = 50
    per_page: int = 100


@dataclass(frozen=True)
class Attempt:
    """One listed delivery attempt (GitHub's `hook-delivery-item`)."""

    id: int
    guid: str
    event: str
    action: str | None
    status_code: int
    delivered_at: datetime
    redelivery: bool

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def from_json(cls, item: Any) -> Attempt | None:
        """The attempt, or None for an item without the fields the bot relies on."""
        try:
            return cls(id=int(item["id"]), guid=str(item["guid"]), event=str(item.get("event") or ""),
                       action=item.get("action"), status_code=int(item.get("status_code") or 0),
                       delivered_at=datetime.fromisoformat(str(item["delivered_at"])).astimezone(UTC),
                       redelivery=bool(item.get("redelivery")))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class RedeliveryReport:
    """Counts of one pass.

    `listed`: attempts within the window. `failed`: events none of whose attempts succeeded.
    `redelivered`: events GitHub was asked to send again. `already_recorded`: failed events the
    bot's store has (not resent). `exhausted`: failed `max_attempts` times, left alone (logged).
    `deferred`: over the per-pass cap, for the next pass. `errors`: redeliveries GitHub refused.
    `skipped`: why the pass did nothing (e.g. token mode), else None.
    """

    listed: int = 0
    failed: int = 0
    redelivered: int = 0
    already_recorded: int = 0
    exhausted: int = 0
    deferred: int = 0
    errors: int = 0
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The counts as `/tasks/reconcile` answers them."""
        if self.skipped is not None:
            return {"skipped": self.skipped}
        return {key: value for key, value in dataclasses.asdict(self).items() if key != "skipped"}


class Redeliverer(Protocol):
    """Finds the webhook deliveries that failed and has GitHub send them again."""

    def redeliver_failed(self, seen: Seen) -> RedeliveryReport:
        """One pass; `seen(guid)` tells deliveries the bot already has."""


class NoRedelivery:
    """Stands in where GitHub offers no App hook to ask (token mode, no GitHub): says why, each pass."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def redeliver_failed(self, seen: Seen) -> RedeliveryReport:
        log.info("webhook redelivery skipped: %s", self.reason)
        return RedeliveryReport(skipped=self.reason)


class AppHookDeliveries:
    """The GitHub App's own webhook deliveries, listed and redelivered with the App's JWT."""

    def __init__(self, settings: Settings, clients: GitHubClients, *, policy: RedeliveryPolicy = RedeliveryPolicy(),
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), timeout_seconds: int = 15,
                 seconds_between_requests: float | None = Consts.DEFAULT_SECONDS_BETWEEN_REQUESTS,
                 seconds_between_writes: float | None = Consts.DEFAULT_SECONDS_BETWEEN_WRITES) -> None:
        """`clients` must be in App mode; `settings` give the App id and key (checked by `clients`).
        `seconds_between_*` keep PyGithub's pacing; tests pass None."""
        if clients.mode is not GitHubMode.APP or settings.github_app_id is None:
            raise ValueError("App hook deliveries need GitHub App credentials")
        self.clients = clients
        self.policy = policy
        self._now = now
        auth = Auth.AppAuth(settings.github_app_id, settings.private_key_pem() or "")
        self._integration = GithubIntegration(auth=auth, base_url=clients.api_url, retry=clients.retry.build(),
                                              timeout=timeout_seconds,
                                              seconds_between_requests=seconds_between_requests,
                                              seconds_between_writes=seconds_between_writes)

    def recent_attempts(self) -> list[Attempt]:
        """Attempts of the last `max_age`, newest first (pages are followed until older ones)."""
        cutoff = self._now() - self.policy.max_age
        attempts: list[Attempt] = []
        cursor: str | None = None
        for _page in range(self.policy.max_pages):
            params: dict[str, Any] = {"per_page": self.policy.per_page}
            if cursor:
                params["cursor"] = cursor
            headers, items = self.clients.call(
                "listing the App's webhook deliveries",
                functools.partial(self._integration.requester.requestJsonAndCheck, "GET", DELIVERIES_PATH,
                                  parameters=params))
            page = [a for a in map(Attempt.from_json, items if isinstance(items, list) else []) if a is not None]
            attempts += [a for a in page if a.delivered_at >= cutoff]
            cursor = _next_cursor(headers.get("link"))
            if cursor is None or any(a.delivered_at < cutoff for a in page):
                return attempts
        log.warning("webhook redelivery: stopped listing after %d pages of deliveries; older failures in the "
                    "last %s are not looked at", self.policy.max_pages, self.policy.max_age)
        return attempts

    def redeliver_failed(self, seen: Seen) -> RedeliveryReport:
        """Redeliver the failed events of the window that the bot has not recorded (see the module)."""
        attempts = self.recent_attempts()
        by_guid: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in attempts:
            by_guid[attempt.guid].append(attempt)
        failed = [group for group in by_guid.values() if not any(a.succeeded for a in group)]
        # Events not yet retried first, then the oldest: one event failing again cannot starve the rest.
        failed.sort(key=lambda group: (len(group), min(a.delivered_at for a in group)))
        due: list[Attempt] = []
        exhausted = recorded = 0
        for group in failed:
            latest = max(group, key=lambda a: a.id)
            if len(group) >= self.policy.max_attempts:
                exhausted += 1
                log.warning("webhook delivery %s (%s) failed %d times, last with status %d: not redelivered again; "
                            "see the bot's log for why it was refused", latest.guid, _what(latest), len(group),
                            latest.status_code)
            elif seen(latest.guid):
                recorded += 1
            else:
                due.append(latest)
        chosen, deferred = due[:self.policy.max_redeliveries], len(due) - min(len(due), self.policy.max_redeliveries)
        redelivered = errors = 0
        for attempt in chosen:
            try:
                self._redeliver(attempt)
                redelivered += 1
            except GitHubError as exc:
                errors += 1
                log.error("webhook delivery %s (%s) could not be redelivered: %s", attempt.guid, _what(attempt), exc)
        report = RedeliveryReport(listed=len(attempts), failed=len(failed), redelivered=redelivered,
                                  already_recorded=recorded, exhausted=exhausted, deferred=deferred, errors=errors)
        if report.failed:
            log.info("webhook redelivery: %s", ", ".join(f"{k} {v}" for k, v in report.to_json().items() if v))
        return report

    def _redeliver(self, attempt: Attempt) -> None:
        self.clients.call(
            f"redelivering webhook delivery {attempt.guid} ({_what(attempt)})",
            lambda: self._integration.requester.requestJsonAndCheck(
                "POST", f"{DELIVERIES_PATH}/{attempt.id}/attempts"))
        log.info("asked GitHub to redeliver %s (%s), first failed with status %d", attempt.guid, _what(attempt),
                 attempt.status_code)


def webhook_redeliverer(settings: Settings, clients: GitHubClients | None, **options: Any) -> Redeliverer:
    """The redeliverer for these settings: the App's hook in App mode, else one that says why not."""
    if clients is None or settings.github_mode is None:
        return NoRedelivery("no GitHub credentials are configured")
    if clients.mode is not GitHubMode.APP:
        return NoRedelivery("KFP_BOT_GITHUB_TOKEN is set: only a GitHub App can list and redeliver its webhook's "
                            "deliveries (redeliver a repository webhook's failed deliveries from its settings page)")
    return AppHookDeliveries(settings, clients, **options)


def _next_cursor(link: str | None) -> str | None:
    match = _NEXT_LINK.search(link or "")
    if match is None:
        return None
    cursors = parse_qs(urlparse(match.group(1)).query).get("cursor")
    return cursors[0] if cursors else None


def _what(attempt: Attempt) -> str:
    return f"{attempt.event}.{attempt.action}" if attempt.action else attempt.event
