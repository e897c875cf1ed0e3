"""The `Reporter` port without GitHub credentials: structured log lines only.

In embedded mode the store already holds every run for the bot's page, so reporting means
leaving a trace people and log queries can follow: one line per run change, head summary,
PR summary, acknowledgement and reply, with the ids as fields (`extra`), never a payload.
"""

from __future__ import annotations

import logging

from handlers.models import RepoRef
from handlers.reports import HeadReport, Notice, PullReport, RunReport

log = logging.getLogger("kfp_bot.report")


class LogReporter:
    """`Reporter` that writes what GitHub would have shown to the log."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log

    def run_changed(self, report: RunReport) -> None:
        """One line per state change of a run, with the check title as the message."""
        run = report.run
        self.log.info("%s %s@%s: %s: %s", report.name, run.repo, run.sha[:12], run.state.value, report.title,
                      extra={"event": "run_changed", "run_id": run.id, "repo": run.repo, "pr": run.pr,
                             "sha": run.sha, "pipeline": run.pipeline, "state": run.state.value,
                             "url": run.url, "error": run.error})

    def head_summary(self, report: HeadReport) -> None:
        """What the aggregate `kfp-bot` check would say."""
        repo = report.repo.full_name
        self.log.info("%s %s@%s: %s", report.name, repo, report.sha[:12], report.title,
                      extra={"event": "head_summary", "repo": repo, "sha": report.sha,
                             "outcome": report.outcome.value, "runs": list(report.run_ids), "note": report.note})

    def pull_summary(self, report: PullReport) -> None:
        """The latest state of each pipeline of the PR, in one line."""
        repo = report.repo.full_name
        self.log.info("%s#%d: %s", repo, report.number, report.line,
                      extra={"event": "pull_summary", "repo": repo, "pr": report.number,
                             "runs": list(report.run_ids)})

    def notice(self, notice: Notice) -> None:
        """A neutral check, as one line with its title."""
        repo = notice.repo.full_name
        self.log.info("%s %s@%s: %s", notice.name, repo, notice.sha[:12], notice.title,
                      extra={"event": "notice", "repo": repo, "sha": notice.sha, "check": notice.name})

    def acknowledge(self, repo: RepoRef, comment_id: int, installation_id: int | None) -> None:
        """Note that a command was accepted."""
        self.log.info("%s: accepted command in comment %d", repo.full_name, comment_id,
                      extra={"event": "acknowledge", "repo": repo.full_name, "comment_id": comment_id})

    def reply(self, repo: RepoRef, number: int, body: str, installation_id: int | None) -> None:
        """The reply a command would have had, as the log message."""
        self.log.info("%s#%d: reply: %s", repo.full_name, number, body.strip(),
                      extra={"event": "reply", "repo": repo.full_name, "pr": number})
