"""Answers to commands: `/help`, `/plan`, `/run`, `/ok-to-run`, `/cancel`, refusals and errors, for
comments and for the check buttons that act like them (`handlers/templates/command_*.md.j2`,
`plan_reply`, `run_accepted`, `approved`, `cancel_reply`, `internal_error`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handlers.messages.checks import HEAD_CHECK_NAME, check_name
from handlers.messages.pipeline_diff import diff_markdown
from handlers.messages.rendering import (
    MAX_MARKDOWN_CHARS,
    NO_PAGES,
    latest_runs,
    pipeline_plan_view,
    render,
    run_view,
)
from handlers.reports import RunPages
from handlers.run_models import Run
from pipeline_registry.spec_diff import PipelineDiff


def internal_error(reason: str) -> str:
    """Reply when the bot itself failed while handling a comment."""
    return render("internal_error.md.j2", MAX_MARKDOWN_CHARS, reason=reason)


def check_request_text(pipeline: str | None, action: str) -> str:
    """How a check's Re-run or button press is named in replies (it has no comment text)."""
    what = check_name(pipeline) if pipeline else HEAD_CHECK_NAME
    return f"{action} of the check {what}"


def command_help(pipelines: Sequence[str]) -> str:
    """Reply to `/help`: every command and the pipelines this repository has."""
    return render("command_help.md.j2", MAX_MARKDOWN_CHARS, pipelines=sorted(pipelines))


def command_refused(user: str, reason: str) -> str:
    """Reply to a command the author may not give (no write access, fork without approval...)."""
    return render("command_refused.md.j2", MAX_MARKDOWN_CHARS, user=user, reason=reason)


def command_error(command_text: str, problems: Sequence[str], valid: Sequence[str],
                  *, valid_label: str = "Valid choices") -> str:
    """Reply to a malformed command: what is wrong with it, and what would be valid."""
    return render("command_error.md.j2", MAX_MARKDOWN_CHARS, command=command_text.strip(),
                   problems=list(problems), valid=list(valid), valid_label=valid_label)


def plan_reply(plan: Mapping[str, Any], diffs: Sequence[PipelineDiff] = ()) -> str:
    """Reply to `/plan`: the affected pipelines of a `Plan.to_json()`-shaped mapping, and why, with
    each one's pipeline diff against the merge base collapsed (in the room the rest leaves)."""
    values = {"pipelines": [pipeline_plan_view(p) for p in plan.get("pipelines") or ()],
              "base": str(plan.get("base") or ""), "head": str(plan.get("head") or "")}
    reply = render("plan_reply.md.j2", MAX_MARKDOWN_CHARS, diffs="", **values)
    collapsed = diff_markdown(diffs, collapsed=True, limit=MAX_MARKDOWN_CHARS - len(reply) - 2) if diffs else ""
    return render("plan_reply.md.j2", MAX_MARKDOWN_CHARS, diffs=collapsed, **values) if collapsed else reply


def run_accepted(user: str, runs: Sequence[Run], *, head_now: str | None = None,
                 pages: RunPages = NO_PAGES) -> str:
    """Reply to `/run` and `/run all`: which runs started, with which overrides, where to follow them
    (each run's page, when the bot has a public address).

    `head_now`: the PR's head moved after the comment; the runs stay on the commented head."""
    views = [run_view(r, pages=pages) for r in latest_runs(runs)]
    return render("run_accepted.md.j2", MAX_MARKDOWN_CHARS, user=user, runs=views, head_now=head_now,
                   bound=views[0]["sha"] if views else "")


def approved(user: str, sha: str, pipelines: Sequence[str], *, head_now: str | None = None) -> str:
    """Reply to `/ok-to-run`: the approved commit and the pipelines now running (and that a newer
    head, `head_now`, is not approved)."""
    return render("approved.md.j2", MAX_MARKDOWN_CHARS, user=user, sha=sha, pipelines=sorted(pipelines),
                   head_now=head_now)


def cancel_reply(user: str, cancelled: Sequence[Run], name: str | None = None) -> str:
    """Reply to `/cancel [NAME]`: the runs that were stopped, or that nothing was running."""
    return render("cancel_reply.md.j2", MAX_MARKDOWN_CHARS, user=user, name=name,
                   runs=[run_view(r) for r in latest_runs(cancelled)])
