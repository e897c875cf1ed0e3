"""The `Reporter` port without GitHub credentials: structured log lines only.

In embedded mode the store already holds every run for the bot's page, so reporting means
leaving a trace people and log queries can follow: one line per run change, head summary,
PR summary, acknowledgement and reply, with the ids as fields (`extra`), never a payload.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from handlers import messages
from handlers.messages import HeadNote
from handlers.models import RepoRef
from handlers.run_models import Run

log = logging.getLogger("kfp_bot.report")


class LogReporter:
    """`Reporter` that writes what GitHub would have shown to the log."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log

    def run_changed(self, run: Run) -> None:
        """One line per state change of a run, with the check title as the message."""
        self.log.info("%s %s@%s: %s: %s", messages.check_name(run.pipeline), run.repo, run.sha[:12],
                      run.state.value, messages.check_title(run),
                      extra={"event": "run_changed", "run_id": run.id, "repo": run.repo, "pr": run.pr,
                             "sha": run.sha, "pipeline": run.pipeline, "state": run.state.value,
                             "url": run.url, "error": run.error})

    def head_summary(self, repo: RepoRef, sha: str, runs: Sequence[Run], note: HeadNote | str,
                     installation_id: int | None) -> None:
        """What the aggregate `kfp-bot` check would say."""
        outcome = messages.head_outcome(runs, note)
        self.log.info("%s %s@%s: %s", messages.HEAD_CHECK_NAME, repo.full_name, sha[:12],
                      messages.head_title(runs, note),
                      extra={"event": "head_summary", "repo": repo.full_name, "sha": sha,
                             "outcome": outcome.value, "runs": [r.id for r in runs], "note": messages.as_note(note).text})

    def pull_summary(self, repo: RepoRef, number: int, runs: Sequence[Run],
                     installation_id: int | None) -> None:
        """The latest state of each pipeline of the PR, in one line."""
        latest = messages.latest_runs(runs)
        states = ", ".join(f"{r.pipeline}={r.state.value}" for r in latest) or "no pipelines affected"
        self.log.info("%s#%d: %s", repo.full_name, number, states,
                      extra={"event": "pull_summary", "repo": repo.full_name, "pr": number,
                             "runs": [r.id for r in latest]})

    def notice(self, repo: RepoRef, sha: str, name: str, title: str, summary: str,
               installation_id: int | None) -> None:
        """A neutral check, as one line with its title."""
        self.log.info("%s %s@%s: %s", name, repo.full_name, sha[:12], title,
                      extra={"event": "notice", "repo": repo.full_name, "sha": sha, "check": name})

    def acknowledge(self, repo: RepoRef, comment_id: int, installation_id: int | None) -> None:
        """Note that a command was accepted."""
        self.log.info("%s: accepted command in comment %d", repo.full_name, comment_id,
                      extra={"event": "acknowledge", "repo": repo.full_name, "comment_id": comment_id})

    def reply(self, repo: RepoRef, number: int, body: str, installation_id: int | None) -> None:
        """The reply a command would have had, as the log message."""
        self.log.info("%s#%d: reply: %s", repo.full_name, number, body.strip(),
                      extra={"event": "reply", "repo": repo.full_name, "pr": number})
