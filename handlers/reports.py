"""What the `Reporter` port carries: typed reports holding text rendered in the core.

The handlers render every word (`handlers.messages`) and hand the adapters a report: the texts
plus what an adapter needs to deliver them (the check's name, the run's state, links, buttons,
times). Adapters deliver and never render, so GitHub, the log and any future reporter show the
same words; the mapping of a state to GitHub's check conclusion or status stays the adapter's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from handlers.models import RepoRef
from handlers.run_models import Run


@dataclass(frozen=True)
class RunPages:
    """Where each run's own page is: `/runs/<id>` under the bot's public address
    (KFP_BOT_PUBLIC_URL). Checks, commit statuses, the PR comment and Slack link to it, since the
    page shows everything about a run (timeline, logs, results, diff) and links on to the backend.
    Without a public address the bot cannot know where it is reached: no page is linked, and the
    backend's own link (Vertex AI console, KFP UI) is shown instead."""

    base: str | None = None

    def url(self, run_id: str) -> str | None:
        """The page of run `run_id`, or None when the bot has no public address."""
        if not self.base:
            return None
        return f"{self.base.rstrip('/')}/runs/{quote(run_id, safe='')}"


# The hidden first line of the bot's PR comment, by which an adapter finds the comment again.
SUMMARY_MARKER = "<!-- kfp-bot:summary -->"


class HeadOutcome(enum.Enum):
    """What the runs of one head commit add up to (the aggregate `kfp-bot` check)."""

    NONE_AFFECTED = "none-affected"
    ACTIVE = "active"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_RUN = "not-run"
    SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class CheckButton:
    """A button on a check run: pressing it sends `check_run.requested_action` with `identifier`."""

    label: str
    description: str
    identifier: str


@dataclass(frozen=True)
class RunReport:
    """One run's check (or commit status): `run` says where and in which state, the rest is text."""

    run: Run
    name: str
    title: str
    summary: str
    description: str
    """The ≤ 140 character form of the title, for a commit status."""
    url: str | None = None
    """A web link to the run (never a file path)."""
    buttons: tuple[CheckButton, ...] = ()
    """The check's buttons; none removes those it had."""


@dataclass(frozen=True)
class HeadReport:
    """The aggregate check of a head commit, which always concludes."""

    repo: RepoRef
    sha: str
    installation_id: int | None
    name: str
    outcome: HeadOutcome
    title: str
    summary: str
    description: str
    note: str = ""
    run_ids: tuple[str, ...] = ()
    started_at: datetime | None = None
    """When the oldest of its runs was created (None: no runs)."""
    finished_at: datetime | None = None
    """When the newest of its runs last changed (None: no runs)."""


@dataclass(frozen=True)
class PullReport:
    """The one bot comment of a pull request (`body` starts with `SUMMARY_MARKER`)."""

    repo: RepoRef
    number: int
    installation_id: int | None
    body: str
    line: str
    """Each pipeline's latest state in one line, for a log."""
    run_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notice:
    """A neutral, completed check on a commit (e.g. trusted settings changed by a pull request)."""

    repo: RepoRef
    sha: str
    installation_id: int | None
    name: str
    title: str
    summary: str
    description: str
    """The ≤ 140 character form of the title, for a commit status."""
