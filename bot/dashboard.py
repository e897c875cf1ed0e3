"""The bot's web page: recent runs grouped per repository and pull request, each linking to its
own page (`bot.run_page`).

Runs are turned into small view values here (short sha, duration, badge, safe links) and
rendered by `templates/dashboard.html` (the runs themselves by `templates/_runs.html`) with Jinja's autoescaping: run errors and PR titles can
hold text a pull request controls. The page refreshes itself by fetching the same server-side
rendering of the runs (`/dashboard/runs`) every few seconds, so there is one place that escapes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, get_template_attribute, make_response, render_template, request

from bot.config import Settings
from bot.queries import text_arg
from handlers.messages.guardrails import queue_place
from handlers.messages.rendering import format_duration
from handlers.ports.store import Store
from handlers.queue_view import place_in_line
from handlers.run_models import Run, RunState

PAGE_LIMIT = 200
REFRESH_SECONDS = 5

BADGES = {
    RunState.QUEUED: "queued", RunState.BUILDING: "active", RunState.COMPILING: "active",
    RunState.RUNNING: "active", RunState.SUCCEEDED: "good", RunState.FAILED: "bad",
    RunState.ERROR: "bad", RunState.CANCELLED: "neutral", RunState.SKIPPED: "neutral",
}


@dataclass(frozen=True)
class RunRow:
    """One run as a table row shows it."""

    id: str
    pipeline: str
    state: str
    badge: str
    trigger: str
    duration: str
    sha: str
    short_sha: str
    url: str | None
    raw_url: str | None
    error: str | None
    updated: str
    queue: str = ""
    """A waiting run's place in its repository's line (`2nd in line for acme/repo, 3 running`)."""


@dataclass(frozen=True)
class PullGroup:
    """The runs of one pull request (or of the default branch when `number` is None)."""

    number: int | None
    url: str | None
    runs: tuple[RunRow, ...]


@dataclass(frozen=True)
class RepoGroup:
    """The runs of one repository, per pull request."""

    repo: str
    url: str | None
    pulls: tuple[PullGroup, ...]


def github_web_url(api_url: str) -> str:
    """The web address matching a GitHub API address (github.com or GitHub Enterprise)."""
    if urlsplit(api_url).netloc == "api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def safe_link(url: str | None) -> str | None:
    """`url` when it is an http(s) address; None otherwise (never a `javascript:` link)."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return None


def html_response(html: str, nonce: str) -> Response:
    """A page of the bot: its own nonce'd script and style may run, nothing else."""
    response = make_response(html)
    # Defence in depth: even a missed escape could not run a script without the nonce.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def run_duration(run: Run, now: datetime) -> str:
    """How long the run took, or has taken so far at time `now`."""
    if run.duration_seconds is not None:
        return format_duration(run.duration_seconds)
    return format_duration((now - run.created_at).total_seconds()) + " so far"


def trigger_text(run: Run) -> str:
    """What started the run, and who: `command by alice`."""
    return run.trigger.value + (f" by {run.triggered_by}" if run.triggered_by else "")


def repo_web_url(web_url: str, repo: str) -> str | None:
    """The repository's web page; None for a repository given as a local path (embedded demo)."""
    return safe_link(f"{web_url}/{repo}") if "/" in repo and not repo.startswith("/") else None


def run_row(run: Run, now: datetime, queue: str = "") -> RunRow:
    """The view of one run at time `now` (`queue`: its place in line while it waits for a slot)."""
    return RunRow(id=run.id, pipeline=run.pipeline, state=run.state.value, badge=BADGES[run.state],
                  trigger=trigger_text(run), duration=run_duration(run, now), sha=run.sha, short_sha=run.sha[:7],
                  url=safe_link(run.url), raw_url=run.url, error=run.error,
                  updated=run.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), queue=queue)


def group_runs(runs: list[Run], *, web_url: str, now: datetime,
               queues: Mapping[str, str] | None = None) -> list[RepoGroup]:
    """Runs (newest first) grouped per repository, then pull request, most recent activity first;
    `queues`: run id → place in line of the runs waiting for a slot."""
    repos: dict[str, dict[int | None, list[RunRow]]] = {}
    for run in runs:
        repos.setdefault(run.repo, {}).setdefault(run.pr, []).append(run_row(run, now, (queues or {}).get(run.id, "")))
    groups = []
    for repo, pulls in repos.items():
        repo_url = repo_web_url(web_url, repo)
        groups.append(RepoGroup(
            repo=repo, url=repo_url,
            pulls=tuple(PullGroup(number=number,
                                  url=f"{repo_url}/pull/{number}" if repo_url and number is not None else None,
                                  runs=tuple(rows))
                        for number, rows in pulls.items())))
    return groups


def dashboard_blueprint(store: Store, settings: Settings) -> Blueprint:
    """The page (`/`) and the fragment it polls (`/dashboard/runs`)."""
    blueprint = Blueprint("dashboard", __name__)
    web_url = github_web_url(settings.github_api_url)

    def current_groups() -> list[RepoGroup]:
        runs = store.list_runs(repo=text_arg(request.args, "repo"), limit=PAGE_LIMIT)
        spots = {run.id: place_in_line(store, run, settings.limits_ceiling)
                 for run in runs if run.state is RunState.QUEUED}
        queues = {run_id: queue_place(spot) for run_id, spot in spots.items() if spot is not None}
        return group_runs(runs, web_url=web_url, now=datetime.now(UTC), queues=queues)

    @blueprint.get("/")
    def page() -> Response:
        nonce = secrets.token_urlsafe(16)
        html = render_template("dashboard.html", groups=current_groups(), nonce=nonce,
                               refresh_seconds=REFRESH_SECONDS, repo=text_arg(request.args, "repo") or "")
        return html_response(html, nonce)

    @blueprint.get("/dashboard/runs")
    def fragment() -> Response:
        runs_section = get_template_attribute("_runs.html", "runs_section")
        response = make_response(str(runs_section(current_groups())))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    return blueprint
