"""Pull requests, end to end: what GitHub shows after the bot handled a `pull_request` webhook."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import MAINTAINER, PR, READER, REPO, TERMINAL, Bot, _serve, install_app
from tests.support.github_clients import APP_ID
from tests.support.gitrepo import GitRepo

HELLO_SETTINGS = "pipelines/hello-pipeline/settings.yaml"
SLOW_PIPELINE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11-slim")
def wait(seconds: int) -> int:
    import time
    time.sleep(seconds)
    return seconds


@dsl.pipeline(name="slow-pipeline")
def slow_pipeline(seconds: int = 60):
    wait(seconds=seconds)
'''


def change_hello(bot: Bot, name: str = "longer-greeting", repeat: int = 4) -> str:
    settings = (bot.repo.root / HELLO_SETTINGS).read_text()
    return bot.branch(name, {HELLO_SETTINGS: settings.replace("repeat: 3", f"repeat: {repeat}")})


def test_a_pull_request_runs_the_pipeline_it_changes_and_shows_it(bot: Bot) -> None:
    head = change_hello(bot)
    answer = bot.open_pull(head)
    assert answer.status_code == 202
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert (run["pipeline"], run["sha"], run["trigger"], run["state"]) == ("hello-pipeline", head, "autorun",
                                                                          "succeeded")
    assert run["parameters"] == {"name": "kfp-bot", "repeat": 4, "factor": 0.5}
    assert [t["state"] for t in run["transitions"]] == ["queued", "building", "compiling", "running", "succeeded"]

    checks = bot.checks(head)
    assert set(checks) == {"kfp-bot", "kfp-bot / hello-pipeline"}
    pipeline_check = checks["kfp-bot / hello-pipeline"]
    assert (pipeline_check["status"], pipeline_check["conclusion"]) == ("completed", "success")
    assert HELLO_SETTINGS in pipeline_check["output"]["summary"]
    assert (checks["kfp-bot"]["status"], checks["kfp-bot"]["conclusion"]) == ("completed", "success")

    [comment] = bot.replies()
    assert "hello-pipeline" in comment and "succeeded" in comment
    assert "kfp-bot run hello-pipeline" in comment


def test_with_a_public_address_the_check_and_comment_lead_to_the_run_page_the_bot_serves(
        tmp_path: Path, example_repo: GitRepo) -> None:
    with FakeGitHub() as github:
        key = install_app(github)
        for bot in _serve(tmp_path, example_repo, github, github_app_id=APP_ID, github_private_key=key,
                          public_url="https://kfp-bot.example.com/"):
            head = change_hello(bot)
            bot.open_pull(head)
            bot.settle()

            [run] = bot.runs(pr=PR)
            link = bot.checks(head)["kfp-bot / hello-pipeline"]["details_url"]
            assert link == f"https://kfp-bot.example.com/runs/{run['id']}"
            [comment] = bot.replies()
            assert f"[open]({link})" in comment
            page = requests.get(bot.url + urlsplit(link).path, timeout=10)
            assert page.status_code == 200
            assert run["id"] in page.text and "hello-pipeline" in page.text and "succeeded" in page.text


def test_the_pr_comment_is_edited_in_place_for_a_new_head(bot: Bot) -> None:
    bot.open_pull(change_hello(bot, "first", repeat=4))
    bot.settle()
    second = change_hello(bot, "second", repeat=5)
    bot.open_pull(second, action="synchronize")
    bot.settle()

    assert len(bot.replies()) == 1
    latest = bot.runs(pr=PR)[0]
    assert (latest["sha"], latest["state"], latest["parameters"]["repeat"]) == (second, "succeeded", 5)


def test_a_new_push_cancels_the_runs_of_the_previous_head(bot: Bot) -> None:
    first = bot.branch("slow", {"pipelines/slow-pipeline/slow-pipeline.py": SLOW_PIPELINE,
                                "pipelines/slow-pipeline/settings.yaml": "arguments:\n  seconds: 120\n"})
    bot.open_pull(first)
    _wait_for_state(bot, first, "running")
    second = bot.branch("slow-2", {"pipelines/slow-pipeline/settings.yaml": "arguments:\n  seconds: 1\n"},
                        start=first)
    bot.open_pull(second, action="synchronize")
    bot.settle()

    by_sha = {run["sha"]: run for run in bot.runs(pr=PR)}
    assert by_sha[first]["state"] == "cancelled"
    assert "superseded" in by_sha[first]["transitions"][-1]["detail"]
    assert by_sha[second]["state"] == "succeeded"
    assert bot.checks(first)["kfp-bot / slow-pipeline"]["conclusion"] == "cancelled"


def test_closing_the_pull_request_cancels_its_runs(bot: Bot) -> None:
    head = bot.branch("slow", {"pipelines/slow-pipeline/slow-pipeline.py": SLOW_PIPELINE,
                               "pipelines/slow-pipeline/settings.yaml": "arguments:\n  seconds: 120\n"})
    bot.open_pull(head)
    _wait_for_state(bot, head, "running")
    bot.open_pull(head, action="closed")
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "cancelled"


def test_a_draft_is_planned_but_not_run(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head, draft=True)
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "skipped"
    assert "draft" in run["transitions"][-1]["detail"]
    checks = bot.checks(head)
    assert checks["kfp-bot / hello-pipeline"]["conclusion"] == "neutral"
    assert checks["kfp-bot"]["conclusion"] == "neutral"


def test_a_fork_waits_for_a_maintainer_and_ok_to_run_holds_for_that_commit(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head, author="outsider", fork="outsider/kfp-monorepo")
    bot.settle()
    [held] = bot.runs(pr=PR)
    assert held["state"] == "skipped" and "/ok-to-run" in held["transitions"][-1]["detail"]
    assert any("/ok-to-run" in reply for reply in bot.replies())

    refused, _ = bot.comment("/ok-to-run", author=READER)
    bot.settle()
    assert refused.status_code == 202
    assert any("write access" in reply for reply in bot.replies())
    assert bot.runs(pr=PR, state="succeeded") == []

    bot.comment("/ok-to-run", author=MAINTAINER)
    bot.settle()
    assert [r["sha"] for r in bot.runs(pr=PR, state="succeeded")] == [head]

    newer = change_hello(bot, "newer", repeat=6)
    bot.open_pull(newer, action="synchronize", author="outsider", fork="outsider/kfp-monorepo")
    bot.settle()
    assert bot.runs(pr=PR, sha=newer)[0]["state"] == "skipped"


def test_an_author_without_write_access_waits_too(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head, author=READER)
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "skipped"
    assert f"@{READER} does not have write access" in run["transitions"][-1]["detail"]


def test_a_settings_file_broken_by_the_pr_fails_the_check_naming_file_and_line(bot: Bot) -> None:
    head = bot.branch("broken", {HELLO_SETTINGS: "arguments:\n  name: kfp-bot\n  repeat: [3\n"})
    bot.open_pull(head)
    bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "failed"
    assert f"{HELLO_SETTINGS}:3" in run["error"] or f"{HELLO_SETTINGS}:4" in run["error"]
    check = bot.checks(head)["kfp-bot / hello-pipeline"]
    assert check["conclusion"] == "failure"
    assert HELLO_SETTINGS in check["output"]["summary"]
    assert bot.checks(head)["kfp-bot"]["conclusion"] == "failure"


def test_a_change_that_affects_no_pipeline_concludes_the_aggregate_check(bot: Bot) -> None:
    head = bot.branch("docs", {"README.md": "# only words\n", "pipelines/hello-pipeline/NOTES.md": "notes\n"})
    bot.open_pull(head)
    bot.settle()
    assert bot.runs(pr=PR) == []
    checks = bot.checks(head)
    assert set(checks) == {"kfp-bot"}
    assert checks["kfp-bot"]["conclusion"] == "success"
    assert "No pipelines affected" in checks["kfp-bot"]["output"]["summary"]


def test_a_head_that_cannot_be_fetched_fails_the_aggregate_check(bot: Bot) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    bot.github.add_commit(REPO, missing, branch="ghost")
    bot.open_pull(missing)
    bot.settle()
    check = bot.checks(missing)["kfp-bot"]
    assert check["conclusion"] == "failure"
    assert "cannot be fetched" in check["output"]["summary"]


def test_a_clone_url_outside_the_policy_is_refused_visibly(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head, clone_url="ssh://evil.example.com/repo.git")
    bot.settle()
    assert bot.runs(pr=PR) == []
    check = bot.checks(head)["kfp-bot"]
    assert check["conclusion"] == "failure" and "not allowed" in check["output"]["summary"]


def test_the_same_delivery_ten_times_at_once_runs_once(bot: Bot) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.handlers.conftest import pull_request_payload

    head = change_hello(bot)
    bot.github.add_pull(REPO, PR, head_sha=head, base_sha=bot.base, author="alice")
    payload = pull_request_payload("opened", bot.repo.root, head, bot.base, author="alice", draft=False,
                                   fork=None, number=PR, clone_url=None)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: bot.deliver("pull_request", payload, delivery="same-delivery"),
                                range(10)))
    bot.settle()
    assert sorted(a.status_code for a in answers) == [200] * 9 + [202]
    assert len(bot.runs(pr=PR)) == 1


def test_an_event_delivered_again_under_a_new_id_changes_nothing(bot: Bot) -> None:
    head = change_hello(bot)
    bot.open_pull(head)
    bot.settle()
    bot.open_pull(head)
    bot.settle()
    assert len(bot.runs(pr=PR)) == 1
    assert len([c for c in bot.github.check_runs(REPO, head) if c["name"] == "kfp-bot / hello-pipeline"]) == 1
    assert len(bot.replies()) == 1


def test_github_failing_for_a_moment_is_retried(bot: Bot) -> None:
    bot.github.fail_next("POST", r"/repos/.*/check-runs$", 502, times=2)
    head = change_hello(bot)
    bot.open_pull(head)
    bot.settle()
    assert bot.checks(head)["kfp-bot / hello-pipeline"]["conclusion"] == "success"


def _wait_for_state(bot: Bot, sha: str, state: str, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = bot.runs(sha=sha)
        if runs and runs[0]["state"] == state:
            return
        if runs and runs[0]["state"] in TERMINAL:
            raise AssertionError(f"run ended as {runs[0]['state']} before reaching {state}: {runs[0]}")
        time.sleep(0.2)
    raise AssertionError(f"no run of {sha} reached {state}")


def test_changes_on_the_base_branch_since_the_pr_branched_off_are_not_the_prs(bot: Bot) -> None:
    head = change_hello(bot)
    bot.repo.append("pipelines/training-pipeline/train/main.py", "\n# changed on main meanwhile\n")
    bot.base = bot.repo.commit("main moves on")
    bot.github.add_commit(REPO, bot.base, branch="main")
    bot.open_pull(head)
    bot.settle()
    assert [r["pipeline"] for r in bot.runs(pr=PR)] == ["hello-pipeline"]


def test_github_failing_for_good_never_loses_the_run(bot: Bot, caplog) -> None:
    import logging

    bot.github.fail_next("*", r"/repos/.*/(check-runs|issues/.*/comments).*", 503, times=1000)
    head = change_hello(bot)
    with caplog.at_level(logging.ERROR):
        bot.open_pull(head)
        bot.settle()
    [run] = bot.runs(pr=PR)
    assert run["state"] == "succeeded"
    failures = [r.getMessage() for r in caplog.records if "could not update" in r.getMessage()]
    assert any(run["id"] in message for message in failures)


def test_with_a_token_the_pr_shows_commit_statuses(token_bot: Bot) -> None:
    head = change_hello(token_bot)
    token_bot.open_pull(head)
    token_bot.settle()
    statuses = {s["context"]: s["state"] for s in token_bot.github.statuses(REPO, head)}
    assert statuses["kfp-bot / hello-pipeline"] == "success"
    assert statuses["kfp-bot"] == "success"
    assert token_bot.github.check_runs(REPO, head) == []
    comments = token_bot.github.comments(REPO, PR)
    assert len(comments) == 1 and "hello-pipeline" in comments[0]["body"]


def test_a_configuration_that_finds_no_pipeline_fails_the_aggregate_check(bot: Bot) -> None:
    head = bot.branch("glob-typo", {".kfp-bot.yaml": 'pipeline_files: ["pipeline/*.py"]\n'})
    bot.open_pull(head)
    bot.settle()
    assert bot.runs(pr=PR) == []
    check = bot.checks(head)["kfp-bot"]
    assert check["conclusion"] == "failure"
    assert ".kfp-bot.yaml:1: pipeline_files.0.glob: 'pipeline/*.py' matches no Python file" in \
        check["output"]["summary"]


def test_a_component_load_that_resolves_nowhere_fails_the_check_naming_the_load(bot: Bot) -> None:
    training = "pipelines/training-pipeline/training-pipeline.py"
    source = (bot.repo.root / training).read_text()
    head = bot.branch("renamed", {training: source.replace('"components"]', '"shared-components"]')})
    bot.open_pull(head)
    bot.settle()
    [run] = bot.runs(pr=PR)
    load = (f"{training}:19: load_component(\"notify\") resolves nowhere: the search path 'shared-components' "
            "(line 15) does not exist")
    assert (run["state"], run["pipeline"]) == ("failed", "training-pipeline")
    assert load in run["error"]
    check = bot.checks(head)["kfp-bot / training-pipeline"]
    assert check["conclusion"] == "failure"
    assert load in check["output"]["summary"] + (check["output"].get("text") or "")


def test_the_next_head_warms_up_the_interpreter_the_last_compile_of_its_repository_used(bot: Bot) -> None:
    from deploy.compiler.warm import remembered
    from deploy.pipelines import RepositoryCompiler

    compiler = bot.services.context.compiler
    assert isinstance(compiler, RepositoryCompiler)
    bot.open_pull(change_hello(bot))
    bot.settle()
    hints = remembered(compiler.cache_dir, REPO)  # the run's compile noted its interpreter (kfp 2 here)
    assert hints is not None and [(key.python, key.environment) for key, _ in hints.drivers] == [(sys.executable, None)]

    # A draft head is planned, not compiled: the interpreter warmed up for it still waits.
    bot.open_pull(change_hello(bot, "even-longer", repeat=5), action="synchronize", draft=True)
    bot.settle()
    assert [driver.key for driver in compiler.drivers._drivers if driver.alive] == [key for key, _ in hints.drivers]
