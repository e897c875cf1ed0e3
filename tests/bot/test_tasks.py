"""`POST /tasks/reconcile`: who may call it, what it answers, and the redelivery of webhooks lost
while the bot was down, end to end: the fake GitHub really sends them again to the bot's webhook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Request

from bot.app import create_app
from bot.config import Settings
from bot.github.deliveries import webhook_redeliverer
from bot.services import Services
from bot.store import SqlStore
from bot.tasks import RECONCILE_PATH, tasks_blueprint
from handlers.models import BuildStatus, Event, IssueCommentEvent, RunStatus
from handlers.ports.run import RunSubmission
from handlers.routes import dispatch
from handlers.run_models import RunState
from tests.fakes.github import FakeGitHub
from tests.fakes.github_hooks import AppWebhook
from tests.support.github_clients import APP_ID, app_settings, clients_for
from tests.support.server import serve
from tests.support.status_ports import (
    FixedBuilder,
    FixedRunner,
    RecordingBus,
    SteppingClock,
    delivery_store,
    make_context,
    stored_run,
)
from tests.support.webhooks import load_payload

TOKEN = "tasks-token-5f0c1e"
SECRET = "webhook-secret-for-tasks"
OIDC = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhY2NvdW50cy5nb29nbGUuY29tIn0.c2lnbmF0dXJl"


class Bot:
    """Services over a real store with fixed backends, and a way to serve the tasks blueprint."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.clock = SteppingClock()
        self.store: SqlStore = delivery_store(f"sqlite:///{tmp_path / 'db' / 'kfp-bot.db'}", self.clock)
        self.builder, self.runner, self.bus = FixedBuilder(), FixedRunner(), RecordingBus(store=self.store)
        self.ctx = make_context(self.store, tmp_path, self.clock, builder=self.builder, runner=self.runner,
                                bus=self.bus)
        self.bus.deliver = self._apply_statuses
        self.services = Services(store=self.store, bus=self.bus, context=self.ctx)

    def _apply_statuses(self, event: Event) -> None:
        """Status events go to the real handlers; webhook events are only recorded."""
        if isinstance(event, (BuildStatus, RunStatus)):
            dispatch(event, self.ctx)

    def tasks(self, settings: Settings, **options: Any) -> Flask:
        app = Flask(__name__)
        app.register_blueprint(tasks_blueprint(settings, self.services, **options))
        return app


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    made = Bot(tmp_path)
    yield made
    made.store.close()


def call(app: Flask, authorization: str | None = f"Bearer {TOKEN}") -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = app.test_client().post(RECONCILE_PATH, headers=headers)
    return answer.status_code, answer.get_json()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", TOKEN])
def test_without_the_token_nothing_runs(bot: Bot, authorization: str | None) -> None:
    stored_run(bot.store, bot.clock, "run-1", RunState.RUNNING)
    bot.runner.statuses["run-1"] = RunSubmission(RunState.SUCCEEDED)

    status, body = call(bot.tasks(Settings(tasks_token=TOKEN)), authorization)

    assert status == 401 and body["status"] == "error"
    assert bot.runner.asked == [] and bot.bus.published == []


def test_with_no_credentials_configured_every_call_is_refused_and_says_what_to_set(bot: Bot) -> None:
    status, body = call(bot.tasks(Settings()), "Bearer anything")

    assert status == 401
    assert "KFP_BOT_TASKS_TOKEN" in body["reason"]


def test_with_the_token_the_pass_runs_and_answers_its_counts(bot: Bot) -> None:
    stored_run(bot.store, bot.clock, "run-done", RunState.RUNNING)
    stored_run(bot.store, bot.clock, "run-going", RunState.RUNNING)
    bot.runner.statuses["run-done"] = RunSubmission(RunState.SUCCEEDED, url="https://example.test/run-done")
    bot.runner.statuses["run-going"] = RunSubmission(RunState.RUNNING)

    status, body = call(bot.tasks(Settings(tasks_token=TOKEN)))

    assert status == 200, body
    assert body["status"] == "ok"
    assert body["reconcile"] == {"checked": 2, "in_progress": 1, "builds_finished": 0, "runs_finished": 1,
                                 "resumed": 0, "lost": 0, "timed_out": 0, "unknown": 0, "errors": 0}
    assert body["redelivery"] == {"skipped": "webhook redelivery is not configured for this bot"}
    run = bot.store.get_run("run-done")
    assert run is not None and run.state is RunState.SUCCEEDED


def test_an_oidc_token_the_verifier_accepts_runs_the_pass(bot: Bot) -> None:
    seen: list[str] = []

    def verify(request: Request) -> bool:
        seen.append(request.headers["Authorization"])
        return request.headers["Authorization"] == f"Bearer {OIDC}"

    app = bot.tasks(Settings(), verify=verify)

    assert call(app, f"Bearer {OIDC}")[0] == 200
    assert call(app, "Bearer eyJ.forged.token")[0] == 401
    assert seen == [f"Bearer {OIDC}", "Bearer eyJ.forged.token"]


def test_a_verifier_that_fails_refuses_the_call(bot: Bot) -> None:
    def verify(request: Request) -> bool:
        raise RuntimeError("cannot fetch Google's certificates")

    assert call(bot.tasks(Settings(), verify=verify), f"Bearer {OIDC}")[0] == 401


def test_when_the_store_is_unavailable_the_answer_is_503(bot: Bot) -> None:
    app = bot.tasks(Settings(tasks_token=TOKEN))
    for path in (bot.tmp_path / "db").iterdir():  # the database is damaged under the bot
        path.write_bytes(b"not a database" * 512)

    status, body = call(app)

    assert status == 503
    assert "store is unavailable" in body["reason"]


# -- redelivery, end to end ----------------------------------------------------------------------

@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def app_bot_settings(github: FakeGitHub) -> Settings:
    return Settings(**{**app_settings(github).model_dump(), "webhook_secret": SECRET, "tasks_token": TOKEN})


def test_webhooks_that_failed_while_the_bot_was_down_reach_it_once(bot: Bot, github: FakeGitHub) -> None:
    settings = app_bot_settings(github)
    clients = clients_for(settings)
    redeliverer = webhook_redeliverer(settings, clients, seconds_between_requests=None, seconds_between_writes=None)
    tasks = bot.tasks(settings, redeliverer=redeliverer)
    hook = AppWebhook(github, APP_ID, url="http://127.0.0.1:9/github/webhook", secret=SECRET)  # nobody listens
    payload = load_payload("issue_comment.created", {"comment.body": "/run hello-pipeline epochs=1"})
    lost = hook.deliver("issue_comment", payload)
    already = hook.add_delivery("issue_comment", load_payload("issue_comment.created", {"comment.id": 99}),
                                status_code=0)
    bot.store.record_delivery(already["guid"], "issue_comment")  # it timed out on GitHub's side, but arrived
    assert lost["status_code"] == 0

    with serve(create_app(settings, bot.services)) as server:
        hook.point_at(f"{server.url}/github/webhook")
        status, body = call(tasks)
        again = call(tasks)[1]

    assert status == 200, body
    assert body["redelivery"] == {"listed": 2, "failed": 2, "redelivered": 1, "already_recorded": 1,
                                  "exhausted": 0, "deferred": 0, "errors": 0}
    assert [a["status_code"] for a in hook.attempts(lost["guid"])] == [0, 202]
    [event] = bot.bus.published
    assert isinstance(event, IssueCommentEvent)
    assert event.delivery_id == lost["guid"] and event.body == "/run hello-pipeline epochs=1"
    assert again["redelivery"]["redelivered"] == 0 and again["redelivery"]["already_recorded"] == 1
    assert len(bot.bus.published) == 1


def test_when_github_refuses_the_redelivery_pass_the_answer_is_502_with_the_reconcile_counts(
        bot: Bot, github: FakeGitHub) -> None:
    settings = app_bot_settings(github)
    redeliverer = webhook_redeliverer(settings, clients_for(settings), seconds_between_requests=None,
                                      seconds_between_writes=None)
    stored_run(bot.store, bot.clock, "run-1", RunState.RUNNING)
    bot.clock.advance(timedelta(minutes=1))
    github.fail_next("GET", "/app/hook/deliveries", 401)

    status, body = call(bot.tasks(settings, redeliverer=redeliverer))

    assert status == 502
    assert body["reconcile"]["checked"] == 1
    assert "401 Bad credentials" in body["reason"]
    assert json.dumps(body).count(TOKEN) == 0
