"""PR comment commands, end to end: reactions, replies and runs a user sees on the pull request."""

from __future__ import annotations

import pytest

from tests.handlers.conftest import PR, READER, REPO, WRITER, Bot


@pytest.fixture
def opened(bot: Bot) -> str:
    """A PR whose change affects no pipeline (a README edit): commands choose what runs."""
    head = bot.branch("docs", {"README.md": "# words only\n"})
    bot.open_pull(head)
    bot.settle()
    return head


def test_run_with_overrides_is_acknowledged_and_runs_at_the_head(bot: Bot, opened: str) -> None:
    answer, comment_id = bot.comment("Trying a bigger run:\n/run hello-pipeline repeat=5 name='Ada L'")
    assert answer.status_code == 202
    bot.settle()

    assert [r["content"] for r in bot.github.reactions(comment_id)] == ["+1"]
    [run] = bot.runs(pr=PR)
    assert (run["pipeline"], run["sha"], run["trigger"], run["triggered_by"]) == (
        "hello-pipeline", opened, "command", WRITER)
    assert run["state"] == "succeeded"
    assert run["parameters"] == {"name": "Ada L", "repeat": 5, "factor": 0.5}
    assert run["overrides"] == {"repeat": "5", "name": "Ada L"}
    assert any("hello-pipeline" in reply and "/run" not in reply.splitlines()[0] for reply in bot.replies())
    assert bot.checks(opened)["kfp-bot / hello-pipeline"]["conclusion"] == "success"


def test_an_unknown_pipeline_gets_a_reply_listing_the_valid_ones(bot: Bot, opened: str) -> None:
    bot.comment("/run hello-pipelin")
    bot.settle()
    reply = bot.replies()[-1]
    assert "unknown pipeline 'hello-pipelin'" in reply
    for name in ("hello-pipeline", "training-pipeline", "dataset-pipeline"):
        assert name in reply
    assert bot.runs(pr=PR) == []


@pytest.mark.parametrize("command,expected", [
    ("/run hello-pipeline repeat=five", "repeat: expected an integer, got 'five'"),
    ("/run hello-pipeline repeats=5", "did you mean 'repeat'"),
])
def test_a_bad_parameter_gets_a_reply_and_starts_nothing(bot: Bot, opened: str, command: str,
                                                         expected: str) -> None:
    bot.comment(command)
    bot.settle()
    reply = bot.replies()[-1]
    assert expected in reply
    assert "factor" in reply  # the declared inputs are listed
    assert bot.runs(pr=PR) == []


def test_a_user_without_write_access_is_refused_with_the_reason(bot: Bot, opened: str) -> None:
    bot.comment("/run hello-pipeline", author=READER)
    bot.settle()
    assert "write access" in bot.replies()[-1]
    assert bot.runs(pr=PR) == []


def test_help_and_plan_answer_anyone(bot: Bot, opened: str) -> None:
    bot.comment("/help", author=READER)
    bot.settle()
    help_text = bot.replies()[-1]
    assert "/run" in help_text and "hello-pipeline" in help_text
    bot.comment("/plan", author=READER)
    bot.settle()
    assert "No pipelines" in bot.replies()[-1] or "no pipeline" in bot.replies()[-1].lower()


def test_an_invalid_command_line_is_answered(bot: Bot, opened: str) -> None:
    bot.comment("/run hello-pipeline name='unterminated")
    bot.settle()
    assert "cannot parse arguments" in bot.replies()[-1]


def test_comments_of_the_bot_itself_are_ignored(bot: Bot, opened: str) -> None:
    from tests.support.webhooks import load_payload

    payload = load_payload("issue_comment.created", {
        "repository.full_name": REPO, "issue.number": PR, "comment.body": "/run hello-pipeline",
        "comment.user.login": "kfp-bot[bot]", "comment.user.type": "Bot"})
    answer = bot.deliver("issue_comment", payload)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"


def test_run_all_runs_every_affected_pipeline(bot: Bot) -> None:
    settings = bot.repo.root / "pipelines/hello-pipeline/settings.yaml"
    head = bot.branch("hello", {"pipelines/hello-pipeline/settings.yaml":
                                settings.read_text().replace("repeat: 3", "repeat: 2")})
    bot.open_pull(head, draft=True)
    bot.settle()
    bot.comment("/run all")
    bot.settle()
    states = {(r["trigger"], r["state"]) for r in bot.runs(pr=PR)}
    assert states == {("autorun", "skipped"), ("command", "succeeded")}


def test_cancel_stops_an_unfinished_run(bot: Bot) -> None:
    from tests.handlers.test_pull_request import SLOW_PIPELINE, _wait_for_state

    head = bot.branch("slow", {"pipelines/slow-pipeline/slow-pipeline.py": SLOW_PIPELINE,
                               "pipelines/slow-pipeline/settings.yaml": "arguments:\n  seconds: 120\n"})
    bot.open_pull(head)
    _wait_for_state(bot, head, "running")
    bot.comment("/cancel slow-pipeline")
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "cancelled"
    assert f"cancelled by @{WRITER}" in run["transitions"][-1]["detail"]
