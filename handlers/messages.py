"""Every text kfp-bot shows to people: check titles and summaries, the PR comment, command replies.

The words live in Jinja2 templates beside this module (`handlers/templates/`), so wording is
changed in one place and reviewed as text; the functions here are data in, text out (runs and
plain values, never client objects) so the same message renders identically for GitHub, the log
and, later, Slack. Anything a user typed (parameter values, names, error text) is escaped for the
markdown context it lands in, so a `|` or a backtick cannot break a table or a code block.
"""

from __future__ import annotations

import enum
import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from handlers.models import Notification
from handlers.run_models import PlanComponent, PlanReason, Run, RunPlan, RunState, Trigger

HEAD_CHECK_NAME = "kfp-bot"
# The neutral check a head gets when it changes trusted settings (runs keep the list in their plan).
TRUSTED_CHECK_NAME = "kfp-bot / trusted settings"
SUMMARY_MARKER = "<!-- kfp-bot:summary -->"
# GitHub refuses comments above 65,536 characters and statuses above 140
# (https://docs.github.com/en/rest/issues/comments, https://docs.github.com/en/rest/commits/statuses).
MAX_MARKDOWN_CHARS = 65_000
# A check run's output summary and text: 65,535 UTF-8 *bytes* (GitHub: "summary exceeds a maximum
# bytesize of 65535"; https://docs.github.com/en/rest/checks/runs). The templates carry emoji.
MAX_CHECK_OUTPUT_BYTES = 65_535
MAX_STATUS_CHARS = 140
MAX_TITLE_CHARS = 250
# The end of a long error (a traceback's last lines) is what says what went wrong.
MAX_ERROR_CHARS = 20_000


@dataclass(frozen=True)
class HeadNote:
    """What the aggregate check says besides its runs; `failed` concludes it as a failure."""

    text: str = ""
    failed: bool = False

    def __bool__(self) -> bool:
        return bool(self.text.strip())


NoteLike = str | HeadNote | None


def as_note(note: NoteLike) -> HeadNote:
    """A `HeadNote` from a plain string (informational), a note, or nothing."""
    if isinstance(note, HeadNote):
        return note
    return HeadNote(text=note or "")


def plan_failed(reason: str) -> HeadNote:
    """The head could not be planned (fetch failed, bad `.kfp-bot.yaml`, ...): a failing note."""
    return HeadNote(_render("plan_failed.md.j2", MAX_ERROR_CHARS, reason=reason), failed=True)


def head_note(*, deleted: Sequence[str] = ()) -> HeadNote:
    """Informational note of a planned head: pipelines the change deleted."""
    return HeadNote(_render("head_note.md.j2", MAX_ERROR_CHARS, deleted=list(deleted)))


def internal_error(reason: str) -> str:
    """Reply when the bot itself failed while handling a comment."""
    return _render("internal_error.md.j2", MAX_MARKDOWN_CHARS, reason=reason)


class HeadOutcome(enum.Enum):
    """What the runs of one head commit add up to (the aggregate `kfp-bot` check)."""

    NONE_AFFECTED = "none-affected"
    ACTIVE = "active"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_RUN = "not-run"
    SUCCEEDED = "succeeded"


def head_outcome(runs: Sequence[Run], note: NoteLike = "") -> HeadOutcome:
    """The outcome of a head commit's latest runs, first match wins.

    | runs                                  | outcome        |
    |---------------------------------------|----------------|
    | none, and no note                      | NONE_AFFECTED  |
    | none, with a note (why nothing ran)    | NOT_RUN        |
    | any still queued/building/.../running  | ACTIVE         |
    | any failed or error                    | FAILED         |
    | any cancelled                          | CANCELLED      |
    | all skipped                            | NOT_RUN        |
    | otherwise (succeeded, maybe skipped)   | SUCCEEDED      |
    """
    note = as_note(note)
    if note.failed:
        return HeadOutcome.FAILED
    latest = latest_runs(runs)
    if not latest:
        return HeadOutcome.NOT_RUN if note else HeadOutcome.NONE_AFFECTED
    states = {r.state for r in latest}
    if any(not s.terminal for s in states):
        return HeadOutcome.ACTIVE
    if states & {RunState.FAILED, RunState.ERROR}:
        return HeadOutcome.FAILED
    if RunState.CANCELLED in states:
        return HeadOutcome.CANCELLED
    if states == {RunState.SKIPPED}:
        return HeadOutcome.NOT_RUN
    return HeadOutcome.SUCCEEDED


def latest_runs(runs: Iterable[Run]) -> list[Run]:
    """The newest run of each pipeline, sorted by pipeline name."""
    newest: dict[str, Run] = {}
    for run in runs:
        seen = newest.get(run.pipeline)
        if seen is None or (run.created_at, run.updated_at) > (seen.created_at, seen.updated_at):
            newest[run.pipeline] = run
    return [newest[name] for name in sorted(newest)]


def check_name(pipeline: str) -> str:
    """The name of a pipeline's check run and commit status context."""
    return f"{HEAD_CHECK_NAME} / {pipeline}"


# Buttons on a pipeline's check run (GitHub App only). GitHub allows at most 3 per check, each with
# an identifier and a label of at most 20 characters and a description of at most 40
# (https://docs.github.com/en/rest/checks/runs). Pressing one sends `check_run.requested_action`
# with the identifier (handlers/check_run.py); the identifiers are `CheckAction` values.
RUN_ACTION = {"label": "Run", "description": "Run this pipeline at this commit", "identifier": "run"}
CANCEL_ACTION = {"label": "Cancel", "description": "Cancel this pipeline run", "identifier": "cancel"}


def check_actions(run: Run) -> list[dict[str, str]]:
    """The buttons of a run's check: Run on a skipped pipeline, Cancel on an unfinished one, else none
    (an empty list removes the buttons a check had)."""
    if run.state is RunState.SKIPPED:
        return [dict(RUN_ACTION)]
    if not run.state.terminal:
        return [dict(CANCEL_ACTION)]
    return []


def check_request_text(pipeline: str | None, action: str) -> str:
    """How a check's Re-run or button press is named in replies (it has no comment text)."""
    what = check_name(pipeline) if pipeline else HEAD_CHECK_NAME
    return f"{action} of the check {what}"


def reproduce_command(run: Run) -> str:
    """The `kfp-bot run` command that runs the same pipeline with the same overrides locally."""
    words = ["kfp-bot", "run", shlex.quote(run.pipeline), "--repo", "."]
    for key, value in run.overrides.items():
        words += ["-p", shlex.quote(f"{key}={value}")]
    return " ".join(words)


def check_title(run: Run) -> str:
    """One line for the check run title: state, and what it is doing or why it stopped."""
    return _clip(_macro("short.j2", "check_title", run=_run_view(run)), MAX_TITLE_CHARS)


def check_summary(run: Run) -> str:
    """Markdown for a pipeline's check: why affected, images, parameters, state, reproduce."""
    return fit_bytes(_render("check_summary.md.j2", MAX_MARKDOWN_CHARS, run=_run_view(run)),
                     MAX_CHECK_OUTPUT_BYTES)


def status_description(run: Run) -> str:
    """The ≤ 140 character description of a pipeline's commit status (token mode)."""
    return _clip(_macro("short.j2", "status_description", run=_run_view(run)), MAX_STATUS_CHARS)


def status_text(text: str) -> str:
    """Any text clipped to a commit status description's 140 characters."""
    return _clip(text, MAX_STATUS_CHARS)


def head_title(runs: Sequence[Run], note: NoteLike = "") -> str:
    """One line for the aggregate `kfp-bot` check: how many pipelines and where they are."""
    return _clip(_macro("short.j2", "head_title", **_head_view(runs, note)), MAX_TITLE_CHARS)


def head_description(runs: Sequence[Run], note: NoteLike = "") -> str:
    """The ≤ 140 character description of the aggregate `kfp-bot` commit status."""
    return _clip(_macro("short.j2", "head_title", **_head_view(runs, note)), MAX_STATUS_CHARS)


def head_summary(runs: Sequence[Run], note: NoteLike = "") -> str:
    """Markdown for the aggregate check: a table of every affected pipeline, or why there is none."""
    return fit_bytes(_render("head_summary.md.j2", MAX_MARKDOWN_CHARS, **_head_view(runs, note)),
                     MAX_CHECK_OUTPUT_BYTES)


def pull_comment(runs: Sequence[Run]) -> str:
    """The one bot comment of a PR: hidden marker first, the latest run of each pipeline, how to
    reproduce, and a line when the newest head changes trusted settings (kept in the runs' plans)."""
    latest = latest_runs(runs)
    views = [_run_view(r) for r in latest]
    commands = list(dict.fromkeys(v["reproduce"] for v in views))
    newest = max(latest, key=lambda r: r.created_at).sha if latest else None
    trusted = {(c.file, c.key): c for r in latest if r.sha == newest for c in r.plan.trusted_changes}
    line = _render("trusted_line.md.j2", MAX_MARKDOWN_CHARS, changes=list(trusted.values()),
                   check=TRUSTED_CHECK_NAME).strip()
    body = _render("pull_comment.md.j2", MAX_MARKDOWN_CHARS - len(SUMMARY_MARKER) - len(line) - 2,
                   runs=views, commands=commands, trusted_line=line)
    return f"{SUMMARY_MARKER}\n{body}"


def trusted_settings_title(changes: Sequence[Mapping[str, Any]]) -> str:
    """Title of the neutral check on a head that changes trusted settings."""
    count = len(changes)
    return _clip(f"{count} trusted setting{'s' if count != 1 else ''} changed: "
                 "takes effect after merge", MAX_TITLE_CHARS)


def trusted_settings_summary(changes: Sequence[Mapping[str, Any]], branch: str,
                             allowed_accounts: Sequence[str]) -> str:
    """Summary of that check: each changed key with its proposed and effective value, and service
    accounts the bot will refuse (`changes` are `TrustedChange.to_json()` mappings)."""
    rows = [{"file": c["file"], "key": c["key"], "proposed": _shown_setting(c.get("proposed")),
             "in_effect": _shown_setting(c.get("in_effect"))} for c in changes]
    refused = [{"file": c["file"], "account": c["proposed"]} for c in changes
               if c["key"] == "run.service_account" and c.get("proposed")
               and c["proposed"] not in allowed_accounts]
    return _render("trusted_settings.md.j2", MAX_MARKDOWN_CHARS, changes=rows, branch=branch,
                   refused=refused, allowed=list(allowed_accounts))


def _shown_setting(value: Any) -> str:
    return "not set" if value is None else _code(format_value(value))


def command_help(pipelines: Sequence[str]) -> str:
    """Reply to `/help`: every command and the pipelines this repository has."""
    return _render("command_help.md.j2", MAX_MARKDOWN_CHARS, pipelines=sorted(pipelines))


def command_refused(user: str, reason: str) -> str:
    """Reply to a command the author may not give (no write access, fork without approval...)."""
    return _render("command_refused.md.j2", MAX_MARKDOWN_CHARS, user=user, reason=reason)


def command_error(command_text: str, problems: Sequence[str], valid: Sequence[str],
                  *, valid_label: str = "Valid choices") -> str:
    """Reply to a malformed command: what is wrong with it, and what would be valid."""
    return _render("command_error.md.j2", MAX_MARKDOWN_CHARS, command=command_text.strip(),
                   problems=list(problems), valid=list(valid), valid_label=valid_label)


def plan_reply(plan: Mapping[str, Any]) -> str:
    """Reply to `/plan`: the affected pipelines of a `Plan.to_json()`-shaped mapping, and why."""
    pipelines = [_pipeline_plan_view(p) for p in plan.get("pipelines") or ()]
    return _render("plan_reply.md.j2", MAX_MARKDOWN_CHARS, pipelines=pipelines,
                   base=str(plan.get("base") or ""), head=str(plan.get("head") or ""))


def waiting_for_approval(author: str, sha: str, pipelines: Sequence[str]) -> str:
    """Comment on a PR from a fork or an outside contributor: runs wait for a maintainer's `/ok-to-run`."""
    return _render("waiting_for_approval.md.j2", MAX_MARKDOWN_CHARS, author=author, sha=sha,
                   pipelines=sorted(pipelines))


def run_accepted(user: str, runs: Sequence[Run], *, head_now: str | None = None) -> str:
    """Reply to `/run` and `/run all`: which runs started, with which overrides, where to follow them.

    `head_now`: the PR's head moved after the comment; the runs stay on the commented head."""
    views = [_run_view(r) for r in latest_runs(runs)]
    return _render("run_accepted.md.j2", MAX_MARKDOWN_CHARS, user=user, runs=views, head_now=head_now,
                   bound=views[0]["sha"] if views else "")


def approved(user: str, sha: str, pipelines: Sequence[str], *, head_now: str | None = None) -> str:
    """Reply to `/ok-to-run`: the approved commit and the pipelines now running (and that a newer
    head, `head_now`, is not approved)."""
    return _render("approved.md.j2", MAX_MARKDOWN_CHARS, user=user, sha=sha, pipelines=sorted(pipelines),
                   head_now=head_now)


def cancel_reply(user: str, cancelled: Sequence[Run], name: str | None = None) -> str:
    """Reply to `/cancel [NAME]`: the runs that were stopped, or that nothing was running."""
    return _render("cancel_reply.md.j2", MAX_MARKDOWN_CHARS, user=user, name=name,
                   runs=[_run_view(r) for r in latest_runs(cancelled)])


# --- views: plain values the templates lay out -------------------------------------------------


def _run_view(run: Run) -> dict[str, Any]:
    return {
        "run": run,
        "id": run.id,
        "pipeline": run.pipeline,
        "state": run.state.value,
        "active": not run.state.terminal,
        "emoji": STATE_EMOJI[run.state],
        "trigger": run.trigger.value,
        "by": run.triggered_by,
        "sha": run.sha,
        "pr": run.pr,
        "url": web_url(run.url),
        "error": _tail((run.error or "").strip(), MAX_ERROR_CHARS),
        "duration": format_duration(run.duration_seconds),
        "created": format_time(run.created_at),
        "updated": format_time(run.updated_at),
        "reasons": [_reason_view(r) for r in run.plan.reasons],
        "components": [_component_view(c) for c in run.plan.components],
        "parameters": [{"name": k, "value": format_value(v), "override": k in run.overrides}
                       for k, v in run.parameters.items()],
        "overrides": [{"name": k, "value": str(v)} for k, v in run.overrides.items()
                      if k not in run.parameters],
        "transitions": [{"state": t.state.value, "emoji": STATE_EMOJI[t.state], "at": format_time(t.at),
                         "detail": t.detail} for t in run.transitions],
        "reproduce": reproduce_command(run),
        "is_command": run.trigger is Trigger.COMMAND,
    }


def _head_view(runs: Sequence[Run], note: NoteLike) -> dict[str, Any]:
    note = as_note(note)
    latest = latest_runs(runs)
    counts: dict[str, int] = {}
    for run in latest:
        counts[run.state.value] = counts.get(run.state.value, 0) + 1
    return {"outcome": head_outcome(runs, note).value, "runs": [_run_view(r) for r in latest],
            "counts": counts, "note": note.text.strip()}


def _pipeline_plan_view(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    plan = RunPlan.from_json(pipeline)  # one pipeline of `Plan.to_json()`: a run's plan's shape
    return {"name": plan.name, "change": plan.change, "reasons": [_reason_view(r) for r in plan.reasons],
            "components": [_component_view(c) for c in plan.components]}


def _reason_view(reason: PlanReason) -> dict[str, str]:
    """A reason as a changed path plus how it reaches the pipeline, or its text alone."""
    if reason.path:
        return {"path": reason.path, "detail": reason.detail}
    return {"path": "", "detail": reason.text}


def _component_view(component: PlanComponent) -> dict[str, Any]:
    return {"name": component.name, "image": component.image, "rebuild": component.rebuild,
            "shared": component.shared}


def web_url(url: str | None) -> str | None:
    """Only http(s) links are shown: GitHub rejects others, and a file path is no use to a reviewer."""
    return url if url and url.startswith(("https://", "http://")) else None


# --- formatting helpers, also exposed to the templates as filters ------------------------------

STATE_EMOJI: Mapping[RunState, str] = {
    RunState.QUEUED: "🕒", RunState.BUILDING: "🏗️", RunState.COMPILING: "⚙️", RunState.RUNNING: "🏃",
    RunState.SUCCEEDED: "✅", RunState.FAILED: "❌", RunState.CANCELLED: "🚫", RunState.SKIPPED: "⏭️",
    RunState.ERROR: "⚠️",
}


def format_duration(seconds: float | None) -> str:
    """`45s`, `2m 5s`, `1h 3m`; an em dash while a run is still going."""
    if seconds is None:
        return "—"
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def format_time(moment: datetime) -> str:
    """A timestamp in UTC, to the second."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_value(value: Any) -> str:
    """A parameter value as a user would type it (strings bare, everything else as JSON)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _cell(value: Any) -> str:
    """Text safe inside a markdown table cell: one line, pipes escaped."""
    return re.sub(r"\s*\n\s*", " ", str(value)).replace("|", "\\|")


def _code(value: Any) -> str:
    """An inline code span that survives backticks (and pipes, inside tables) in the value."""
    text = re.sub(r"\s*\n\s*", " ", str(value)).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(value: Any, info: str = "") -> str:
    """A fenced code block longer than any backtick run in the value."""
    text = str(value).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _first_line(value: Any) -> str:
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _short_sha(sha: Any) -> str:
    return str(sha or "")[:7]


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = "\n\n" + _macro("short.j2", "truncated") + "\n"
    return text[: limit - len(note)] + note


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (never inside a character), with the visible
    "… truncated" note when it was cut: for GitHub fields limited in bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text
    note = "\n\n" + _macro("short.j2", "truncated") + "\n"
    room = limit - len(note.encode("utf-8"))
    return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + note


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=False,  # markdown, not HTML: values are escaped per context with the filters below
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(cell=_cell, code=_code, fenced=_fenced, first_line=_first_line, short_sha=_short_sha)


def _render(template: str, limit: int, **values: Any) -> str:
    text = _ENV.get_template(template).render(**values)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return _fit(text, limit)


def _macro(template: str, name: str, **values: Any) -> str:
    module = _ENV.get_template(template).make_module()
    return str(getattr(module, name)(**values)).strip()


# --- Slack (handlers/slack_notifier.py): Block Kit messages built around mrkdwn from templates/slack.j2 ----

# Slack refuses section texts above 3,000 characters and messages above 50 blocks.
MAX_SLACK_SECTION_CHARS = 3_000
# A Slack line is read at a glance: the first line of an error, clipped, says what went wrong.
MAX_SLACK_ERROR_CHARS = 280


def slack_thread(note: Notification, runs: Sequence[Run]) -> dict[str, Any]:
    """The one parent message of a PR (or deploy commit): the PR link and each pipeline's latest state.

    `note` is the change that caused this update (it names the PR); `runs` are the PR's runs.
    """
    view = _slack_view(note)
    view["pipelines"] = [_slack_run_view(r) for r in latest_runs(runs)] or [view["change"]]
    lines = "\n".join(_macro("slack.j2", "pipeline_line", p=p) for p in view["pipelines"])
    blocks = [
        _section(_macro("slack.j2", "subject", s=view) + "\n" + _macro("slack.j2", "byline", s=view)),
        _section(lines),
    ]
    return {"text": _clip(_macro("slack.j2", "thread_fallback", s=view), MAX_SLACK_SECTION_CHARS),
            "blocks": blocks}


def slack_change(note: Notification) -> dict[str, Any]:
    """One state change: a reply in the PR's thread, or a message of its own (incoming webhooks),
    so it names the PR and commit too."""
    view = _slack_view(note)
    blocks = [_section(_macro("slack.j2", "change_title", s=view))]
    if view["change"]["error"]:
        blocks.append(_section(f"> {_slack_escape(view['change']['error'])}"))
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _fit_slack(_macro("slack.j2", "change_context", s=view))}]})
    return {"text": _clip(_macro("slack.j2", "change_fallback", s=view), MAX_SLACK_SECTION_CHARS),
            "blocks": blocks}


def _slack_view(note: Notification) -> dict[str, Any]:
    pr_url = web_url(note.pr_url)
    label = f"{note.repo}#{note.pr}"
    return {
        "repo": note.repo, "pr": note.pr, "pr_title": note.pr_title, "pr_author": note.pr_author,
        "pr_link": _slack_link(pr_url, label) if pr_url else f"*{_slack_escape(label)}*",
        "sha": note.sha, "trigger": note.trigger.value, "by": note.triggered_by,
        "previous": note.previous_state.value if note.previous_state else None,
        "overrides": sorted((str(k), format_value(v)) for k, v in note.overrides.items()),
        "change": {"pipeline": note.pipeline, "state": note.state.value, "emoji": STATE_EMOJI[note.state],
                   "duration": format_duration(note.duration_seconds) if note.duration_seconds is not None
                   else "", "url": web_url(note.url), "error": _slack_error(note.error)},
    }


def _slack_run_view(run: Run) -> dict[str, Any]:
    failed = run.state in (RunState.FAILED, RunState.ERROR, RunState.CANCELLED, RunState.SKIPPED)
    return {"pipeline": run.pipeline, "state": run.state.value, "emoji": STATE_EMOJI[run.state],
            "duration": format_duration(run.duration_seconds) if run.duration_seconds is not None else "",
            "url": web_url(run.url), "error": _slack_error(run.error) if failed else ""}


def _slack_error(error: str | None) -> str:
    """The line that says what went wrong: a traceback's last line, otherwise the first."""
    if not error:
        return ""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    line = lines[-1] if lines and lines[0].startswith("Traceback (most recent call last)") else _first_line(error)
    return _clip(line, MAX_SLACK_ERROR_CHARS)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit_slack(text)}}


def _fit_slack(text: str) -> str:
    return text if len(text) <= MAX_SLACK_SECTION_CHARS else text[: MAX_SLACK_SECTION_CHARS - 1] + "…"


def _slack_escape(value: Any) -> str:
    """Slack mrkdwn's only escapes: what people typed cannot become a link, mention or tag."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str | None, text: str) -> str:
    if not url:
        return _slack_escape(text)
    return f"<{url.replace('|', '%7C').replace('>', '%3E')}|{_slack_escape(text)}>"


def _slack_code(value: Any) -> str:
    """Inline code; mrkdwn has no way to escape a backtick inside it, so those become quotes."""
    text = re.sub(r"\s*\n\s*", " ", str(value)).replace("`", "'")
    return f"`{_slack_escape(text)}`"


_ENV.filters.update(slack=_slack_escape, slack_link=lambda url, text: _slack_link(url, text),
                    slack_code=_slack_code)
