"""What every message of kfp-bot is rendered with: the Jinja2 environment over `handlers/templates/`,
the escaping filters, the formatting of values, and the views of runs the templates lay out.

The audience modules beside this one (`checks`, `pull_comment`, `replies`, `slack_blocks`) are
data in, text out (runs and plain values, never client objects) and all render through here, so a
value looks the same in a check, a comment and a Slack message. Anything a user typed (parameter
values, names, error text) is escaped for the markdown context it lands in, so a `|` or a backtick
cannot break a table or a code block.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from handlers.reports import RunPages
from handlers.run_models import PlanComponent, PlanReason, Run, RunPlan, RunState, Trigger

# GitHub refuses comments above 65,536 characters and statuses above 140
# (https://docs.github.com/en/rest/issues/comments, https://docs.github.com/en/rest/commits/statuses).
MAX_MARKDOWN_CHARS = 65_000
MAX_STATUS_CHARS = 140
MAX_TITLE_CHARS = 250
# The end of a long error (a traceback's last lines) is what says what went wrong.
MAX_ERROR_CHARS = 20_000


def latest_runs(runs: Iterable[Run]) -> list[Run]:
    """The newest run of each pipeline, sorted by pipeline name."""
    newest: dict[str, Run] = {}
    for run in runs:
        seen = newest.get(run.pipeline)
        if seen is None or (run.created_at, run.updated_at) > (seen.created_at, seen.updated_at):
            newest[run.pipeline] = run
    return [newest[name] for name in sorted(newest)]


def reproduce_command(run: Run) -> str:
    """The `kfp-bot run` command that runs the same pipeline with the same overrides locally."""
    words = ["kfp-bot", "run", shlex.quote(run.pipeline), "--repo", "."]
    for key, value in run.overrides.items():
        words += ["-p", shlex.quote(f"{key}={value}")]
    return " ".join(words)


NO_PAGES = RunPages()
"""No public address: runs are linked to their backend only."""


# --- views: plain values the templates lay out -------------------------------------------------


def run_view(run: Run, *, queue: str = "", pages: RunPages = NO_PAGES) -> dict[str, Any]:
    """A run as the templates see it: plain values, links only when they are web links; `queue`
    is a waiting run's place in line (`messages.guardrails.queue_place`); `pages` where its page
    is (`link` is the page, else the backend's link)."""
    page = pages.url(run.id)
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
        "page": page,
        "link": page or web_url(run.url),
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
        "queue": queue if run.state is RunState.QUEUED else "",
    }


def pipeline_plan_view(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """One pipeline of a `Plan.to_json()` mapping, as the templates see it."""
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


def code(value: Any) -> str:
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


def first_line(value: Any) -> str:
    """The first non-blank line of `value`, stripped."""
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return lines[0] if lines else ""


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, …"""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _short_sha(sha: Any) -> str:
    return str(sha or "")[:7]


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis (titles, descriptions)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = "\n\n" + macro("short.j2", "truncated") + "\n"
    return text[: limit - len(note)] + note


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (never inside a character), with the visible
    "… truncated" note when it was cut: for GitHub fields limited in bytes."""
    if len(text.encode("utf-8")) <= limit:
        return text
    note = "\n\n" + macro("short.j2", "truncated") + "\n"
    room = limit - len(note.encode("utf-8"))
    return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + note


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=False,  # markdown, not HTML: values are escaped per context with the filters below
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters.update(cell=_cell, code=code, fenced=_fenced, first_line=first_line, short_sha=_short_sha,
                   ordinal=ordinal)


def render(template: str, limit: int, **values: Any) -> str:
    """A template rendered with `values`, blank runs collapsed, cut to `limit` characters with a note."""
    text = ENV.get_template(template).render(**values)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return _fit(text, limit)


def macro(template: str, name: str, **values: Any) -> str:
    """One macro of a template (the one-liners of `short.j2`, the pieces of `slack.j2`), stripped."""
    module = ENV.get_template(template).make_module()
    return str(getattr(module, name)(**values)).strip()
