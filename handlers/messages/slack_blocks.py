"""Slack messages (`handlers/slack_notifier.py`): Block Kit built around mrkdwn from `handlers/templates/slack.j2`,
one parent message per pull request (or deploy commit) and one per state change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from handlers.messages.rendering import (
    ENV,
    NO_PAGES,
    STATE_EMOJI,
    clip,
    first_line,
    format_duration,
    format_value,
    latest_runs,
    macro,
    web_url,
)
from handlers.models import Notification
from handlers.reports import RunPages
from handlers.run_models import Run, RunState

# Slack refuses section texts above 3,000 characters and messages above 50 blocks.
MAX_SLACK_SECTION_CHARS = 3_000

# A Slack line is read at a glance: the first line of an error, clipped, says what went wrong.
MAX_SLACK_ERROR_CHARS = 280


def slack_thread(note: Notification, runs: Sequence[Run], headlines: Mapping[str, str] | None = None, *,
                 pages: RunPages = NO_PAGES) -> dict[str, Any]:
    """The one parent message of a PR (or deploy commit): the PR link and each pipeline's latest state.

    `note` is the change that caused this update (it names the PR); `runs` are the PR's runs;
    `headlines` (run id → line) each finished run's headline metric (`messages.results.headline`);
    each run links to its page (`pages`), else to its backend.
    """
    view = _slack_view(note, (headlines or {}).get(note.run_id, ""), pages)
    view["pipelines"] = [_slack_run_view(r, (headlines or {}).get(r.id, ""), pages)
                         for r in latest_runs(runs)] or [view["change"]]
    lines = "\n".join(macro("slack.j2", "pipeline_line", p=p) for p in view["pipelines"])
    blocks = [
        _section(macro("slack.j2", "subject", s=view) + "\n" + macro("slack.j2", "byline", s=view)),
        _section(lines),
    ]
    return {"text": clip(macro("slack.j2", "thread_fallback", s=view), MAX_SLACK_SECTION_CHARS),
            "blocks": blocks}


def slack_change(note: Notification, headline: str = "", *, pages: RunPages = NO_PAGES) -> dict[str, Any]:
    """One state change: a reply in the PR's thread, or a message of its own (incoming webhooks),
    so it names the PR and commit too; `headline` is the run's headline metric, once it ended; the
    run links to its page (`pages`), else to its backend."""
    view = _slack_view(note, headline, pages)
    blocks = [_section(macro("slack.j2", "change_title", s=view))]
    if view["change"]["error"]:
        blocks.append(_section(f"> {_slack_escape(view['change']['error'])}"))
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _fit_slack(macro("slack.j2", "change_context", s=view))}]})
    return {"text": clip(macro("slack.j2", "change_fallback", s=view), MAX_SLACK_SECTION_CHARS),
            "blocks": blocks}


def _slack_view(note: Notification, headline: str = "", pages: RunPages = NO_PAGES) -> dict[str, Any]:
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
                   else "", "url": pages.url(note.run_id) or web_url(note.url), "error": _slack_error(note.error),
                   "headline": headline},
    }


def _slack_run_view(run: Run, headline: str = "", pages: RunPages = NO_PAGES) -> dict[str, Any]:
    failed = run.state in (RunState.FAILED, RunState.ERROR, RunState.CANCELLED, RunState.SKIPPED)
    return {"pipeline": run.pipeline, "state": run.state.value, "emoji": STATE_EMOJI[run.state],
            "duration": format_duration(run.duration_seconds) if run.duration_seconds is not None else "",
            "url": pages.url(run.id) or web_url(run.url), "error": _slack_error(run.error) if failed else "", "headline": headline}


def _slack_error(error: str | None) -> str:
    """The line that says what went wrong: a traceback's last line, otherwise the first."""
    if not error:
        return ""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    line = lines[-1] if lines and lines[0].startswith("Traceback (most recent call last)") else first_line(error)
    return clip(line, MAX_SLACK_ERROR_CHARS)


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


ENV.filters.update(slack=_slack_escape, slack_link=lambda url, text: _slack_link(url, text),
                    slack_code=_slack_code)
