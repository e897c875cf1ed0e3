"""Finding the bot's own objects on GitHub again: the PR comment, a reply, a check run, a status.

The reporter (`bot.github.github_reporter`) looks an object up before creating it whenever it cannot
be sure it does not exist: the store lost its id, or GitHub answered a create with a 5xx or not
at all (GitHub may have done it). Only objects this bot wrote count (`Authorship`), so a comment
quoting the marker or another App's check of the same name is never taken over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from github.CheckRun import CheckRun
from github.IssueComment import IssueComment
from github.Repository import Repository

from handlers.reports import SUMMARY_MARKER


@dataclass(frozen=True)
class Authorship:
    """Who the bot is on GitHub: its login (`bot_login`) and, in App mode, its App id."""

    bot_login: str | None
    app_id: int | None
    app_mode: bool

    def wrote(self, comment: IssueComment) -> bool:
        """Written by `bot_login` and, in App mode, through this App."""
        if self.bot_login and comment.user.login.lower() != self.bot_login.lower():
            return False
        if self.app_mode and self.app_id is not None:
            app = comment.performed_via_github_app
            if app is None or app.id != self.app_id:
                return False
        return True

    def owns(self, check: CheckRun) -> bool:
        """A check run this App wrote (another App may use the same name)."""
        return self.app_id is None or check.app is None or check.app.id == self.app_id


def summary_comment(gh: Repository, number: int, author: Authorship) -> int | None:
    """The bot's own summary comment of PR `number`: it starts with the hidden marker."""
    for comment in gh.get_issue(number).get_comments():
        if (comment.body or "").lstrip().startswith(SUMMARY_MARKER) and author.wrote(comment):
            return comment.id
    return None


def reply(gh: Repository, number: int, body: str, since: datetime, author: Authorship) -> int | None:
    """A reply with exactly `body` by the bot, written since `since` (replies carry no marker)."""
    for comment in gh.get_issue(number).get_comments(since=utc(since)):
        if comment.body == body and author.wrote(comment):
            return comment.id
    return None


def check_run(gh: Repository, sha: str, name: str, match: Callable[[CheckRun], bool]) -> CheckRun | None:
    """The newest check run `name` on `sha` that `match`es."""
    found = [check for check in gh.get_commit(sha).get_check_runs(check_name=name, filter="all")
             if check.name == name and match(check)]
    return max(found, key=lambda check: check.id, default=None)


def status(gh: Repository, sha: str, context: str, state: str, description: str) -> int | None:
    """The id of the newest status `context` on `sha` when it already says `state` and `description`."""
    newest = next((s for s in gh.get_commit(sha).get_statuses() if s.context == context), None)
    if newest is not None and (newest.state, newest.description) == (state, description):
        return newest.id
    return None


def utc(moment: datetime) -> datetime:
    """PyGithub writes datetimes as UTC without converting: convert first."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
