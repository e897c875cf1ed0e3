"""The checks' "Re-run" link and their Run / Cancel buttons, end to end: `check_run` webhooks
(GitHub's own example payloads, adapted) for the checks the bot created on the fake GitHub."""

from __future__ import annotations

from tests.handlers.conftest import MAINTAINER, PR, READER, WRITER, Bot
from tests.handlers.test_pull_request import SLOW_PIPELINE, _wait_for_state, change_hello

HELLO_CHECK = "kfp-bot / hello-pipeline"


def test_re_run_runs_that_pipeline_again_at_that_commit_for_someone_with_write_access(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head)
    bot.settle()
    [first] = bot.runs(pr=PR)
    check = bot.checks(head)[HELLO_CHECK]
    assert bot.github.actions(check["id"]) == []  # a finished run has no buttons

    refused = bot.press(check, by=READER)
    bot.settle()
    assert refused.status_code == 202
    assert any(f"@{READER}" in reply and "write access" in reply for reply in bot.replies())
    assert len(bot.runs(pr=PR)) == 1

    bot.press(check, by=MAINTAINER)
    bot.settle()
    again, _ = bot.runs(pr=PR)
    assert (again["pipeline"], again["sha"], again["state"]) == ("hello-pipeline", head, "succeeded")
    assert (again["trigger"], again["triggered_by"]) == ("command", MAINTAINER)
    assert again["id"] != first["id"]
    hello_checks = [c for c in bot.github.check_runs("octo-org/kfp-monorepo", head) if c["name"] == HELLO_CHECK]
    assert [c["external_id"] for c in hello_checks] == [first["id"], again["id"]]
    assert bot.checks(head)[HELLO_CHECK]["conclusion"] == "success"


def test_a_skipped_draft_pipeline_gets_a_run_button_that_runs_it(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head, draft=True)
    bot.settle()
    check = bot.checks(head)[HELLO_CHECK]
    assert check["conclusion"] == "neutral"
    assert bot.github.actions(check["id"]) == [{"label": "Run", "description": "Run this pipeline at this commit",
                                 "identifier": "run"}]

    bot.press(check, by=WRITER, button="run")
    bot.settle()
    ran, skipped = bot.runs(pr=PR)
    assert (ran["state"], ran["triggered_by"], skipped["state"]) == ("succeeded", WRITER, "skipped")
    assert bot.checks(head)[HELLO_CHECK]["conclusion"] == "success"


def test_the_cancel_button_stops_an_unfinished_run(bot: Bot) -> None:
    head = bot.branch("slow", {"pipelines/slow-pipeline/slow-pipeline.py": SLOW_PIPELINE,
                               "pipelines/slow-pipeline/settings.yaml": "arguments:\n  seconds: 120\n"})
    bot.open_pull(head)
    _wait_for_state(bot, head, "running")
    check = bot.checks(head)["kfp-bot / slow-pipeline"]
    assert bot.github.actions(check["id"]) == [{"label": "Cancel", "description": "Cancel this pipeline run",
                                 "identifier": "cancel"}]

    bot.press(check, by=WRITER, button="cancel")
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "cancelled" and run["transitions"][-1]["detail"] == f"cancelled by @{WRITER}"
    shown = bot.checks(head)["kfp-bot / slow-pipeline"]
    assert (shown["conclusion"], bot.github.actions(shown["id"])) == ("cancelled", [])


def test_re_run_all_checks_runs_the_heads_affected_pipelines_again(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head)
    bot.settle()
    bot.rerun_suite(head, by=READER)
    bot.settle()
    assert len(bot.runs(pr=PR)) == 1 and any("write access" in reply for reply in bot.replies())

    bot.rerun_suite(head, by=MAINTAINER)
    bot.settle()
    again, first = bot.runs(pr=PR)
    assert (again["pipeline"], again["sha"], again["state"], again["triggered_by"]) == (
        "hello-pipeline", head, "succeeded", MAINTAINER)
    assert first["trigger"] == "autorun"
    assert bot.checks(head)["kfp-bot"]["conclusion"] == "success"

    bot.press(bot.checks(head)["kfp-bot"], by=WRITER)  # "Re-run" on the aggregate check: the same
    bot.settle()
    assert [(r["triggered_by"], r["state"]) for r in bot.runs(pr=PR)][0] == (WRITER, "succeeded")
    assert len(bot.runs(pr=PR)) == 3


def test_a_forks_held_pipeline_runs_from_its_button_for_a_maintainer_only(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head, author="outsider", fork="outsider/kfp-monorepo")
    bot.settle()
    check = bot.checks(head)[HELLO_CHECK]
    assert bot.github.actions(check["id"])[0]["identifier"] == "run"

    bot.press(check, by="outsider", button="run")  # the author of a fork has no write access
    bot.settle()
    assert [r["state"] for r in bot.runs(pr=PR)] == ["skipped"]
    assert any("@outsider" in reply and "write access" in reply for reply in bot.replies())

    bot.press(check, by=MAINTAINER, button="run")  # as a maintainer's /run would
    bot.settle()
    ran, held = bot.runs(pr=PR)
    assert (ran["state"], ran["triggered_by"], held["state"]) == ("succeeded", MAINTAINER, "skipped")
