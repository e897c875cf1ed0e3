"""A run's own page as a client gets it over a socket: what it shows, escaped, and its 404 page.

The browser's view of the same page (links followed, scripts run, the log growing) is in
tests/browser/test_run_page.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from bot.app import create_app
from bot.config import Settings
from bot.embedded_bus import OutboxBus
from bot.github.github_reporter import CHECK_SCOPE, check_key
from bot.services import Services
from bot.store import SqlStore
from handlers.messages.checks import check_name
from handlers.queue_view import WAITING_SCOPE
from handlers.run_diffs import save_diff
from handlers.run_models import PlanComponent, PlanReason, Run, RunPlan, RunState, Transition, Trigger
from handlers.run_results import Comparison, GateOutcome, RunResults, save_results
from pipeline_registry.gates import GateVerdict
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff
from tests.bot.test_dashboard import EVIL, T0, make_run
from tests.support.server import ServedApp, serve


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(webhook_secret="s", data_dir=tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as store:
        yield store


@pytest.fixture
def server(settings: Settings, store: SqlStore) -> Iterator[ServedApp]:
    with serve(create_app(settings, Services(store=store, bus=OutboxBus(store, lambda event: None)))) as served:
        yield served


def finished_run(**changes: object) -> Run:
    """A succeeded run of PR 7 that went queued → building → running → succeeded."""
    run = make_run("run-done", 0, state=RunState.SUCCEEDED, updated_at=T0 + timedelta(seconds=200),
                   parameters={"epochs": 2, "lr": 0.01, "tags": ["a", "b"]}, overrides={"epochs": "2"},
                   triggered_by="alice", trigger=Trigger.COMMAND,
                   plan=RunPlan(name="head-pose-pipeline", reasons=(
                       PlanReason(text="pipelines/head-pose-pipeline/train/main.py changed (component 'train')"),),
                       components=(PlanComponent(name="train", image="gcr.io/p/train:content-1234", rebuild=True),
                                   PlanComponent(name="io", image="gcr.io/p/io:content-9999", shared=True))),
                   transitions=(Transition(RunState.QUEUED, T0),
                                Transition(RunState.BUILDING, T0 + timedelta(seconds=5), "building 1 image"),
                                Transition(RunState.RUNNING, T0 + timedelta(seconds=65)),
                                Transition(RunState.SUCCEEDED, T0 + timedelta(seconds=200), "outputs: score=0.9")))
    return replace(run, **changes)


def section(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"(.*?)</(table|ul|div|p)>', html, re.S)
    assert match, f"no element {element_id}"
    return match.group(1)


def test_the_page_shows_the_timeline_reasons_images_parameters_and_links(
        server: ServedApp, store: SqlStore) -> None:
    run = finished_run(url="https://console.cloud.google.com/vertex-ai/pipelines/runs/abc")
    assert store.create_run(run)
    store.set_external(CHECK_SCOPE, check_key(run, check_name(run.pipeline)), "4242")

    response = requests.get(f"{server.url}/runs/run-done", timeout=30)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "script-src 'nonce-" in response.headers["Content-Security-Policy"]
    html = response.text
    timeline = section(html, "timeline")
    assert re.findall(r'<span class="badge [a-z]+">([a-z]+)</span></td><td>[^<]+</td>\s*<td>([^<]+)</td>',
                      timeline) == [("queued", "5s"), ("building", "1m 0s"), ("running", "2m 15s"), ("succeeded", "–")]
    assert "building 1 image" in timeline and "outputs: score=0.9" in timeline
    assert "pipelines/head-pose-pipeline/train/main.py changed (component &#39;train&#39;)" in section(html, "reasons")
    images = section(html, "images")
    assert re.search(r"train</td>\s*<td><code>gcr.io/p/train:content-1234</code></td><td>built", images)
    assert re.search(r"io <span class=\"note\">\(shared\)</span></td>\s*<td><code>gcr.io/p/io:content-9999</code>"
                     r"</td><td>reused", images)
    parameters = section(html, "parameters")
    assert re.search(r'<tr class="override"><td>epochs</td>\s*<td><code>2</code></td><td>override', parameters)
    assert re.search(r"<td>lr</td>\s*<td><code>0.01</code></td><td>settings.yaml", parameters)
    assert "<code>[&#34;a&#34;, &#34;b&#34;]</code>" in parameters
    assert '<a href="https://github.com/org/monorepo/pull/7">pull request #7</a>' in html
    assert f'<a href="https://github.com/org/monorepo/commit/{run.sha}">commit {run.sha[:7]}</a>' in html
    assert '<a href="https://github.com/org/monorepo/runs/4242">check kfp-bot / head-pose-pipeline</a>' in html
    assert '<a href="https://console.cloud.google.com/vertex-ai/pipelines/runs/abc">run on the console</a>' in html
    assert 'its console page</a>' in section(html, "logs")
    assert "command by alice" in html
    assert "<script" not in html  # a finished run is not followed


def test_pull_request_controlled_text_is_escaped_and_only_http_links_are_links(
        server: ServedApp, store: SqlStore) -> None:
    evil = '"><img src=x onerror=alert(1)>'
    assert store.create_run(finished_run(
        pipeline=f"p{EVIL}", triggered_by=evil, error=f"failed: {EVIL}", url="javascript:alert(1)",
        parameters={"name": EVIL}, state=RunState.FAILED,
        plan=RunPlan(reasons=(PlanReason(text=EVIL),), components=(PlanComponent(name=evil, image=EVIL),))))

    html = requests.get(f"{server.url}/runs/run-done", timeout=30).text

    assert "<script>alert(" not in html and "<img" not in html
    assert html.count("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;") >= 5
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript:' not in html
    assert "<code>javascript:alert(1)</code>" in section(html, "logs")


def test_the_page_shows_the_pipeline_diff_and_the_results_beside_the_baseline(
        server: ServedApp, store: SqlStore) -> None:
    assert store.create_run(finished_run())
    save_diff(store, "run-done", PipelineDiff("head-pose-pipeline", changes=(
        Change(ChangeKind.IMAGE, "train", "gcr.io/p/train:content-1111", "gcr.io/p/train:content-1234"),
        Change(ChangeKind.SETTING, "arguments.epochs", "1", EVIL))))
    save_results(store, RunResults(
        run_id="run-done", metrics={"accuracy": 0.93}, outputs={"model": EVIL}, baseline_run_id="run-base",
        comparisons=(Comparison("accuracy", 0.93, 0.9),),
        gates=(GateOutcome("accuracy", ">= 0.90", GateVerdict.PASSED, value=0.93, limit=0.9),)))

    html = requests.get(f"{server.url}/runs/run-done", timeout=30).text

    diff = section(html, "diff")
    assert re.search(r"<td>image</td><td>train</td><td><code>gcr.io/p/train:content-1111</code></td>"
                     r"<td><code>gcr.io/p/train:content-1234</code></td>", diff)
    assert "<td>arguments.epochs</td><td><code>1</code></td><td><code>&lt;script&gt;" in diff
    assert "Pipeline diff <span class=\"note\">2 changes</span>" in html
    results = section(html, "results")
    assert '<a href="/runs/run-base"><code>run-base</code></a>' in results
    assert "<tr><td>accuracy</td><td>0.93</td><td>0.9</td><td>+0.03 (+3.3%)</td></tr>" in section(html, "metrics")
    assert "<td>model</td><td><code>&lt;script&gt;" in section(html, "outputs")
    assert ('<td><code>accuracy &gt;= 0.90</code></td><td>0.93</td><td>0.9</td>'
            '<td><span class="badge good">passed</span></td>') in section(html, "gates")


def test_a_run_without_diff_or_results_has_neither_section(server: ServedApp, store: SqlStore) -> None:
    assert store.create_run(finished_run())

    html = requests.get(f"{server.url}/runs/run-done", timeout=30).text

    assert 'id="diff"' not in html and 'id="results"' not in html


def test_an_unknown_run_is_a_404_page_naming_it(server: ServedApp) -> None:
    for path in ("/runs/run-missing", "/runs/run-missing/live"):
        response = requests.get(server.url + path, timeout=30)

        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
        assert '<code id="missing-run">run-missing</code>' in response.text
    hostile = requests.get(server.url + "/runs/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", timeout=30)
    assert hostile.status_code == 404
    assert '<code id="missing-run">&lt;img src=x onerror=alert(1)&gt;</code>' in hostile.text
    assert requests.get(server.url + "/runs/" + "x" * 5000, timeout=30).status_code == 400


def test_a_queued_run_shows_its_place_in_the_repositorys_queue(server: ServedApp, store: SqlStore) -> None:
    for run in (make_run("run-first", 1), make_run("run-second", 2), make_run("run-third", 3, state=RunState.RUNNING),
                make_run("run-other-repo", 0, repo="org/other")):
        assert store.create_run(run)
        if run.state is RunState.QUEUED:
            store.set_external(WAITING_SCOPE, run.id, run.created_at.isoformat())  # refused a slot

    second = requests.get(f"{server.url}/runs/run-second", timeout=30).text
    running = requests.get(f"{server.url}/runs/run-third", timeout=30).text

    assert "queued: 2nd in line for org/monorepo, 1 running" in second
    assert "queue-position" not in running
    assert "follows the run every 2 s" in second
    assert 'var url = "/runs/run-second/live";' in second


def test_a_local_runs_log_is_shown_and_the_live_part_follows_it(
        server: ServedApp, store: SqlStore, settings: Settings) -> None:
    assert store.create_run(make_run("run-local", 1, state=RunState.RUNNING))
    settings.runs_dir.mkdir(parents=True)
    log = settings.runs_dir / "run-local.log"
    log.write_text(f"Executing task 'train'\n    epoch 1 {EVIL}\n")

    page = requests.get(f"{server.url}/runs/run-local", timeout=30).text
    log.write_text(log.read_text() + "    epoch 2\n" + "x" * 70_000 + "\nlast line\n")
    live = requests.get(f"{server.url}/runs/run-local/live", timeout=30)

    assert "epoch 1 &lt;script&gt;" in section(page, "logs") and "epoch 2" not in page
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    assert "<html" not in live.text and 'data-terminal="false"' in live.text
    assert live.text.rstrip().endswith("</div>")
    assert re.search(r'<pre id="log">last line\n</pre>', live.text)
    assert "The last " in live.text and "Executing task" not in live.text  # only the end of a long log


def test_the_dashboard_links_each_run_to_its_page(server: ServedApp, store: SqlStore) -> None:
    assert store.create_run(finished_run())

    html = requests.get(server.url + "/", timeout=30).text

    assert '<td class="pipeline"><a href="/runs/run-done">head-pose-pipeline</a></td>' in html
