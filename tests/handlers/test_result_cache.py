"""The result cache, end to end: a head that compiles to what already succeeded is not run again.

A pull request's run succeeds; a new head only adds a comment to the pipeline file: its run
compiles to the same package with the same parameters, so it ends `succeeded` without running,
saying since which run; `/run NAME` still runs it for real.
"""

from __future__ import annotations

from handlers.run_results import load_results
from tests.handlers.conftest import PR, Bot
from tests.handlers.test_pull_request import HELLO_SETTINGS, change_hello

HELLO_FILE = "pipelines/hello-pipeline/hello-pipeline.py"


def states(run: dict) -> list[str]:
    return [t["state"] for t in run["transitions"]]


def test_a_head_that_compiles_to_a_succeeded_run_is_not_run_again(bot: Bot) -> None:
    first = change_hello(bot, "tuned", repeat=4)
    bot.open_pull(first)
    bot.settle()
    [ran] = bot.runs(pr=PR)
    assert states(ran)[-2:] == ["running", "succeeded"]

    settings = (bot.repo.root / HELLO_SETTINGS).read_text().replace("repeat: 3", "repeat: 4")
    pipeline = (bot.repo.root / HELLO_FILE).read_text() + "\n# reviewed: nothing compiled changes\n"
    second = bot.branch("tuned-and-commented", {HELLO_SETTINGS: settings, HELLO_FILE: pipeline})
    bot.open_pull(second, action="synchronize")
    bot.settle()

    latest = next(r for r in bot.runs(pr=PR) if r["sha"] == second)
    assert latest["state"] == "succeeded"
    assert "running" not in states(latest)
    assert f"unchanged since run {ran['id']} (succeeded)" in latest["transitions"][-1]["detail"]
    check = bot.checks(second)["kfp-bot / hello-pipeline"]
    assert check["conclusion"] == "success"
    assert f"unchanged since run {ran['id']}" in check["output"]["summary"] + check["output"]["title"]
    # It shows the results of the run it reuses.
    reused, original = load_results(bot.services.store, latest["id"]), load_results(bot.services.store, ran["id"])
    assert original is not None and dict(original.outputs) == {"greeting": "Hello, kfp-bot!", "score": 4.0}
    assert reused is not None and reused.outputs == original.outputs and ran["id"] in reused.note
    assert "| score | `4.0` |" in check["output"]["summary"]

    bot.comment("/run hello-pipeline")
    bot.settle()
    forced = [r for r in bot.runs(pr=PR) if r["sha"] == second and r["trigger"] == "command"]
    assert len(forced) == 1 and states(forced[0])[-2:] == ["running", "succeeded"]


def test_different_parameters_run_again(bot: Bot) -> None:
    bot.open_pull(change_hello(bot, "four", repeat=4))
    bot.settle()
    five = change_hello(bot, "five", repeat=5)
    bot.open_pull(five, action="synchronize")
    bot.settle()

    latest = next(r for r in bot.runs(pr=PR) if r["sha"] == five)
    assert states(latest)[-2:] == ["running", "succeeded"]
