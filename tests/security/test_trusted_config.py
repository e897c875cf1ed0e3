"""Trusted settings come from the default branch: a pull request cannot raise its own limits,
turn its own autorun on, add itself to allowed_users or choose the identity it runs as.

End to end against the fake GitHub: what the PR shows (a neutral `kfp-bot / trusted settings`
check and a line in the PR comment) and what the runs actually used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import PR, READER, REPO, Bot, _serve
from tests.support.github_clients import APP_ID, INSTALLATION_ID, app_private_key
from tests.support.gitrepo import GitRepo

HELLO = "pipelines/hello-pipeline/settings.yaml"
ALLOWED_SA = "pipelines@my-project.iam.gserviceaccount.com"
OTHER_SA = "owner@my-project.iam.gserviceaccount.com"
SLEEPY = '''
import time

from kfp import dsl

time.sleep(120)


@dsl.component(base_image="python:3.11-slim")
def hello() -> str:
    return "hi"


@dsl.pipeline(name="sleepy-pipeline")
def sleepy_pipeline():
    hello()
'''
CHECK = "kfp-bot / trusted settings"


def on_default_branch(bot: Bot, changes: dict[str, str]) -> None:
    """Commit `changes` on main (the default branch) and make it the base of new PRs."""
    for path, content in changes.items():
        bot.repo.write(path, content)
    bot.base = bot.repo.commit("trusted change")
    bot.github.add_commit(REPO, bot.base, branch="main")


def hello_settings(bot: Bot, extra: str = "") -> str:
    return (bot.repo.root / HELLO).read_text().replace("repeat: 3", "repeat: 4") + extra


@pytest.fixture
def sa_bot(tmp_path: Path, example_repo: GitRepo) -> Iterator[Bot]:
    """The bot with a pipeline service account (the default allowlist) and a 5 s compile cap."""
    with FakeGitHub() as github:
        key = github.add_app(APP_ID, app_private_key())
        github.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
        yield from _serve(tmp_path, example_repo, github, github_app_id=APP_ID, github_private_key=key,
                          pipeline_service_account=ALLOWED_SA, compile_max_timeout_seconds=5)


def test_a_pr_turning_its_own_autorun_on_is_neutral_and_does_not_run(bot: Bot) -> None:
    on_default_branch(bot, {".kfp-bot.yaml": "autorun: false\n"})
    head = bot.branch("sneaky", {".kfp-bot.yaml": "autorun: true\ncompile:\n  timeout_seconds: 3600\n"
                                                  "  memory_mb: 65536\nallowed_users: [mallory]\n",
                                 HELLO: hello_settings(bot)})
    bot.open_pull(head)
    bot.settle()

    runs = bot.runs(pr=PR)
    assert runs and {r["state"] for r in runs} == {"skipped"}
    assert all("autorun is off" in r["transitions"][-1]["detail"] for r in runs)
    check = bot.checks(head)[CHECK]
    assert (check["status"], check["conclusion"]) == ("completed", "neutral")
    assert check["output"]["title"] == "4 trusted settings changed: takes effect after merge"
    summary = check["output"]["summary"]
    for key in ("`autorun`", "`compile.timeout_seconds`", "`compile.memory_mb`", "`allowed_users`"):
        assert key in summary
    assert "| `.kfp-bot.yaml` | `compile.timeout_seconds` | `3600` | `300` |" in summary
    assert "takes effect after merge" in summary
    [comment] = bot.replies()
    assert "Trusted settings changed" in comment and "`compile.memory_mb`" in comment


def test_allowed_users_of_the_pr_do_not_let_their_author_run(bot: Bot) -> None:
    head = bot.branch("add-me", {".kfp-bot.yaml": f"allowed_users: [{READER}]\n", HELLO: hello_settings(bot)})
    bot.open_pull(head, author=READER)
    bot.settle()
    assert {r["state"] for r in bot.runs(pr=PR)} == {"skipped"}
    bot.comment("/run hello-pipeline", author=READER)
    bot.settle()
    assert "write access" in bot.replies()[-1]
    assert all(r["trigger"] == "autorun" for r in bot.runs(pr=PR))


def test_allowed_users_of_the_default_branch_may_run(bot: Bot) -> None:
    on_default_branch(bot, {".kfp-bot.yaml": f"allowed_users: [{READER}]\n"})
    head = bot.branch("docs", {"README.md": "# words\n"})
    bot.open_pull(head)
    bot.settle()
    bot.comment("/run hello-pipeline", author=READER)
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert (run["trigger"], run["triggered_by"], run["state"]) == ("command", READER, "succeeded")


def test_a_pr_choosing_its_service_account_runs_with_the_default_branchs(sa_bot: Bot) -> None:
    bot = sa_bot
    head = bot.branch("identity", {HELLO: hello_settings(bot, f"run:\n  service_account: {OTHER_SA}\n")})
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "succeeded"  # with the trusted (default) identity, not OTHER_SA
    check = bot.checks(head)[CHECK]
    assert check["conclusion"] == "neutral"
    summary = check["output"]["summary"]
    assert f"`{OTHER_SA}`" in summary and "not set" in summary
    assert f"allowed: `{ALLOWED_SA}`" in summary and "will be refused" in summary


def test_a_service_account_outside_the_allowlist_is_refused_naming_the_allowed_ones(sa_bot: Bot) -> None:
    bot = sa_bot
    on_default_branch(bot, {HELLO: (bot.repo.root / HELLO).read_text()
                            + f"run:\n  service_account: {OTHER_SA}\n"})
    head = bot.branch("params", {HELLO: hello_settings(bot, f"run:\n  service_account: {OTHER_SA}\n")})
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed"
    assert f"run.service_account '{OTHER_SA}' is not allowed (allowed: {ALLOWED_SA})" in run["error"]
    check = bot.checks(head)["kfp-bot / hello-pipeline"]
    assert check["conclusion"] == "failure" and ALLOWED_SA in check["output"]["summary"]
    assert CHECK not in bot.checks(head)  # nothing changed against the default branch


def test_compile_limits_never_exceed_the_bots_caps(sa_bot: Bot) -> None:
    bot = sa_bot
    on_default_branch(bot, {".kfp-bot.yaml": "compile:\n  timeout_seconds: 3600\n"})
    head = bot.branch("sleepy", {"pipelines/sleepy-pipeline/sleepy-pipeline.py": SLEEPY})
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed"
    assert "5 s" in run["error"] or "5 seconds" in run["error"]


def test_on_the_production_path_vertex_ai_gets_the_default_branchs_identity(cloud_bot) -> None:
    """The PR's `run.service_account` never reaches Vertex AI: the job runs as the bot's default."""
    bot, cloud = cloud_bot, cloud_bot.cloud
    settings = "pipelines/training-pipeline/settings.yaml"
    text = (bot.repo.root / settings).read_text() + f"run:\n  service_account: {OTHER_SA}\n"
    head = bot.branch("identity", {settings: text})
    bot.open_pull(head)
    bot.settle()
    [build] = cloud.cloudbuild.builds
    bot.build_ends(build.id)

    [job] = cloud.vertex.jobs
    assert job.service_account == ""  # the bot's default identity (none configured here), not OTHER_SA
    assert bot.checks(head)[CHECK]["conclusion"] == "neutral"


def test_cloud_builds_compile_step_never_gets_more_time_than_the_cap(cloud_bot) -> None:
    from deploy.builders.cloudbuild_compile import COMPILE_STEP_ID, INSTALL_SECONDS

    bot, cloud = cloud_bot, cloud_bot.cloud
    main = "pipelines/training-pipeline/train/main.py"
    head = bot.branch("slow-compile", {".kfp-bot.yaml": "compile:\n  timeout_seconds: 3600\n",
                                       main: (bot.repo.root / main).read_text() + "\n# more\n"})
    bot.open_pull(head)
    bot.settle()
    [step] = [s for build in cloud.cloudbuild.builds for s in build.steps if s.id == COMPILE_STEP_ID][:1]
    assert step.timeout.seconds == 900 + INSTALL_SECONDS  # KFP_BOT_COMPILE_MAX_TIMEOUT_SECONDS' default


def test_with_a_token_the_notice_is_a_commit_status_saying_it(token_bot: Bot) -> None:
    bot = token_bot
    head = bot.branch("limits", {".kfp-bot.yaml": "compile:\n  memory_mb: 65536\n", HELLO: hello_settings(bot)})
    bot.open_pull(head)
    bot.settle()
    [status] = [s for s in bot.github.statuses(REPO, head) if s["context"] == CHECK]
    assert status["state"] == "success"
    assert status["description"] == "1 trusted setting changed: takes effect after merge"
