"""The code host's ports (GitHub): checkouts of the commits, who may run, pull request
look-ups for commands, and the reporter that shows runs where people look.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from handlers.models import PullRequestRef, RepoRef
from handlers.reports import HeadReport, Notice, PullReport, RunReport


class Source(Protocol):
    """Git checkouts of the commits the bot works on."""

    def checkout(self, repo: RepoRef, clone_url: str, sha: str, *, base_sha: str | None = None) -> Path:
        """A directory holding the tree at `sha`, a git work tree in which `base_sha` also exists."""

    def branch_head(self, repo: RepoRef, clone_url: str, branch: str) -> str:
        """The commit `branch` points at now (fetched): where trusted settings are read from."""


class Reporter(Protocol):
    """Shows runs where people look: checks, statuses, the PR comment (GitHub), or the log.

    It delivers what the handlers rendered (`handlers.reports`); it never chooses words."""

    def run_changed(self, report: RunReport) -> None:
        """The per-pipeline check (or commit status) of a run."""

    def head_summary(self, report: HeadReport) -> None:
        """The aggregate `kfp-bot` check of a head commit, which always concludes."""

    def pull_summary(self, report: PullReport) -> None:
        """The one bot comment of a PR, created once and edited in place."""

    def acknowledge(self, repo: RepoRef, comment_id: int, installation_id: int | None) -> None:
        """React to an accepted command."""

    def notice(self, notice: Notice) -> None:
        """A neutral, completed check on a commit (e.g. trusted settings changed by a PR)."""

    def reply(self, repo: RepoRef, number: int, body: str, installation_id: int | None) -> None:
        """Answer a command on the PR (refusals, errors, plans, help): `body` is rendered markdown."""


class Permissions(Protocol):
    """Who may run pipelines."""

    def can_write(self, repo: RepoRef, user: str, installation_id: int | None) -> bool:
        """True when `user` has write (or higher) permission on `repo`."""


class PullRequests(Protocol):
    """Pull request look-ups for commands (GitHub, or the store in embedded mode)."""

    def get_pull(self, repo: RepoRef, number: int, installation_id: int | None) -> PullRequestRef | None:
        """The pull request as it is now (head commit, clone URL), or None."""
