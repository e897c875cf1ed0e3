"""What a handler gets besides its event: ports and the bot's policy.

Handlers are plain functions of (event, context). The context is built once by `bot/` and
holds adapters behind the `handlers.ports` protocols, so handlers never construct clients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from handlers.ports import (Builder, Bus, Chat, Compiler, Notifications, Permissions, PullRequests, Reporter,
                            Runner, Schedules, Source, Store, TemplateStore)


class UtcClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Policy:
    """Who may do what, and which repositories may be cloned."""

    allowed_users: tuple[str, ...] = ()
    allow_local_repos: bool = False
    github_host: str = "github.com"
    bot_login: str | None = None


@dataclass
class HandlerContext:
    """Ports and policy for handlers; one per running bot."""

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
    notifications: Notifications | None = None
    chat: Chat | None = None
    templates: TemplateStore | None = None
    schedules: Schedules | None = None
    clock: UtcClock = field(default_factory=UtcClock)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("kfp_bot.handlers"))
