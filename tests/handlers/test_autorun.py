"""Autorun gated by a label or by paths (`.kfp-bot.yaml` on the default branch), end to end.

A pull request without the label is planned and its check says what it waits for; adding the
label runs it once, however GitHub orders `opened` and `labeled`; another label starts nothing;
a pipeline whose `autorun.paths` the change does not reach is held with the patterns named.
"""

from __future__ import annotations

from tests.handlers.conftest import PR, Bot
from tests.handlers.test_pull_request import change_hello

LABEL = "run-pipelines"


def on_main(bot: Bot, config: str) -> None:
    """Commit `.kfp-bot.yaml` on main (autorun is trusted: the default branch's applies)."""
    bot.repo.write(".kfp-bot.yaml", config)
    bot.base = bot.repo.commit("autorun rule")
    bot.github.add_commit("octo-org/kfp-monorepo", bot.base, branch="main")


def states(bot: Bot, sha: str) -> list[tuple[str, str]]:
    return sorted((r["state"], r["trigger"]) for r in bot.runs(pr=PR) if r["sha"] == sha)


def test_a_pull_request_waits_for_the_label_then_runs_once(bot: Bot) -> None:
    on_main(bot, f"autorun:\n  label: {LABEL}\n")
    head = change_hello(bot)
    bot.open_pull(head, labels=("bug",))
    bot.settle()
    [held] = bot.runs(pr=PR)
    assert held["state"] == "skipped"
    check = bot.checks(head)["kfp-bot / hello-pipeline"]
    assert f"only with the label `{LABEL}`" in check["output"]["summary"] + check["output"]["title"]

    bot.open_pull(head, action="labeled", labels=("bug",), label="bug")
    bot.settle()
    assert states(bot, head) == [("skipped", "autorun")]

    bot.open_pull(head, action="labeled", labels=("bug", LABEL), label=LABEL)
    bot.settle()
    assert states(bot, head) == [("skipped", "autorun"), ("succeeded", "autorun")]
    assert bot.checks(head)["kfp-bot / hello-pipeline"]["conclusion"] == "success"

    bot.open_pull(head, action="labeled", labels=("bug", LABEL), label=LABEL)  # delivered again
    bot.settle()
    assert states(bot, head) == [("skipped", "autorun"), ("succeeded", "autorun")]


def test_opened_with_the_label_runs_once_with_its_labeled_event(bot: Bot) -> None:
    """GitHub sends `labeled` for each label a pull request is created with, after `opened`."""
    on_main(bot, f"autorun:\n  label: {LABEL}\n")
    head = change_hello(bot)
    bot.open_pull(head, labels=(LABEL,))
    bot.open_pull(head, action="labeled", labels=(LABEL,), label=LABEL)
    bot.settle()
    assert states(bot, head) == [("succeeded", "autorun")]


def test_a_pipeline_the_change_does_not_reach_through_its_paths_is_held(bot: Bot) -> None:
    on_main(bot, "pipelines:\n  hello-pipeline:\n    autorun:\n      paths: ['utils/**']\n")
    head = change_hello(bot)
    bot.open_pull(head)
    bot.settle()
    [held] = bot.runs(pr=PR)
    assert held["state"] == "skipped"
    assert "only when the change reaches utils/**" in held["transitions"][-1]["detail"]
