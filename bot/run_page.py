"""A run's own page (`/runs/<id>`): what it did, why, with what, and its log.

The view of a run is built here as small frozen values (timeline with durations, reasons, images
built or reused, parameters and overrides, links, queue position, the log's end; the pipeline diff
and the results beside the baseline in the views `handlers.messages` gives the checks) and
rendered by `templates/run.html` (the parts that change while the run goes on by
`templates/_run_live.html`, which the page polls at `/runs/<id>/live` until the run ends). Everything a pull request controls
(pipeline names, reasons, parameter values, errors, log lines) goes through Jinja's autoescaping,
and links are only ever http(s) (`dashboard.safe_link`). An unknown run is a 404 page.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, get_template_attribute, make_response, render_template

from bot.config import Settings
from bot.dashboard import BADGES, github_web_url, html_response, repo_web_url, run_duration, safe_link, trigger_text
from bot.github.github_reporter import CHECK_SCOPE, check_key
from bot.queries import text_value
from deploy.runners.local_logs import LogTail, log_path, read_tail
from handlers.messages.checks import check_name
from handlers.messages.guardrails import queue_line
from handlers.messages.pipeline_diff import diff_view
from handlers.messages.rendering import format_duration, format_time
from handlers.messages.results import results_view
from handlers.ports.store import Store
from handlers.queue_view import place_in_line
from handlers.run_diffs import load_diff
from handlers.run_models import Run
from handlers.run_results import load_results
from pipeline_registry.limits import RunLimits

LIVE_REFRESH_SECONDS = 2


@dataclass(frozen=True)
class Step:
    """One state of the run's timeline: when it began, how long it lasted, and why."""

    state: str
    badge: str
    at: str
    duration: str
    detail: str


@dataclass(frozen=True)
class Link:
    """A labelled http(s) link."""

    label: str
    url: str


@dataclass(frozen=True)
class Image:
    """A component's image, and whether the run built it or reused it."""

    component: str
    image: str
    action: str
    shared: bool


@dataclass(frozen=True)
class Parameter:
    """A parameter the run was given, and whether a `/run` override set it."""

    name: str
    value: str
    overridden: bool


@dataclass(frozen=True)
class RunView:
    """Everything the run's page shows."""

    id: str
    repo: str
    pipeline: str
    pr: int | None
    sha: str
    state: str
    badge: str
    terminal: bool
    trigger: str
    created: str
    duration: str
    error: str | None
    steps: tuple[Step, ...]
    reasons: tuple[str, ...]
    images: tuple[Image, ...]
    parameters: tuple[Parameter, ...]
    links: tuple[Link, ...]
    console_url: str | None
    raw_url: str | None
    queue: str | None
    log: LogTail | None
    diff: dict[str, Any] | None
    results: dict[str, Any] | None


def timeline(run: Run, now: datetime) -> tuple[Step, ...]:
    """The run's states in order, each lasting until the next began (the last one, while the run
    goes on, until `now`)."""
    ordered = sorted(run.transitions, key=lambda t: t.at)
    steps = []
    for index, transition in enumerate(ordered):
        following = ordered[index + 1].at if index + 1 < len(ordered) else None
        if following is not None:
            duration = format_duration((following - transition.at).total_seconds())
        elif transition.state.terminal:
            duration = ""
        else:
            duration = format_duration((now - transition.at).total_seconds()) + " so far"
        steps.append(Step(state=transition.state.value, badge=BADGES[transition.state],
                          at=format_time(transition.at), duration=duration, detail=transition.detail))
    return tuple(steps)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def parameters(run: Run) -> tuple[Parameter, ...]:
    """The run's parameters, then any override the parameters do not list, sorted by name."""
    given = {name: _value(value) for name, value in run.parameters.items()}
    for name, value in run.overrides.items():
        given.setdefault(name, value)
    return tuple(Parameter(name, value, name in run.overrides) for name, value in sorted(given.items()))


def images(run: Run) -> tuple[Image, ...]:
    """The pipeline's component images: built by this run (rebuild) or reused as they were."""
    return tuple(Image(component=c.name, image=c.image or "(named in the pipeline code)",
                       action="built" if c.rebuild else "reused", shared=c.shared)
                 for c in run.plan.components)


def reasons(run: Run) -> tuple[str, ...]:
    """Why the run's pipeline is affected, one sentence each; a `/run` or deploy says so itself."""
    return tuple(r.text or f"{r.path}: {r.detail or r.rule}" for r in run.plan.reasons)


def links(run: Run, web_url: str, check_id: str | None) -> tuple[Link, ...]:
    """The pull request, the commit, the pipeline's check and the remote run, where they exist."""
    found: list[Link] = []
    repo_url = repo_web_url(web_url, run.repo)
    if repo_url:
        if run.pr is not None:
            found.append(Link(f"pull request #{run.pr}", f"{repo_url}/pull/{run.pr}"))
        found.append(Link(f"commit {run.sha[:7]}", f"{repo_url}/commit/{run.sha}"))
        if check_id and check_id.isdigit():
            found.append(Link(f"check {check_name(run.pipeline)}", f"{repo_url}/runs/{check_id}"))
    console = safe_link(run.url)
    if console:
        found.append(Link("run on the console", console))
    return tuple(found)


def queue_text(run: Run, store: Store, ceiling: RunLimits) -> str | None:
    """A run waiting for a slot: its place in its repository's line (`queued: 2nd in line for
    acme/repo, 3 running`); None for any other run."""
    spot = place_in_line(store, run, ceiling)
    return queue_line(spot) if spot is not None else None


def run_view(run: Run, *, store: Store, web_url: str, runs_dir: Path, now: datetime,
             ceiling: RunLimits | None = None) -> RunView:
    """The page's view of `run` at time `now`."""
    check_id = store.get_external(CHECK_SCOPE, check_key(run, check_name(run.pipeline)))
    path = log_path(runs_dir, run.id)
    return RunView(
        id=run.id, repo=run.repo, pipeline=run.pipeline, pr=run.pr, sha=run.sha, state=run.state.value,
        badge=BADGES[run.state], terminal=run.state.terminal,
        trigger=trigger_text(run), created=format_time(run.created_at), duration=run_duration(run, now),
        error=run.error,
        steps=timeline(run, now), reasons=reasons(run), images=images(run), parameters=parameters(run),
        links=links(run, web_url, check_id), console_url=safe_link(run.url), raw_url=run.url,
        queue=queue_text(run, store, ceiling or RunLimits()), log=read_tail(path) if path is not None else None,
        diff=_diff(store, run.id), results=results_view(load_results(store, run.id)))


def _diff(store: Store, run_id: str) -> dict[str, Any] | None:
    diff = load_diff(store, run_id)
    return diff_view(diff) if diff is not None else None


def run_page_blueprint(store: Store, settings: Settings) -> Blueprint:
    """The page (`/runs/<id>`) and the part of it that follows the run (`/runs/<id>/live`)."""
    blueprint = Blueprint("run_page", __name__)
    web_url = github_web_url(settings.github_api_url)

    def view_of(run_id: str) -> RunView | None:
        run = store.get_run(text_value("run id", run_id))
        if run is None:
            return None
        return run_view(run, store=store, web_url=web_url, runs_dir=settings.runs_dir, now=datetime.now(UTC),
                        ceiling=settings.limits_ceiling)

    @blueprint.get("/runs/<run_id>")
    def page(run_id: str) -> Response:
        view = view_of(run_id)
        if view is None:
            return not_found(run_id)
        nonce = secrets.token_urlsafe(16)
        return html_response(render_template("run.html", run=view, nonce=nonce,
                                             refresh_seconds=LIVE_REFRESH_SECONDS), nonce)

    @blueprint.get("/runs/<run_id>/live")
    def live(run_id: str) -> Response:
        view = view_of(run_id)
        if view is None:
            return not_found(run_id)
        live_section = get_template_attribute("_run_live.html", "live_section")
        response = make_response(str(live_section(view)))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    return blueprint


def not_found(run_id: str) -> Response:
    """The 404 page naming the run asked for (escaped like everything else), never a traceback."""
    nonce = secrets.token_urlsafe(16)
    response = html_response(render_template("run_404.html", run_id=run_id, nonce=nonce), nonce)
    response.status_code = 404
    return response
