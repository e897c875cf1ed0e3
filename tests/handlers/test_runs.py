"""The life of a run across a restart of the bot, and when a step fails."""

from __future__ import annotations

from datetime import datetime, timezone

from handlers.models import Run, RunState, Trigger
from handlers.runs import recover_runs
from tests.handlers.conftest import PR, REPO, Bot
from tests.handlers.test_pull_request import change_hello
from tests.support.github_clients import INSTALLATION_ID


def left_behind(bot: Bot, head: str, run_id: str, state: RunState) -> Run:
    """A run that a previous process stored and never finished."""
    now = datetime.now(timezone.utc)
    run = Run(id=run_id, repo=REPO, pr=PR, sha=head, base_sha=bot.base, pipeline="hello-pipeline",
              trigger=Trigger.AUTORUN, state=RunState.QUEUED, created_at=now, updated_at=now,
              clone_url=str(bot.repo.root), installation_id=INSTALLATION_ID,
              plan={"name": "hello-pipeline", "components": []})
    assert bot.services.store.create_run(run)
    if state is not RunState.QUEUED:
        for step in (RunState.BUILDING, RunState.COMPILING, RunState.RUNNING):
            bot.services.store.transition(run_id, step)
            if step is state:
                break
    return run


def test_after_a_restart_unstarted_runs_resume_and_interrupted_ones_end_visibly(bot: Bot) -> None:
    head = change_hello(bot)
    left_behind(bot, head, "run-queued", RunState.QUEUED)
    left_behind(bot, head, "run-compiling", RunState.COMPILING)
    left_behind(bot, head, "run-running", RunState.RUNNING)

    assert recover_runs(bot.services.context) == 3
    bot.settle()

    states = {r["id"]: (r["state"], r["error"]) for r in bot.runs(pr=PR)}
    assert states["run-queued"] == ("succeeded", None)
    assert states["run-compiling"] == ("succeeded", None)
    state, error = states["run-running"]
    assert state == "error" and "restarted" in error and "/run hello-pipeline" in error
    assert bot.runs(active="true") == []


def test_a_step_that_crashes_ends_the_run_as_error_with_the_reason(bot: Bot, tmp_path) -> None:
    head = change_hello(bot)
    run = left_behind(bot, head, "run-doomed", RunState.QUEUED)
    import shutil

    shutil.rmtree(bot.repo.root / ".git")  # the repository disappears under the bot
    from handlers.models import RunStart

    bot.services.bus.publish(RunStart(run_id=run.id))
    bot.settle()
    [stored] = bot.runs(pr=PR)
    assert stored["state"] == "error"
    assert stored["error"]
    assert bot.checks(head)["kfp-bot / hello-pipeline"]["conclusion"] == "failure"
