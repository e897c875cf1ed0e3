"""Guardrails on spending, end to end: what a pull request shows when its repository's run slots
are taken (a queued check with its place in line, started when a slot frees, dropped when
superseded) and when a day's budget is used up (a skipped check, a reply to `/run` saying when it
resets). The limits are the default branch's `.kfp-bot.yaml` `limits:`; runs are real kfp.local
runs, the slow pipeline holding its slot until it is cancelled."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import PR, REPO, TERMINAL, Bot, _serve, install_app
from tests.handlers.test_pull_request import SLOW_PIPELINE, change_hello
from tests.support.github_clients import APP_ID
from tests.support.gitrepo import GitRepo

HELLO = "kfp-bot / hello-pipeline"
SLOW = "kfp-bot / slow-pipeline"


@pytest.fixture
def limits(request: pytest.FixtureRequest) -> str:
    """The `limits:` block of the default branch's `.kfp-bot.yaml` (a test parametrizes it)."""
    return str(getattr(request, "param", ""))


@pytest.fixture
def queue_bot(tmp_path: Path, example_repo: GitRepo, limits: str) -> Iterator[Bot]:
    """The embedded bot on a repository whose default branch sets `limits`, with enough workers
    for local runs that hold theirs while they run."""
    example_repo.write(".kfp-bot.yaml", f"limits:\n{limits}")
    example_repo.commit("limits on the default branch")
    with FakeGitHub() as github:
        key = install_app(github)
        yield from _serve(tmp_path, example_repo, github, github_app_id=APP_ID, github_private_key=key, workers=5)


def slow_branch(bot: Bot, name: str, seconds: int = 120) -> str:
    return bot.branch(name, {"pipelines/slow-pipeline/slow-pipeline.py": SLOW_PIPELINE,
                             "pipelines/slow-pipeline/settings.yaml": f"arguments:\n  seconds: {seconds}\n"})


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 150) -> Any:
    """Poll `probe` until it answers something truthy; that answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_of(bot: Bot, sha: str) -> dict[str, Any] | None:
    runs = bot.runs(sha=sha)
    return runs[0] if runs else None


def in_state(bot: Bot, sha: str, state: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        run = run_of(bot, sha)
        return run if run is not None and run["state"] == state else None
    return probe


def check_title(bot: Bot, sha: str, name: str, text: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        check = bot.checks(sha).get(name)
        return check if check is not None and text in (check["output"]["title"] or "") else None
    return probe


def titles_shown(bot: Bot, sha: str, name: str) -> list[str]:
    """Every title the bot gave check `name` of `sha`, in order (the fake shows only the latest)."""
    check_id = bot.checks(sha)[name]["id"]
    titles = []
    for request in bot.github.requests_to("PATCH", rf"/repos/{REPO}/check-runs/{check_id}$"):
        body = json.loads(request.body or b"{}")
        if (body.get("output") or {}).get("title"):
            titles.append(body["output"]["title"])
    return titles


def states(run: dict[str, Any]) -> list[str]:
    return [t["state"] for t in run["transitions"]]


@pytest.mark.parametrize("limits", ["  concurrent_runs: 2\n"], indirect=True)
def test_a_third_run_waits_in_line_with_its_place_and_starts_when_a_slot_frees(queue_bot: Bot) -> None:
    bot = queue_bot
    first, second = slow_branch(bot, "slow-a", 120), slow_branch(bot, "slow-b", 121)
    bot.open_pull(first, number=PR)
    bot.open_pull(second, number=PR + 1)
    wait_until("two slow runs", lambda: in_state(bot, first, "running")() and in_state(bot, second, "running")())
    third, fourth = change_hello(bot, "hello-a", repeat=4), change_hello(bot, "hello-b", repeat=5)
    bot.open_pull(third, number=PR + 2)
    wait_until("the third run in line", check_title(bot, third, HELLO, "1st in line"))
    bot.open_pull(fourth, number=PR + 3)
    check = wait_until("the fourth run in line", check_title(bot, fourth, HELLO, "2nd in line"))

    assert check["status"] == "queued"
    assert check["output"]["title"] == f"Queued: 2nd in line for {REPO}, 2 running"
    assert f"🕒 queued: 2nd in line for {REPO}, 2 running" in check["output"]["summary"]
    wait_until("the fourth PR's comment with its place", lambda: any(
        f"🕒 queued: 2nd in line for {REPO}, 2 running" in body for body in bot.replies(PR + 3)))
    waiting = run_of(bot, fourth)
    assert waiting is not None and waiting["state"] == "queued"
    api = requests.get(f"{bot.url}/api/runs/{waiting['id']}", timeout=10).json()
    assert (api["queue"]["position"], api["queue"]["running"], api["queue"]["limit"]) == (2, 2, 2)

    bot.comment("/cancel", number=PR)  # the first slow run ends: its slot goes to the oldest in line
    ran = wait_until("the third run to succeed", in_state(bot, third, "succeeded"))
    assert states(ran) == ["queued", "building", "compiling", "running", "succeeded"]
    cancelled = run_of(bot, first)
    assert cancelled is not None and cancelled["state"] == "cancelled"
    assert ran["transitions"][1]["at"] >= cancelled["transitions"][-1]["at"]
    assert bot.checks(third)[HELLO]["conclusion"] == "success"
    # The fourth moved up when the third started, then took the slot the third gave back.
    last = wait_until("the fourth run to succeed", in_state(bot, fourth, "succeeded"))
    assert last["transitions"][1]["at"] >= ran["transitions"][-1]["at"]
    assert f"Queued: 1st in line for {REPO}, 2 running" in titles_shown(bot, fourth, HELLO)

    bot.open_pull(second, number=PR + 1, action="closed")
    bot.settle()
    assert [r["state"] for r in bot.runs(sha=second)] == ["cancelled"]


@pytest.mark.parametrize("limits", ["  concurrent_runs: 1\n"], indirect=True)
def test_a_queued_run_superseded_by_a_new_head_is_dropped_and_never_runs(queue_bot: Bot) -> None:
    bot = queue_bot
    slow = slow_branch(bot, "slow")
    bot.open_pull(slow, number=PR)
    wait_until("the slow run", in_state(bot, slow, "running"))
    old = change_hello(bot, "hello-old", repeat=4)
    bot.open_pull(old, number=PR + 1)
    wait_until("the run in line", check_title(bot, old, HELLO, f"Queued: 1st in line for {REPO}, 1 running"))

    new = change_hello(bot, "hello-new", repeat=5)
    bot.open_pull(new, number=PR + 1, action="synchronize")
    wait_until("the new head in line", check_title(bot, new, HELLO, "1st in line"))
    dropped = run_of(bot, old)
    assert dropped is not None and dropped["state"] == "cancelled"
    assert states(dropped) == ["queued", "cancelled"]  # never built, compiled or run
    assert dropped["transitions"][-1]["detail"] == f"dropped from the queue, never started: superseded by {new[:7]}"
    assert bot.checks(old)[HELLO]["conclusion"] == "cancelled"

    bot.comment("/cancel", number=PR)
    bot.settle()
    ran = run_of(bot, new)
    assert ran is not None and states(ran) == ["queued", "building", "compiling", "running", "succeeded"]
    assert run_of(bot, old)["state"] == "cancelled"  # type: ignore[index]


@pytest.mark.parametrize("limits", ["  runs_per_pr_per_day: 1\n"], indirect=True)
def test_beyond_the_daily_budget_run_gets_a_reply_and_autorun_a_skipped_check(queue_bot: Bot) -> None:
    bot = queue_bot
    head = change_hello(bot, "hello", repeat=4)
    bot.open_pull(head)
    bot.settle()
    assert [r["state"] for r in bot.runs(pr=PR)] == ["succeeded"]

    bot.comment("/run hello-pipeline repeat=2")
    bot.settle()
    resets = [(datetime.now(UTC) + timedelta(days=d)).strftime("%Y-%m-%d 00:00:00 UTC") for d in (0, 1)]
    reply = bot.replies()[-1]
    assert "`/run hello-pipeline repeat=2` was not run" in reply
    assert "the budget of pull request #12 (1 run a day, limits.runs_per_pr_per_day)" in reply
    assert "| **Started today** | 1 |" in reply
    assert any(f"| **Resets at** | {when} |" in reply for when in resets[1:]) or resets[0] in reply
    assert len(bot.runs(pr=PR)) == 1  # nothing was created, nothing ran

    newer = change_hello(bot, "hello-2", repeat=5)
    bot.open_pull(newer, action="synchronize")
    bot.settle()
    [skipped] = bot.runs(sha=newer)
    assert skipped["state"] == "skipped" and states(skipped) == ["queued", "skipped"]
    check = bot.checks(newer)[HELLO]
    assert check["conclusion"] == "neutral"  # how the bot concludes a skipped check
    assert check["output"]["title"].startswith(
        "Skipped: not started: the budget of pull request #12 (1 run a day, limits.runs_per_pr_per_day) "
        "is used up (1 started today); it resets at ")


@pytest.mark.parametrize("limits", ["  concurrent_runs_per_pr: 1\n"], indirect=True)
def test_a_pull_request_at_its_own_limit_runs_its_pipelines_one_after_another(queue_bot: Bot) -> None:
    bot = queue_bot
    settings = {f"pipelines/{name}/settings.yaml": (bot.repo.root / f"pipelines/{name}/settings.yaml").read_text()
                + "\n# touched\n" for name in ("dataset-pipeline", "hello-pipeline", "training-pipeline")}
    head = bot.branch("every-pipeline", settings)
    bot.open_pull(head, draft=True)  # planned, not run: /run all then starts the three at once
    bot.settle()
    bot.comment("/run all")
    bot.settle()

    runs = [r for r in bot.runs(pr=PR) if r["trigger"] == "command"]
    assert len(runs) == 3 and all(r["state"] in TERMINAL for r in runs)
    assert all(states(r)[:2] == ["queued", "building"] for r in runs)
    spans = sorted((r["transitions"][1]["at"], r["transitions"][-1]["at"]) for r in runs)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert started >= ended  # one slot for the pull request: never two at once
    titles = [t for r in runs for t in titles_shown(bot, head, f"kfp-bot / {r['pipeline']}")]
    assert any(t.endswith("; pull request #12 is at its limit of 1 concurrent run") for t in titles)
