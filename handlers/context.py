"""What a handler gets besides its event: ports and the bot's policy.

Handlers are plain functions of (event, context). The context is built once by `bot/` and
holds adapters behind the `handlers.ports` protocols, so handlers never construct clients.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from handlers.ports.build import Builder, Compiler, PipelineDiffs
from handlers.ports.chat import Chat
from handlers.ports.code_host import Permissions, PullRequests, Reporter, Source
from handlers.ports.events import Bus
from handlers.ports.run import Runner, Schedules, TemplateStore
from handlers.ports.store import Store
from handlers.reports import RunPages
from handlers.targets import ByTarget
from pipeline_registry.limits import RunLimits


class UtcClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    """Who may do what, which repositories may be cloned, and the caps on trusted settings."""

    allowed_users: tuple[str, ...] = ()
    allow_local_repos: bool = False
    github_host: str = "github.com"
    bot_login: str | None = None
    # Service accounts a settings.yaml `run.service_account` may name (KFP_BOT_RUN_SERVICE_ACCOUNTS).
    service_accounts: tuple[str, ...] = ()
    # The most any repository's `limits:` may allow (KFP_BOT_MAX_CONCURRENT_RUNS, ...).
    limits_ceiling: RunLimits = field(default_factory=RunLimits)


@dataclass(frozen=True)
class HandlerContext:
    """Ports and policy for handlers; one per running bot, built in one pass by `bot.wiring` and
    never changed afterwards (a test that needs another port builds the bot with it)."""

    store: Store
    bus: Bus
    source: Source
    builder: Builder
    compiler: Compiler
    runner: Runner
    reporter: Reporter
    permissions: Permissions
    pulls: PullRequests
    work_dir: Path
    policy: Policy = field(default_factory=Policy)
    chat: Chat | None = None
    # What a change does to each compiled pipeline (check summaries, the PR comment, /plan);
    # None: not wired, and the check says so.
    diffs: PipelineDiffs | None = None
    # Chosen by a pipeline's target (`handlers.targets`); none by default.
    templates: ByTarget[TemplateStore] = field(default_factory=ByTarget)
    schedules: ByTarget[Schedules] = field(default_factory=ByTarget)
    clock: UtcClock = field(default_factory=UtcClock)
    # Where the bot shows each run (KFP_BOT_PUBLIC_URL); checks, the PR comment and Slack link it.
    pages: RunPages = field(default_factory=RunPages)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("kfp_bot.handlers"))


# Where the transport cannot tell (Pub/Sub push: None), a step must assume an earlier attempt may
# have stopped halfway and resume it; the outbox knows, and says so per event (True or False).
_RESUMED: ContextVar[bool | None] = ContextVar("kfp_bot_step_resumed", default=None)


def step_resumed() -> bool:
    """True when the event being handled may have been handled halfway before by an owner that
    stopped (so its step must be resumed), False when this is its first attempt (so a run
    already past the step belongs to another event, and the step does nothing)."""
    return _RESUMED.get() is not False


def step_taken_over() -> bool:
    """True only when the event is known to be a takeover: its previous owner's lease expired."""
    return _RESUMED.get() is True


@contextmanager
def handling(*, resumed: bool) -> Iterator[None]:
    """Handle one event as a first attempt (`resumed=False`) or a takeover (`resumed=True`)."""
    token = _RESUMED.set(resumed)
    try:
        yield
    finally:
        _RESUMED.reset(token)
