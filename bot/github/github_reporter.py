"""The `Reporter` port on GitHub: check runs (App) or commit statuses (token), and one PR comment.

What a reviewer sees on a pull request is delivered from here; the words arrive rendered, in the
reports of `handlers.reports` (written by `handlers.messages`). Every remote object is found
again rather than duplicated: its id is kept in the store (`set_external`) and, when the store
has lost it, looked up on GitHub (check runs by name and external id, the PR comment by its
hidden marker) before anything is created, so redelivered events and restarts never add a second
check or comment. The same look-up follows a
create that GitHub answered with a 5xx or not at all (GitHub may have done it; the transport never
retries such a POST, see `bot.github.retry.WriteSafeRetry`): the comment by its marker (a reply
by its author and body), the check run by name, head sha and external id, the commit status by
context, state and description; only when none is found is it created again.

The states GitHub shows for each run state and head outcome: `bot.github.check_states`.

GitHub cannot reopen a completed check run, so each run gets its own check run (a later `/run`
of the same pipeline and commit creates a new one, which GitHub shows as the current one) and
the aggregate check is recreated when it must go from completed back to in progress.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from github.CheckRun import CheckRun
from github.IssueComment import IssueComment
from github.Repository import Repository

from bot.github import lookups
from bot.github.check_states import CHECK_STATES, HEAD_CHECK_STATES, HEAD_STATUS_STATES, STATUS_STATES
from bot.github.client import GitHubClients, GitHubError, GitHubMode
from handlers.context import UtcClock
from handlers.models import RepoRef
from handlers.ports.events import Clock
from handlers.ports.store import Store
from handlers.reports import HeadReport, Notice, PullReport, RunReport
from handlers.run_models import Run

log = logging.getLogger("kfp_bot.github")
T = TypeVar("T")
# A reply looked up after a lost answer was written at most this long before the request started.
_CLOCK_SKEW = timedelta(seconds=10)

# GitHub refuses a commit status description above 140 characters
# (https://docs.github.com/en/rest/commits/statuses).
MAX_STATUS_CHARS = 140
_LOCK_STRIPES = 64  # bounded: one lock per remote object would grow with every run
CHECK_SCOPE = "check_run"
CHECK_STATUS_SCOPE = "check_run_status"
COMMENT_SCOPE = "pr_comment"


def check_key(run: Run, name: str) -> str:
    """The store key (scope CHECK_SCOPE) of the id of check run `name` showing `run`."""
    return f"{run.repo}@{run.sha}/{name}/{run.id}"


class GitHubReporter:
    """`Reporter` on GitHub: checks or statuses per pipeline and head, one edited comment per PR."""

    def __init__(self, clients: GitHubClients, store: Store, mode: GitHubMode | str | None = None, *,
                 bot_login: str | None = None, reaction: str = "+1", clock: Clock | None = None) -> None:
        """`mode` defaults to the clients' (App → checks, token → statuses). With `bot_login`, a
        lost PR comment is only recognised when that account wrote it."""
        self.clients = clients
        self.store = store
        self.mode = GitHubMode(mode) if mode is not None else clients.mode
        self.bot_login = bot_login
        self.reaction = reaction
        self.clock = clock or UtcClock()
        self._locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        self.author = lookups.Authorship(bot_login, clients.app_id, self.mode is GitHubMode.APP)

    # -- Reporter --------------------------------------------------------------------------

    def run_changed(self, report: RunReport) -> None:
        """Show the run on its pipeline's check run (App) or commit status (token)."""
        run, name = report.run, report.name
        if self.mode is GitHubMode.TOKEN:
            if self._superseded(run):
                log.info("not reporting run %s of %s: a newer run of %s exists for %s", run.id, run.repo,
                         run.pipeline, run.sha[:12])
                return
            self._status(run.repo, run.installation_id, run.sha, name, STATUS_STATES[run.state],
                         report.description, report.url)
            return
        status, conclusion = CHECK_STATES[run.state]
        fields = {"status": status, "external_id": run.id, "started_at": lookups.utc(run.created_at),
                  "output": {"title": report.title, "summary": report.summary},
                  "actions": [dataclasses.asdict(button) for button in report.buttons]}
        if conclusion:
            fields.update(conclusion=conclusion, completed_at=lookups.utc(run.updated_at))
        if report.url:
            fields["details_url"] = report.url
        key = check_key(run, name)
        self._upsert_check(run.repo, run.installation_id, run.sha, name, key, fields,
                           find=lambda check: self.author.owns(check) and check.external_id == run.id,
                           may_create=lambda: not self._superseded(run))

    def head_summary(self, report: HeadReport) -> None:
        """The aggregate `kfp-bot` check (or status) of the head, which always concludes."""
        repo, sha, name, installation_id = report.repo, report.sha, report.name, report.installation_id
        if self.mode is GitHubMode.TOKEN:
            self._status(repo.full_name, installation_id, sha, name, HEAD_STATUS_STATES[report.outcome],
                         report.description, None)
            return
        status, conclusion = HEAD_CHECK_STATES[report.outcome]
        fields: dict[str, Any] = {"status": status, "external_id": f"{repo.full_name}@{sha}",
                                  "started_at": lookups.utc(report.started_at or self.clock.now()),
                                  "output": {"title": report.title, "summary": report.summary}}
        if conclusion:
            fields.update(conclusion=conclusion, completed_at=lookups.utc(report.finished_at or self.clock.now()))
        self._upsert_check(repo.full_name, installation_id, sha, name, f"{repo.full_name}@{sha}/{name}", fields,
                           find=self.author.owns, may_create=lambda: True)

    def pull_summary(self, report: PullReport) -> None:
        """The one bot comment of the PR: created once, then edited in place."""
        repo, number, installation_id, body = report.repo, report.number, report.installation_id, report.body
        key = f"{repo.full_name}#{number}"
        what = f"updating the kfp-bot comment on {key}"
        with self._lock(f"comment:{key}"):
            gh = self.clients.repo(repo.full_name, installation_id)
            stored = self.store.get_external(COMMENT_SCOPE, key)
            if stored and self._edit_comment(gh, int(stored), body, what):
                return
            found = self.clients.call(f"looking for the kfp-bot comment on {key}",
                                      lambda: lookups.summary_comment(gh, number, self.author))
            if found is not None and self._edit_comment(gh, found, body, what):
                self.store.set_external(COMMENT_SCOPE, key, str(found))
                return
            created = self._create_once(f"commenting on {key}",
                                        lambda: gh.get_issue(number).create_comment(body).id,
                                        lambda: lookups.summary_comment(gh, number, self.author))
            self.store.set_external(COMMENT_SCOPE, key, str(created))

    def notice(self, notice: Notice) -> None:
        """A completed check with a neutral conclusion (App); a success status saying it (token),
        since commit statuses have no neutral state."""
        repo, sha, name = notice.repo, notice.sha, notice.name
        if self.mode is GitHubMode.TOKEN:
            self._status(repo.full_name, notice.installation_id, sha, name, "success", notice.description, None)
            return
        now = lookups.utc(self.clock.now())
        fields: dict[str, Any] = {"status": "completed", "conclusion": "neutral",
                                  "external_id": f"{repo.full_name}@{sha}", "started_at": now, "completed_at": now,
                                  "output": {"title": notice.title, "summary": notice.summary}}
        self._upsert_check(repo.full_name, notice.installation_id, sha, name, f"{repo.full_name}@{sha}/{name}",
                           fields, find=self.author.owns, may_create=lambda: True)

    def acknowledge(self, repo: RepoRef, comment_id: int, installation_id: int | None) -> None:
        """React to the command comment so its author sees at once that it was accepted."""
        gh = self.clients.repo(repo.full_name, installation_id)
        # GitHub answers 200 with the existing reaction, so the transport may repeat this POST.
        self.clients.call(f"reacting to comment {comment_id} on {repo.full_name}",
                          lambda: _comment(gh, comment_id).create_reaction(self.reaction))

    def reply(self, repo: RepoRef, number: int, body: str, installation_id: int | None) -> None:
        """A new comment on the PR (refusals, errors, plans, help)."""
        gh = self.clients.repo(repo.full_name, installation_id)
        since = datetime.now(UTC) - _CLOCK_SKEW
        self._create_once(f"replying on {repo.full_name}#{number}",
                          lambda: gh.get_issue(number).create_comment(body).id,
                          lambda: lookups.reply(gh, number, body, since, self.author))

    # -- check runs ------------------------------------------------------------------------

    def _upsert_check(self, repo_name: str, installation_id: int | None, sha: str, name: str, key: str,
                      fields: dict[str, Any], *, find: Callable[[CheckRun], bool],
                      may_create: Callable[[], bool]) -> None:
        where = f"check run '{name}' on {repo_name}@{sha[:12]}"
        with self._lock(key):
            gh = self.clients.repo(repo_name, installation_id)
            stored = self.store.get_external(CHECK_SCOPE, key)
            check_id = int(stored) if stored else None
            last_status = self.store.get_external(CHECK_STATUS_SCOPE, key)
            if check_id is None:
                found = self.clients.call(f"looking for {where}", lambda: lookups.check_run(gh, sha, name, find))
                if found is not None:
                    check_id, last_status = found.id, found.status
            # A completed check run cannot be reopened on GitHub: a new one takes its place.
            reopening = last_status == "completed" and fields["status"] != "completed"
            if check_id is not None and not reopening:
                try:
                    self.clients.call(f"updating {where}", lambda: gh.get_check_run(check_id).edit(**fields))
                    self._remember_check(key, check_id, fields["status"])
                    return
                except GitHubError as exc:
                    if exc.status != 404:
                        raise
            if not may_create():
                log.info("not creating %s: a newer run of the pipeline exists", where)
                return
            known = check_id or 0  # a check run replacing a completed one is newer than it

            def created_already(check: CheckRun) -> bool:
                return find(check) and check.external_id == fields["external_id"] and check.id > known

            created = self._create_once(
                f"creating {where}", lambda: gh.create_check_run(name=name, head_sha=sha, **fields).id,
                lambda: _found_id(lookups.check_run(gh, sha, name, created_already)))
            self._remember_check(key, created, fields["status"])

    def _remember_check(self, key: str, check_id: int, status: str) -> None:
        self.store.set_external(CHECK_SCOPE, key, str(check_id))
        self.store.set_external(CHECK_STATUS_SCOPE, key, status)

    # -- statuses, comments ----------------------------------------------------------------

    def _status(self, repo_name: str, installation_id: int | None, sha: str, context: str, state: str,
                description: str, target_url: str | None) -> None:
        gh = self.clients.repo(repo_name, installation_id)
        extra = {"target_url": target_url} if target_url else {}
        if len(description) > MAX_STATUS_CHARS:  # rendered to fit; masking a secret may lengthen it
            description = description[:MAX_STATUS_CHARS - 1] + "…"

        self._create_once(f"setting commit status '{context}' on {repo_name}@{sha[:12]}",
                          lambda: gh.get_commit(sha).create_status(state=state, description=description,
                                                                   context=context, **extra),
                          lambda: lookups.status(gh, sha, context, state, description))

    def _create_once(self, what: str, create: Callable[[], T], find: Callable[[], T | None]) -> T:
        """Create a remote object; when GitHub answered a 5xx or nothing, it may exist already:
        look it up (`find`) and create again only when it is not there."""
        try:
            return self.clients.call(what, create)
        except GitHubError as exc:
            if not exc.maybe_done:
                raise
            log.warning("%s: %s; looking it up before trying again", what, exc)
        found = self.clients.call(f"looking whether GitHub did {what}", find)
        if found is not None:
            log.info("%s: GitHub had done it", what)
            return found
        return self.clients.call(what, create)

    def _edit_comment(self, gh: Repository, comment_id: int, body: str, what: str) -> bool:
        """Edit a known comment; False when it is gone (deleted by someone)."""
        try:
            self.clients.call(what, lambda: _comment(gh, comment_id).edit(body))
            return True
        except GitHubError as exc:
            if exc.status == 404:
                return False
            raise

    # -- helpers ---------------------------------------------------------------------------

    def _superseded(self, run: Run) -> bool:
        """True when the store has a newer run of the same pipeline and commit (that one is shown)."""
        others = self.store.list_runs(repo=run.repo, sha=run.sha, pipeline=run.pipeline, limit=20)
        return any(other.id != run.id and other.created_at > run.created_at for other in others)

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        """One writer per remote object in this process, so concurrent workers create it once."""
        with self._locks[zlib.crc32(key.encode()) % _LOCK_STRIPES]:
            yield


def _found_id(check: CheckRun | None) -> int | None:
    return check.id if check is not None else None


def _comment(gh: Repository, comment_id: int) -> IssueComment:
    """An issue comment by id without fetching it first (the client is lazy)."""
    return IssueComment(gh.requester, url=f"{gh.url}/issues/comments/{comment_id}")
