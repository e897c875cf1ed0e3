"""Redelivering the App's failed webhook deliveries, through PyGithub against the fake GitHub.

The fake keeps the App's delivery attempts like GitHub (tests/fakes/github_hooks.py); these tests
seed what happened while the bot was down and assert on what the bot asked GitHub to resend.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.github import GitHubError
from bot.github.deliveries import (
    AppHookDeliveries,
    NoRedelivery,
    RedeliveryPolicy,
    RedeliveryReport,
    webhook_redeliverer,
)
from tests.fakes.github import FakeGitHub
from tests.fakes.github_hooks import AppWebhook
from tests.support.github_clients import APP_ID, app_settings, clients_for, token_settings
from tests.support.webhooks import load_payload

NOW = datetime.now(UTC)
REDELIVER = r"/app/hook/deliveries/\d+/attempts"


def deliveries(fake: FakeGitHub, policy: RedeliveryPolicy = RedeliveryPolicy()) -> AppHookDeliveries:
    settings = app_settings(fake)
    return AppHookDeliveries(settings, clients_for(settings), policy=policy, seconds_between_requests=None,
                             seconds_between_writes=None)


def failed(hook: AppWebhook, event: str = "issue_comment", *, status: int = 503, ago: timedelta = timedelta(hours=1),
           guid: str | None = None) -> dict[str, Any]:
    name = {"issue_comment": "issue_comment.created", "pull_request": "pull_request.opened"}.get(event, event)
    return hook.add_delivery(event, load_payload(name), status_code=status, at=NOW - ago, guid=guid)


def redelivered_ids(fake: FakeGitHub) -> list[int]:
    return [int(r.path.split("/")[4]) for r in fake.requests_to("POST", REDELIVER)]


def test_failed_deliveries_are_redelivered_oldest_first_with_the_apps_jwt(fake: FakeGitHub) -> None:
    hooks = deliveries(fake)
    hook = AppWebhook(fake, APP_ID)
    opened = failed(hook, "pull_request", status=503, ago=timedelta(hours=5))
    comment = failed(hook, "issue_comment", status=0, ago=timedelta(hours=2))  # nothing answered
    failed(hook, "push", status=202, ago=timedelta(hours=1))

    report = hooks.redeliver_failed(lambda guid: False)

    assert report == RedeliveryReport(listed=3, failed=2, redelivered=2)
    assert redelivered_ids(fake) == [opened["id"], comment["id"]]
    for request in fake.requests_to("POST", REDELIVER) + fake.requests_to("GET", "/app/hook/deliveries"):
        assert request.auth_scheme == "Bearer" and request.actor == f"app:{APP_ID}"
        assert request.status in (200, 202)
    assert [a["redelivery"] for a in hook.attempts(opened["guid"])] == [False, True]


def test_an_event_that_was_delivered_later_is_not_resent(fake: FakeGitHub) -> None:
    hooks = deliveries(fake)
    hook = AppWebhook(fake, APP_ID)
    first = failed(hook, status=503, ago=timedelta(hours=3))
    hook.add_delivery("issue_comment", load_payload("issue_comment.created"), status_code=202,
                      guid=first["guid"], at=NOW - timedelta(hours=2), redelivery=True)

    report = hooks.redeliver_failed(lambda guid: False)

    assert report == RedeliveryReport(listed=2, failed=0)
    assert redelivered_ids(fake) == []


def test_an_event_the_bot_has_recorded_is_not_resent(fake: FakeGitHub) -> None:
    """GitHub gave up waiting (a timeout) but the bot had accepted it: a redelivery would be a duplicate."""
    hooks = deliveries(fake)
    hook = AppWebhook(fake, APP_ID)
    timed_out = failed(hook, status=0)
    lost = failed(hook, status=503)
    asked: list[str] = []

    def seen(guid: str) -> bool:
        asked.append(guid)
        return guid == timed_out["guid"]

    report = hooks.redeliver_failed(seen)

    assert report == RedeliveryReport(listed=2, failed=2, redelivered=1, already_recorded=1)
    assert redelivered_ids(fake) == [lost["id"]]
    assert sorted(asked) == sorted([timed_out["guid"], lost["guid"]])


def test_only_the_last_three_days_are_read_and_at_most_the_cap_is_resent_per_pass(fake: FakeGitHub) -> None:
    hooks = deliveries(fake, RedeliveryPolicy(max_redeliveries=20))
    hook = AppWebhook(fake, APP_ID)
    old = [failed(hook, ago=timedelta(days=3, hours=i + 1)) for i in reversed(range(150))]
    recent = [failed(hook, ago=timedelta(minutes=10 * (120 - i))) for i in range(120)]

    report = hooks.redeliver_failed(lambda guid: False)

    assert report == RedeliveryReport(listed=120, failed=120, redelivered=20, deferred=100)
    assert redelivered_ids(fake) == [d["id"] for d in recent[:20]]  # the oldest of the window first
    assert not set(redelivered_ids(fake)) & {d["id"] for d in old}
    pages = fake.requests_to("GET", "/app/hook/deliveries")
    assert len(pages) == 2  # the second page reaches past three days: no third
    assert pages[0].query == {"per_page": "100"}
    assert pages[1].query["cursor"] and pages[1].query["per_page"] == "100"

    fake.clear_requests()
    assert hooks.redeliver_failed(lambda guid: False).redelivered == 20  # the next pass takes the next 20
    assert redelivered_ids(fake) == [d["id"] for d in recent[20:40]]


def test_an_event_refused_every_time_is_given_up_with_a_warning(fake: FakeGitHub,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    hooks = deliveries(fake, RedeliveryPolicy(max_attempts=3))
    hook = AppWebhook(fake, APP_ID)
    first = failed(hook, status=400, ago=timedelta(hours=4))

    for _ in range(2):  # nothing answers the redeliveries (the hook has no URL): they fail too
        assert hooks.redeliver_failed(lambda guid: False).redelivered == 1
    with caplog.at_level(logging.WARNING, logger="kfp_bot.github.deliveries"):
        report = hooks.redeliver_failed(lambda guid: False)

    assert report == RedeliveryReport(listed=3, failed=1, exhausted=1)
    assert len(hook.attempts(first["guid"])) == 3
    assert any(first["guid"] in r.getMessage() and "failed 3 times" in r.getMessage() for r in caplog.records)


def test_a_redelivery_github_refuses_is_counted_and_the_others_go_on(fake: FakeGitHub,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    hooks = deliveries(fake)
    hook = AppWebhook(fake, APP_ID)
    refused = failed(hook, ago=timedelta(hours=2))
    other = failed(hook, ago=timedelta(hours=1))
    fake.fail_next("POST", rf"/app/hook/deliveries/{refused['id']}/attempts", 422,
                   body={"message": "Validation Failed"})

    with caplog.at_level(logging.ERROR, logger="kfp_bot.github.deliveries"):
        report = hooks.redeliver_failed(lambda guid: False)

    assert report == RedeliveryReport(listed=2, failed=2, redelivered=1, errors=1)
    assert [r.status for r in fake.requests_to("POST", REDELIVER)] == [422, 202]
    assert redelivered_ids(fake)[-1] == other["id"]
    assert any(refused["guid"] in r.getMessage() and "422" in r.getMessage() for r in caplog.records)


def test_github_refusing_the_list_is_a_clear_error(fake: FakeGitHub) -> None:
    hooks = deliveries(fake)
    fake.fail_next("GET", "/app/hook/deliveries", 401)

    with pytest.raises(GitHubError) as caught:
        hooks.redeliver_failed(lambda guid: False)

    assert caught.value.status == 401
    assert "listing the App's webhook deliveries failed: 401 Bad credentials" in str(caught.value)
    assert "KFP_BOT_GITHUB_APP_ID" in (caught.value.hint or "")


def test_with_a_token_redelivery_is_skipped_and_says_why(fake: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    settings = token_settings(fake)
    redeliverer = webhook_redeliverer(settings, clients_for(settings))

    with caplog.at_level(logging.INFO, logger="kfp_bot.github.deliveries"):
        report = redeliverer.redeliver_failed(lambda guid: False)

    assert isinstance(redeliverer, NoRedelivery)
    assert report.skipped and "KFP_BOT_GITHUB_TOKEN" in report.skipped
    assert report.to_json() == {"skipped": report.skipped}
    assert any("webhook redelivery skipped" in r.getMessage() for r in caplog.records)
    assert fake.requests == []


def test_in_app_mode_the_redeliverer_is_the_apps_hook(fake: FakeGitHub) -> None:
    settings = app_settings(fake)
    redeliverer = webhook_redeliverer(settings, clients_for(settings), seconds_between_requests=None,
                                      seconds_between_writes=None)
    failed(AppWebhook(fake, APP_ID))

    assert isinstance(redeliverer, AppHookDeliveries)
    assert redeliverer.redeliver_failed(lambda guid: False).redelivered == 1
