"""GitHubReporter through real PyGithub against the fake GitHub: what a PR would show.

Each test reports runs and then reads back what GitHub was asked to show (check runs,
statuses, comments, reactions) from the fake, as a reviewer would see them on the pull request.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.github import GitHubClients, GitHubError, GitHubReporter
from bot.store import SqlStore
from handlers.messages.checks import head_report, run_report
from handlers.messages.pull_comment import pull_report
from handlers.messages.replies import command_refused
from handlers.reports import SUMMARY_MARKER
from handlers.run_models import Run, RunPlan, RunState, Trigger
from tests.fakes.github import FakeGitHub
from tests.support.github_clients import (
    BOT_LOGIN,
    HEAD,
    INSTALLATION_ID,
    PR,
    REPO,
    TOKEN_USER,
    app_settings,
    clients_for,
    repo_ref,
    token_settings,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RUN_URL = "https://console.cloud.google.com/vertex-ai/pipelines/runs/hp-1"
PLAN = {"reasons": [{"path": "pipelines/head-pose-pipeline/training/main.py", "detail": "in the pipeline folder"}],
        "components": [{"name": "training", "image": "reg/head-pose-pipeline-training:abc", "rebuild": True}]}


def make_run(state: RunState, *, pipeline: str = "head-pose-pipeline", run_id: str = "run-aaaaaaaaaaaaaaaa",
             created: datetime = T0, seconds: float = 90, url: str | None = None, error: str | None = None,
             trigger: Trigger = Trigger.AUTORUN, by: str | None = None) -> Run:
    return Run(id=run_id, repo=REPO, pr=PR, sha=HEAD, base_sha=None, pipeline=pipeline, trigger=trigger,
               state=state, created_at=created, updated_at=created + timedelta(seconds=seconds),
               triggered_by=by, parameters={"epochs": 3}, plan=RunPlan.from_json(PLAN), url=url, error=error,
               installation_id=INSTALLATION_ID)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'kfp-bot.db'}")
    yield store
    store.close()


@pytest.fixture
def app_clients(fake: FakeGitHub) -> GitHubClients:
    return clients_for(app_settings(fake))


@pytest.fixture
def app_reporter(app_clients: GitHubClients, store: SqlStore) -> GitHubReporter:
    return GitHubReporter(app_clients, store, mode="app", bot_login=BOT_LOGIN)


@pytest.fixture
def token_reporter(fake: FakeGitHub, store: SqlStore) -> GitHubReporter:
    return GitHubReporter(clients_for(token_settings(fake)), store, mode="token", bot_login=TOKEN_USER)


def checks(fake: FakeGitHub, name: str) -> list[dict[str, Any]]:
    return [c for c in fake.check_runs(REPO, HEAD) if c["name"] == name]


PIPELINE_CHECK = "kfp-bot / head-pose-pipeline"


# -- App mode: check runs ---------------------------------------------------------------------------


def test_check_run_is_created_once_then_updated_in_place(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    for state in (RunState.QUEUED, RunState.BUILDING, RunState.COMPILING):
        app_reporter.run_changed(run_report(make_run(state)))
    app_reporter.run_changed(run_report(make_run(RunState.RUNNING, url=RUN_URL)))
    [check] = checks(fake, PIPELINE_CHECK)
    assert (check["status"], check["conclusion"]) == ("in_progress", None)
    assert check["details_url"] == RUN_URL
    assert check["external_id"] == "run-aaaaaaaaaaaaaaaa"
    assert check["output"]["title"] == "Running the pipeline"

    app_reporter.run_changed(run_report(make_run(RunState.SUCCEEDED, url=RUN_URL, seconds=125)))
    [check] = checks(fake, PIPELINE_CHECK)
    assert (check["status"], check["conclusion"]) == ("completed", "success")
    assert check["output"]["title"] == "Succeeded in 2m 5s"
    summary = check["output"]["summary"]
    assert "`pipelines/head-pose-pipeline/training/main.py`: in the pipeline folder" in summary
    assert "`reg/head-pose-pipeline-training:abc`" in summary
    assert "kfp-bot run head-pose-pipeline --repo ." in summary
    assert check["completed_at"] == "2024-05-01T12:02:05Z"
    assert check["started_at"] == "2024-05-01T12:00:00Z"
    assert len(fake.requests_to("POST", r"/repos/octo/monorepo/check-runs")) == 1
    assert len(fake.requests_to("PATCH", r"/repos/octo/monorepo/check-runs/\d+")) == 4


@pytest.mark.parametrize(("state", "status", "conclusion"), [
    (RunState.QUEUED, "queued", None),
    (RunState.BUILDING, "in_progress", None),
    (RunState.COMPILING, "in_progress", None),
    (RunState.RUNNING, "in_progress", None),
    (RunState.SUCCEEDED, "completed", "success"),
    (RunState.FAILED, "completed", "failure"),
    (RunState.ERROR, "completed", "failure"),
    (RunState.CANCELLED, "completed", "cancelled"),
    (RunState.SKIPPED, "completed", "neutral"),
])
def test_run_state_maps_to_check_status(fake: FakeGitHub, app_reporter: GitHubReporter, state: RunState,
                                        status: str, conclusion: str | None) -> None:
    error = "settings.yaml:3: bad value" if state is RunState.ERROR else None
    app_reporter.run_changed(run_report(make_run(state, error=error)))
    [check] = checks(fake, PIPELINE_CHECK)
    assert (check["status"], check["conclusion"]) == (status, conclusion)
    if state is RunState.ERROR:
        assert "settings.yaml:3: bad value" in check["output"]["summary"]
        assert check["output"]["title"] == "Error: settings.yaml:3: bad value"


def test_check_run_is_found_again_when_the_store_lost_it(fake: FakeGitHub, app_clients: GitHubClients,
                                                         store: SqlStore, tmp_path: Path) -> None:
    GitHubReporter(app_clients, store, mode="app").run_changed(run_report(make_run(RunState.RUNNING, url=RUN_URL)))
    with SqlStore(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        GitHubReporter(app_clients, fresh, mode="app").run_changed(run_report(make_run(RunState.FAILED, error="boom")))
    [check] = checks(fake, PIPELINE_CHECK)
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert len(fake.requests_to("POST", r"/repos/octo/monorepo/check-runs")) == 1


def test_a_new_run_of_the_same_pipeline_gets_its_own_check_run(fake: FakeGitHub,
                                                               app_reporter: GitHubReporter) -> None:
    autorun = make_run(RunState.RUNNING, run_id="run-autorun")
    app_reporter.run_changed(run_report(autorun))
    rerun = make_run(RunState.BUILDING, run_id="run-command", created=T0 + timedelta(minutes=2),
                     trigger=Trigger.COMMAND, by="alice")
    app_reporter.run_changed(run_report(rerun))
    # the superseded autorun finishes late: its own check is completed, the rerun's is untouched
    app_reporter.run_changed(run_report(make_run(RunState.CANCELLED, run_id="run-autorun", error="superseded")))
    by_run = {c["external_id"]: c for c in checks(fake, PIPELINE_CHECK)}
    assert set(by_run) == {"run-autorun", "run-command"}
    assert (by_run["run-autorun"]["status"], by_run["run-autorun"]["conclusion"]) == ("completed", "cancelled")
    assert by_run["run-command"]["status"] == "in_progress"
    assert "`/run` by @alice" in by_run["run-command"]["output"]["summary"]


def test_an_older_run_creates_no_check_once_a_newer_run_exists(fake: FakeGitHub, store: SqlStore,
                                                              app_reporter: GitHubReporter) -> None:
    old = make_run(RunState.QUEUED, run_id="run-old")
    new = make_run(RunState.QUEUED, run_id="run-new", created=T0 + timedelta(minutes=1))
    assert store.create_run(old) and store.create_run(new)
    app_reporter.run_changed(run_report(new))
    app_reporter.run_changed(run_report(old))
    assert [c["external_id"] for c in checks(fake, PIPELINE_CHECK)] == ["run-new"]


def test_aggregate_check_always_concludes(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    repo = repo_ref(fake)
    app_reporter.head_summary(head_report(repo, HEAD, [], "", INSTALLATION_ID))
    [head] = checks(fake, "kfp-bot")
    assert (head["status"], head["conclusion"]) == ("completed", "success")
    assert head["output"]["title"] == "No pipelines affected by this change"
    assert "No pipelines affected by this change." in head["output"]["summary"]

    running = [make_run(RunState.RUNNING, url=RUN_URL), make_run(RunState.SUCCEEDED, pipeline="mnist", run_id="r2")]
    app_reporter.head_summary(head_report(repo, HEAD, running, "", INSTALLATION_ID))
    latest = checks(fake, "kfp-bot")[-1]
    assert (latest["status"], latest["conclusion"]) == ("in_progress", None)
    assert latest["output"]["title"] == "2 pipelines: 1 running, 1 succeeded"

    done = [make_run(RunState.FAILED, error="boom"), make_run(RunState.SUCCEEDED, pipeline="mnist", run_id="r2")]
    app_reporter.head_summary(head_report(repo, HEAD, done, "", INSTALLATION_ID))
    latest = checks(fake, "kfp-bot")[-1]
    assert (latest["status"], latest["conclusion"]) == ("completed", "failure")
    assert "| head-pose-pipeline | ❌ failed |" in latest["output"]["summary"]
    # completed → in progress needs a new check run (GitHub cannot reopen one); never more than that
    assert [c["status"] for c in checks(fake, "kfp-bot")] == ["completed", "completed"]


def test_aggregate_check_is_neutral_when_nothing_was_run(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    note = "This pull request is a draft: its pipelines run when it is ready for review."
    app_reporter.head_summary(head_report(repo_ref(fake), HEAD, [], note, INSTALLATION_ID))
    [head] = checks(fake, "kfp-bot")
    assert (head["status"], head["conclusion"]) == ("completed", "neutral")
    assert note in head["output"]["summary"]


# -- token mode: commit statuses --------------------------------------------------------------------


def test_token_mode_reports_commit_statuses(fake: FakeGitHub, token_reporter: GitHubReporter) -> None:
    token_reporter.run_changed(run_report(make_run(RunState.RUNNING, url=RUN_URL)))
    token_reporter.run_changed(run_report(make_run(RunState.FAILED, url=RUN_URL, error="x" * 400)))
    token_reporter.head_summary(head_report(repo_ref(fake), HEAD, [make_run(RunState.FAILED)], "", None))
    statuses = fake.statuses(REPO, HEAD)
    assert [(s["context"], s["state"]) for s in statuses] == [
        (PIPELINE_CHECK, "pending"), (PIPELINE_CHECK, "failure"), ("kfp-bot", "failure")]
    assert statuses[0]["target_url"] == RUN_URL
    assert statuses[1]["description"].startswith("Failed after 1m 30s: xxx")
    assert len(statuses[1]["description"]) <= 140
    assert statuses[2]["description"] == "1 pipeline: 1 failed"
    assert fake.check_runs(REPO, HEAD) == []


@pytest.mark.parametrize(("state", "expected"), [
    (RunState.QUEUED, "pending"), (RunState.SUCCEEDED, "success"), (RunState.ERROR, "error"),
    (RunState.CANCELLED, "error"), (RunState.SKIPPED, "success"),
])
def test_token_mode_state_mapping(fake: FakeGitHub, token_reporter: GitHubReporter, state: RunState,
                                  expected: str) -> None:
    token_reporter.run_changed(run_report(make_run(state)))
    assert [s["state"] for s in fake.statuses(REPO, HEAD)] == [expected]


def test_token_mode_does_not_overwrite_a_newer_runs_status(fake: FakeGitHub, store: SqlStore,
                                                           token_reporter: GitHubReporter) -> None:
    old = make_run(RunState.CANCELLED, run_id="run-old")
    new = make_run(RunState.RUNNING, run_id="run-new", created=T0 + timedelta(minutes=1))
    assert store.create_run(old) and store.create_run(new)
    token_reporter.run_changed(run_report(new))
    token_reporter.run_changed(run_report(old))
    assert [s["state"] for s in fake.statuses(REPO, HEAD)] == ["pending"]


# -- the PR comment, reactions, replies -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["app", "token"])
def test_pull_comment_is_created_once_then_edited(fake: FakeGitHub, request: pytest.FixtureRequest,
                                                  mode: str) -> None:
    reporter: GitHubReporter = request.getfixturevalue(f"{mode}_reporter")
    repo = repo_ref(fake)
    reporter.pull_summary(pull_report(repo, PR, [make_run(RunState.RUNNING, url=RUN_URL)], INSTALLATION_ID))
    reporter.pull_summary(pull_report(repo, PR, [make_run(RunState.SUCCEEDED, url=RUN_URL)], INSTALLATION_ID))
    [comment] = fake.comments(REPO, PR)
    assert comment["body"].startswith(SUMMARY_MARKER)
    assert "| head-pose-pipeline | ✅ succeeded | autorun |" in comment["body"]
    assert comment["user"]["login"] == (BOT_LOGIN if mode == "app" else TOKEN_USER)
    assert len(fake.requests_to("POST", r"/repos/octo/monorepo/issues/7/comments")) == 1
    assert len(fake.requests_to("PATCH", r"/repos/octo/monorepo/issues/comments/\d+")) == 1


@pytest.mark.parametrize("mode", ["app", "token"])
def test_pull_comment_is_found_by_its_marker_when_the_store_lost_it(fake: FakeGitHub, store: SqlStore,
                                                                    tmp_path: Path, mode: str) -> None:
    # App mode recognises its comments by the App that wrote them; token mode by the bot's login
    clients = clients_for(app_settings(fake) if mode == "app" else token_settings(fake))
    login = None if mode == "app" else TOKEN_USER
    repo = repo_ref(fake)
    # someone quoted the marker first: their comment is not the bot's and must stay untouched
    quoted = fake.add_comment(REPO, PR, f"{SUMMARY_MARKER}\nwhy is it red?", author="alice")
    GitHubReporter(clients, store, bot_login=login).pull_summary(
        pull_report(repo, PR, [make_run(RunState.RUNNING)], INSTALLATION_ID))
    with SqlStore(f"sqlite:///{tmp_path / 'fresh.db'}") as fresh:
        GitHubReporter(clients, fresh, bot_login=login).pull_summary(pull_report(
            repo, PR, [make_run(RunState.FAILED, error="boom")], INSTALLATION_ID))
    alice_comment, bot_comment = fake.comments(REPO, PR)
    assert "❌ failed" in bot_comment["body"]
    assert alice_comment["body"] == quoted["body"]
    assert len(fake.requests_to("POST", r"/repos/octo/monorepo/issues/7/comments")) == 1


def test_concurrent_workers_create_one_comment(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    repo = repo_ref(fake)
    runs = [make_run(RunState.RUNNING)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: app_reporter.pull_summary(pull_report(repo, PR, runs, INSTALLATION_ID)), range(4)))
    assert len(fake.comments(REPO, PR)) == 1


def test_pull_comment_is_recreated_when_someone_deleted_it(fake: FakeGitHub, app_reporter: GitHubReporter,
                                                           app_clients: GitHubClients) -> None:
    repo = repo_ref(fake)
    app_reporter.pull_summary(pull_report(repo, PR, [make_run(RunState.RUNNING)], INSTALLATION_ID))
    [first] = fake.comments(REPO, PR)
    app_clients.repo(REPO, INSTALLATION_ID).get_issue(PR).get_comment(first["id"]).delete()
    app_reporter.pull_summary(pull_report(repo, PR, [make_run(RunState.SUCCEEDED)], INSTALLATION_ID))
    [second] = fake.comments(REPO, PR)
    assert second["id"] != first["id"] and "✅ succeeded" in second["body"]


def test_acknowledge_reacts_to_the_command_comment(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    command = fake.add_comment(REPO, PR, "/run head-pose-pipeline epochs=1", author="alice")
    app_reporter.acknowledge(repo_ref(fake), command["id"], INSTALLATION_ID)
    app_reporter.acknowledge(repo_ref(fake), command["id"], INSTALLATION_ID)  # redelivered: still one
    assert [(r["content"], r["user"]["login"]) for r in fake.reactions(command["id"])] == [("+1", BOT_LOGIN)]


def test_a_reaction_is_repeated_after_a_5xx_and_stays_one(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    # GitHub answers 200 with the existing reaction, so this write is safe to repeat.
    command = fake.add_comment(REPO, PR, "/run head-pose-pipeline", author="alice")
    fake.fail_next("POST", r"/repos/octo/monorepo/issues/comments/\d+/reactions", 502, after=True)
    app_reporter.acknowledge(repo_ref(fake), command["id"], INSTALLATION_ID)
    assert [r["content"] for r in fake.reactions(command["id"])] == ["+1"]
    assert [r.status for r in fake.requests_to("POST", r"/repos/octo/monorepo/issues/comments/\d+/reactions")] \
        == [502, 200]


def test_reply_adds_a_new_comment(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    body = command_refused("mallory", "only people with write access can run pipelines")
    app_reporter.reply(repo_ref(fake), PR, body, INSTALLATION_ID)
    assert [c["body"] for c in fake.comments(REPO, PR)] == [body]


# -- failures ---------------------------------------------------------------------------------------


def test_a_502_is_retried_and_shows_one_result(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    fake.fail_next("POST", r"/repos/octo/monorepo/issues/\d+/comments", 502)
    app_reporter.reply(repo_ref(fake), PR, "hello", INSTALLATION_ID)
    assert [c["body"] for c in fake.comments(REPO, PR)] == ["hello"]
    assert [r.status for r in fake.requests_to("POST", r"/repos/octo/monorepo/issues/7/comments")] == [502, 201]


def test_persistent_5xx_gives_up_with_a_clear_error(fake: FakeGitHub, app_reporter: GitHubReporter) -> None:
    fake.fail_next("PATCH", r"/repos/octo/monorepo/check-runs/\d+", 503, times=50)
    app_reporter.run_changed(run_report(make_run(RunState.QUEUED)))
    with pytest.raises(GitHubError) as caught:
        app_reporter.run_changed(run_report(make_run(RunState.RUNNING)))
    message = str(caught.value)
    assert message.startswith("GitHub: updating check run 'kfp-bot / head-pose-pipeline' on "
                              f"octo/monorepo@{HEAD[:12]} failed after 3 retries")
    assert "503" in message and "ghs_" not in message
    assert len(fake.requests_to("PATCH", r"/repos/octo/monorepo/check-runs/\d+")) == 4


def test_a_missing_permission_is_named(fake: FakeGitHub, store: SqlStore) -> None:
    clients = clients_for(app_settings(fake, checks="read", issues="write", pull_requests="write"))
    with pytest.raises(GitHubError) as caught:
        GitHubReporter(clients, store).run_changed(run_report(make_run(RunState.QUEUED)))
    assert caught.value.status == 403
    assert "creating check run 'kfp-bot / head-pose-pipeline'" in str(caught.value)
    assert "Resource not accessible by integration" in str(caught.value)
    assert "lacks a permission" in (caught.value.hint or "")


# -- writes GitHub may have done, rate limits, size limits ----------------------------------------

COMMENTS = r"/repos/octo/monorepo/issues/7/comments"
CHECK_RUNS = r"/repos/octo/monorepo/check-runs"


def test_a_comment_written_before_a_502_is_found_not_written_again(fake: FakeGitHub,
                                                                   app_reporter: GitHubReporter) -> None:
    fake.fail_next("POST", COMMENTS, 502, after=True)
    app_reporter.pull_summary(pull_report(repo_ref(fake), PR, [make_run(RunState.RUNNING)], INSTALLATION_ID))
    [comment] = fake.comments(REPO, PR)
    assert comment["body"].startswith(SUMMARY_MARKER)
    assert [r.status for r in fake.requests_to("POST", COMMENTS)] == [502]

    fake.fail_next("POST", COMMENTS, 503, after=True)
    app_reporter.reply(repo_ref(fake), PR, "hello", INSTALLATION_ID)
    assert [c["body"] for c in fake.comments(REPO, PR)][1:] == ["hello"]
    assert [r.status for r in fake.requests_to("POST", COMMENTS)] == [502, 503]


def test_a_check_run_created_before_a_500_is_found_and_updated(fake: FakeGitHub,
                                                               app_reporter: GitHubReporter) -> None:
    fake.fail_next("POST", CHECK_RUNS, 500, after=True)
    app_reporter.run_changed(run_report(make_run(RunState.QUEUED)))
    app_reporter.run_changed(run_report(make_run(RunState.RUNNING, url=RUN_URL)))
    [check] = checks(fake, PIPELINE_CHECK)
    assert (check["status"], check["details_url"]) == ("in_progress", RUN_URL)
    assert [r.status for r in fake.requests_to("POST", CHECK_RUNS)] == [500]


def test_a_check_run_not_created_before_a_502_is_created_once(fake: FakeGitHub,
                                                              app_reporter: GitHubReporter) -> None:
    fake.fail_next("POST", CHECK_RUNS, 502)
    app_reporter.run_changed(run_report(make_run(RunState.QUEUED)))
    assert len(checks(fake, PIPELINE_CHECK)) == 1
    assert [r.status for r in fake.requests_to("POST", CHECK_RUNS)] == [502, 201]


def test_a_status_set_before_a_502_is_not_set_again(fake: FakeGitHub, token_reporter: GitHubReporter) -> None:
    fake.fail_next("POST", r"/repos/octo/monorepo/statuses/\w+", 502, after=True)
    token_reporter.run_changed(run_report(make_run(RunState.RUNNING)))
    [status] = fake.statuses(REPO, HEAD)
    assert status["state"] == "pending"
    assert len(fake.requests_to("POST", r"/repos/octo/monorepo/statuses/\w+")) == 1


@pytest.mark.parametrize("status, headers", [
    (429, {"Retry-After": "0"}),  # secondary rate limit
    (429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}),  # primary, as a 429, reset passed
    (403, {"Retry-After": "0"}),  # secondary rate limit, as a 403
])
def test_a_rate_limited_write_waits_and_is_done_once(fake: FakeGitHub, app_reporter: GitHubReporter,
                                                     status: int, headers: dict[str, str]) -> None:
    fake.fail_next("POST", CHECK_RUNS, status, headers=headers)
    app_reporter.run_changed(run_report(make_run(RunState.QUEUED)))
    assert len(checks(fake, PIPELINE_CHECK)) == 1
    assert [r.status for r in fake.requests_to("POST", CHECK_RUNS)] == [status, 201]


@pytest.mark.parametrize("status, headers", [
    (429, {"Retry-After": "3600"}),
    (403, {"Retry-After": "600", "X-RateLimit-Remaining": "12"}),
    (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999"}),  # primary
])
def test_a_rate_limit_longer_than_the_step_waits_is_rescheduled(fake: FakeGitHub, app_reporter: GitHubReporter,
                                                                status: int, headers: dict[str, str]) -> None:
    fake.fail_next("POST", COMMENTS, status, headers=headers)
    with pytest.raises(GitHubError) as caught:
        app_reporter.reply(repo_ref(fake), PR, "hello", INSTALLATION_ID)
    assert isinstance(caught.value, ConnectionError)  # a Pub/Sub push answers 503: redelivered later
    assert "rate limited" in str(caught.value) and "longer than the bot waits (5 s)" in str(caught.value)
    assert fake.comments(REPO, PR) == [] and len(fake.requests_to("POST", COMMENTS)) == 1


def test_a_summary_over_65535_bytes_is_cut_with_a_visible_note(fake: FakeGitHub,
                                                                app_reporter: GitHubReporter) -> None:
    error = "💥" * 19_000  # under the bot's character limits (20,000), 76,000 bytes
    app_reporter.run_changed(run_report(make_run(RunState.ERROR, error=error)))
    [check] = checks(fake, PIPELINE_CHECK)
    summary = check["output"]["summary"]
    assert 65_000 < len(summary.encode("utf-8")) <= 65_535
    assert summary.startswith("## ⚠️ head-pose-pipeline: error") and "💥" * 1000 in summary
    assert summary.rstrip().endswith("_… truncated: the full text was longer than GitHub allows._")
