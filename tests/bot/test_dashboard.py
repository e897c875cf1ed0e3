"""The dashboard page as a browser gets it: runs per repository and PR, escaped, refreshing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.app import create_app
from bot.config import Settings
from bot.dashboard import github_web_url, group_runs, safe_link
from bot.embedded_bus import OutboxBus
from bot.services import Services
from bot.store import SqlStore
from handlers.messages.rendering import format_duration
from handlers.run_models import Run, RunState, Trigger
from tests.support.server import ServedApp, serve

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EVIL = "<script>alert('pwned')</script>"


def make_run(run_id: str, minutes: int, **changes: Any) -> Run:
    created = T0 + timedelta(minutes=minutes)
    run = Run(id=run_id, repo="org/monorepo", pr=7, sha="0123456789abcdef" * 2 + "01234567", base_sha=None,
              pipeline="head-pose-pipeline", trigger=Trigger.AUTORUN, state=RunState.QUEUED,
              created_at=created, updated_at=created)
    return replace(run, **changes)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        yield store


@pytest.fixture
def server(tmp_path: Path, store: SqlStore) -> Iterator[ServedApp]:
    settings = Settings(webhook_secret="s", data_dir=tmp_path)
    bus = OutboxBus(store, lambda event: None)
    with serve(create_app(settings, Services(store=store, bus=bus))) as served:
        yield served


@pytest.fixture
def runs(store: SqlStore) -> list[Run]:
    made = [
        make_run("run-ok", 1, state=RunState.SUCCEEDED, updated_at=T0 + timedelta(minutes=1, seconds=125),
                 url="https://console.cloud.google.com/vertex-ai/pipelines/runs/abc"),
        make_run("run-evil", 2, pipeline="evil-pipeline", state=RunState.FAILED, trigger=Trigger.COMMAND,
                 triggered_by="<b>mallory</b>", error=f"settings.yaml:3: {EVIL}", url="javascript:alert(1)",
                 updated_at=T0 + timedelta(minutes=2, seconds=40)),
        make_run("run-other-pr", 3, pr=8, state=RunState.RUNNING),
        make_run("run-deploy", 4, repo="org/second", pr=None, trigger=Trigger.DEPLOY, state=RunState.QUEUED),
    ]
    for run in made:
        assert store.create_run(run)
    return made


def _row(html: str, run_id: str) -> str:
    match = re.search(rf'<tr class="run" data-run-id="{run_id}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {run_id}"
    return match.group(1)


def test_the_page_shows_runs_per_repository_and_pull_request(server: ServedApp, runs: list[Run]) -> None:
    response = requests.get(server.url + "/", timeout=30)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assert '<a href="https://github.com/org/monorepo">org/monorepo</a>' in html
    assert '<a href="https://github.com/org/monorepo/pull/7">pull request #7</a>' in html
    assert '<a href="https://github.com/org/monorepo/pull/8">pull request #8</a>' in html
    assert '<a href="https://github.com/org/second">org/second</a>' in html
    assert "default branch" in html
    # Most recent activity first: the second repository (newest run) comes before the first.
    assert html.index("org/second</a>") < html.index("org/monorepo</a>")
    assert html.index("pull request #8") < html.index("pull request #7")

    ok = _row(html, "run-ok")
    assert "head-pose-pipeline" in ok
    assert '<span class="badge good">succeeded</span>' in ok
    assert "autorun" in ok
    assert "2m 5s" in ok
    assert '<code title="0123456789abcdef0123456789abcdef01234567">0123456</code>' in ok
    assert '<a href="https://console.cloud.google.com/vertex-ai/pipelines/runs/abc">open run</a>' in ok
    assert '<span class="badge active">running</span>' in _row(html, "run-other-pr")
    assert "deploy" in _row(html, "run-deploy")


def test_pull_request_controlled_text_is_escaped(server: ServedApp, runs: list[Run]) -> None:
    html = requests.get(server.url + "/", timeout=30).text

    assert "<script>alert(" not in html
    assert "settings.yaml:3: &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert "command by &lt;b&gt;mallory&lt;/b&gt;" in html
    assert "<b>mallory</b>" not in html
    assert 'href="javascript:' not in html
    assert "<code>javascript:alert(1)</code>" in _row(html, "run-evil")
    assert '<span class="badge bad">failed</span>' in _row(html, "run-evil")


def test_only_the_pages_own_script_may_run(server: ServedApp, runs: list[Run]) -> None:
    response = requests.get(server.url + "/", timeout=30)

    nonces = re.findall(r'<script nonce="([^"]+)">', response.text)
    assert len(nonces) == 1
    assert len(re.findall(r"<script", response.text)) == 1
    assert f"script-src 'nonce-{nonces[0]}'" in response.headers["Content-Security-Policy"]
    assert nonces[0] != re.findall(r'<script nonce="([^"]+)">', requests.get(server.url + "/", timeout=30).text)[0]


def test_the_page_refreshes_itself_from_the_server_rendered_runs(server: ServedApp, store: SqlStore,
                                                                 runs: list[Run]) -> None:
    page = requests.get(server.url + "/", timeout=30).text
    assert 'var url = "/dashboard/runs" + window.location.search;' in page
    assert "setInterval(refresh, 5000)" in page
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in page

    assert store.create_run(make_run("run-new", 9, pipeline="fresh-pipeline"))
    fragment = requests.get(server.url + "/dashboard/runs", timeout=30)

    assert fragment.status_code == 200
    assert '<span class="badge queued">queued</span>' in _row(fragment.text, "run-new")
    assert "fresh-pipeline" in fragment.text
    assert "&lt;script&gt;" in fragment.text and "<script" not in fragment.text
    assert "<html" not in fragment.text


def test_the_page_can_show_one_repository(server: ServedApp, runs: list[Run]) -> None:
    html = requests.get(server.url + "/", params={"repo": "org/second"}, timeout=30).text

    assert "run-deploy" in html
    assert "run-ok" not in html
    assert "repository org/second" in html


def test_an_empty_page_says_how_runs_appear(server: ServedApp) -> None:
    html = requests.get(server.url + "/", timeout=30).text

    assert "No runs yet." in html
    assert "<code>/run &lt;pipeline&gt;</code>" in html


def test_an_active_run_shows_its_time_so_far() -> None:
    run = make_run("run-active", 0, state=RunState.BUILDING)

    [group] = group_runs([run], web_url="https://github.com", now=T0 + timedelta(seconds=3725))

    assert group.pulls[0].runs[0].duration == "1h 2m so far"
    assert group.pulls[0].runs[0].badge == "active"


def test_a_repository_given_as_a_local_path_gets_no_links() -> None:
    run = make_run("run-local", 0, repo="/srv/repos/monorepo")

    [group] = group_runs([run], web_url="https://github.com", now=T0)

    assert group.url is None
    assert group.pulls[0].url is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.4, "59s"), (59.9, "1m 0s"), (60, "1m 0s"),
                                               (125, "2m 5s"), (3599, "59m 59s"), (3600, "1h 0m"), (-5, "0s")])
def test_a_duration_reads_as_in_the_pull_request_and_slack_messages(seconds: float, text: str) -> None:
    """One `format_duration` (handlers.messages) for the page, the PR comments and Slack."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("api", "web"), [("https://api.github.com", "https://github.com"),
                                          ("https://ghe.example.com/api/v3", "https://ghe.example.com")])
def test_github_web_url(api: str, web: str) -> None:
    assert github_web_url(api) == web


@pytest.mark.parametrize(("url", "safe"), [("https://example.com/run", True), ("http://localhost:8888/x", True),
                                           ("javascript:alert(1)", False), ("JaVaScRiPt:alert(1)", False),
                                           ("file:///tmp/run", False), ("/relative", False), (None, False)])
def test_only_web_addresses_become_links(url: str | None, safe: bool) -> None:
    assert safe_link(url) == (url if safe else None)


def test_a_run_waiting_for_a_slot_shows_its_place_in_line(server: ServedApp, store: SqlStore) -> None:
    from handlers.queue_view import WAITING_SCOPE

    for run in (make_run("run-holding", 0, state=RunState.RUNNING), make_run("run-first", 1),
                make_run("run-second", 2), make_run("run-fresh", 3)):
        assert store.create_run(run)
    for run_id in ("run-first", "run-second"):  # refused a slot; run-fresh was never tried yet
        store.set_external(WAITING_SCOPE, run_id, T0.isoformat())

    html = requests.get(server.url + "/", timeout=30).text

    assert '<span class="queue">2nd in line for org/monorepo, 1 running</span>' in _row(html, "run-second")
    assert '<span class="queue">1st in line for org/monorepo, 1 running</span>' in _row(html, "run-first")
    assert 'class="queue"' not in _row(html, "run-fresh") + _row(html, "run-holding")
