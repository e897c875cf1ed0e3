"""The life of a run when the instance working on it stopped, and when a step fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.store.tables import outbox
from handlers.models import BuildStatus, Event, PullRequestRef, RepoRef, RunStart
from handlers.run_models import Run, RunPlan, RunState, Trigger
from tests.handlers.conftest import PR, REPO, Bot
from tests.handlers.test_pull_request import SLOW_PIPELINE, change_hello
from tests.support.github_clients import INSTALLATION_ID


def left_behind(bot: Bot, head: str, run_id: str, state: RunState) -> Run:
    """A run that a previous process stored and never finished."""
    now = datetime.now(UTC)
    run = Run(id=run_id, repo=REPO, pr=PR, sha=head, base_sha=bot.base, pipeline="hello-pipeline",
              trigger=Trigger.AUTORUN, state=RunState.QUEUED, created_at=now, updated_at=now,
              clone_url=str(bot.repo.root), installation_id=INSTALLATION_ID,
              plan=RunPlan(name="hello-pipeline"))
    assert bot.services.store.create_run(run)
    # The previous process stored the pull request when it planned it: a PR run's trusted
    # settings are read from that repository's default branch.
    repo = RepoRef(full_name=REPO, clone_url=str(bot.repo.root), default_branch="main")
    bot.services.store.save_pull(repo, PullRequestRef(
        number=PR, title="change", author="alice", html_url="", head_sha=head, head_ref="feature", head_repo=REPO,
        head_clone_url=str(bot.repo.root), base_sha=bot.base, base_ref="main"), INSTALLATION_ID)
    if state is not RunState.QUEUED:
        for step in (RunState.BUILDING, RunState.COMPILING, RunState.RUNNING):
            bot.services.store.transition(run_id, step)
            if step is state:
                break
    return run


def left_to_a_dead_owner(bot: Bot, event: Event) -> None:
    """`event` queued and claimed by an instance that died: its lease ran out a minute ago.

    Written in one transaction, so that the running bot's workers cannot claim it first.
    """
    store = bot.services.store
    past = datetime.now(UTC) - timedelta(minutes=1)
    with store._write() as conn:  # type: ignore[attr-defined]
        ids = store._enqueue(conn, [event], past, parent_repo=None)  # type: ignore[attr-defined]
        conn.execute(update(outbox).where(outbox.c.id.in_(ids))
                     .values(owner="dead-instance", lease_until=past, attempts=1))
    bot.services.bus.notify(ids)


def test_steps_of_a_dead_instance_are_taken_over_and_its_local_run_ends_visibly(bot: Bot) -> None:
    head = change_hello(bot)
    left_behind(bot, head, "run-queued", RunState.QUEUED)
    left_behind(bot, head, "run-compiling", RunState.COMPILING)
    left_behind(bot, head, "run-running", RunState.RUNNING)

    left_to_a_dead_owner(bot, RunStart(run_id="run-queued"))
    left_to_a_dead_owner(bot, BuildStatus(run_id="run-compiling", state=RunState.COMPILING))
    left_to_a_dead_owner(bot, BuildStatus(run_id="run-running", state=RunState.COMPILING))
    bot.settle()

    states = {r["id"]: (r["state"], r["error"]) for r in bot.runs(pr=PR)}
    assert states["run-queued"] == ("succeeded", None)
    assert states["run-compiling"] == ("succeeded", None)
    state, error = states["run-running"]
    assert state == "error" and "stopped before it finished" in error and "/run hello-pipeline" in error
    assert bot.runs(active="true") == []


def test_a_duplicate_start_of_a_run_already_under_way_does_nothing(bot: Bot) -> None:
    head = change_hello(bot)
    left_behind(bot, head, "run-compiling", RunState.COMPILING)

    bot.services.bus.publish(RunStart(run_id="run-compiling"))
    bot.services.bus.publish(BuildStatus(run_id="run-compiling", state=RunState.COMPILING))
    bot.settle()

    [stored] = bot.runs(pr=PR)
    assert stored["state"] == "compiling"  # its owner (here: none) compiles it, not a duplicate


def test_a_step_that_crashes_ends_the_run_as_error_with_the_reason(bot: Bot, tmp_path) -> None:
    head = change_hello(bot)
    run = left_behind(bot, head, "run-doomed", RunState.QUEUED)
    import shutil

    shutil.rmtree(bot.repo.root / ".git")  # the repository disappears under the bot
    bot.services.bus.publish(RunStart(run_id=run.id))
    bot.settle()
    [stored] = bot.runs(pr=PR)
    assert stored["state"] == "error"
    assert stored["error"]
    assert bot.checks(head)["kfp-bot / hello-pipeline"]["conclusion"] == "failure"


def test_a_local_run_past_its_run_timeout_is_stopped_and_fails_saying_why(bot: Bot) -> None:
    """`run.timeout` is a trusted key: it is set on the default branch, and the run honours it."""
    bot.repo.write("pipelines/slow-pipeline/slow-pipeline.py", SLOW_PIPELINE)
    bot.repo.write("pipelines/slow-pipeline/settings.yaml", "arguments:\n  seconds: 1\nrun:\n  timeout: 3s\n")
    on_main = bot.repo.commit("slow pipeline, limited to 3 s")
    head = bot.branch("slower", {"pipelines/slow-pipeline/settings.yaml":
                                 "arguments:\n  seconds: 120\nrun:\n  timeout: 3s\n"}, start=on_main)
    bot.open_pull(head)
    bot.settle()

    [run] = [r for r in bot.runs(pr=PR) if r["pipeline"] == "slow-pipeline"]
    assert run["state"] == "failed"
    assert "time limit of 3 seconds (run.timeout in settings.yaml)" in run["error"]
    check = bot.checks(head)["kfp-bot / slow-pipeline"]
    assert check["conclusion"] == "failure" and "run.timeout" in check["output"]["summary"]
