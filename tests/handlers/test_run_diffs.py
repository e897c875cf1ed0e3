"""A run's pipeline diff: kept in the store (SQLite, the embedded default) and read back whole, and
end to end what a reviewer sees: the diff on each pipeline's check, collapsed in the PR comment, in
`/plan` replies; "unchanged" for an edit that compiles to the same pipeline; one line saying why when
there is no diff."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.store.sql_store import SqlStore
from handlers.run_diffs import DIFF_SCOPE, load_diff, save_diff
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff
from tests.handlers.conftest import PR, READER, REPO, Bot
from tests.handlers.test_pull_request import HELLO_SETTINGS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as opened:
        yield opened


def test_a_saved_diff_comes_back_equal(store: SqlStore) -> None:
    diff = PipelineDiff("training-pipeline", (
        Change(ChangeKind.IMAGE, "train", "gcr.io/p/train:content-aaaa", "gcr.io/p/train:content-bbbb"),
        Change(ChangeKind.TASK_ADDED, "report", None, "gcr.io/p/report:content-1111"),
        Change(ChangeKind.SETTING, "parameters.epochs", "2", "4"),
    ))
    save_diff(store, "run-1", diff)
    assert load_diff(store, "run-1") == diff
    assert load_diff(store, "run-2") is None


def test_a_diff_that_could_not_be_made_keeps_its_reason(store: SqlStore) -> None:
    save_diff(store, "run-1", PipelineDiff("hello-pipeline", note="the base did not compile: boom"))
    loaded = load_diff(store, "run-1")
    assert loaded is not None and not loaded.unchanged
    assert loaded.note == "the base did not compile: boom"


def test_a_later_save_replaces_the_earlier(store: SqlStore) -> None:
    save_diff(store, "run-1", PipelineDiff("hello-pipeline", note="not yet"))
    save_diff(store, "run-1", PipelineDiff("hello-pipeline"))
    loaded = load_diff(store, "run-1")
    assert loaded is not None and loaded.unchanged


@pytest.mark.parametrize("stored", ['{"pipeline": "x", "changes": [{"kind": "nope", "subject": "a"}]}',
                                    "not json", "[1, 2]"])
def test_an_unreadable_stored_diff_says_so(store: SqlStore, stored: str) -> None:
    store.set_external(DIFF_SCOPE, "run-1", stored)
    loaded = load_diff(store, "run-1")
    assert loaded is not None and loaded.note.startswith("the stored diff is unreadable")


# End to end: the embedded bot on a real socket, a fake GitHub, real compiles of the example repository.

HELLO_FILE = "pipelines/hello-pipeline/hello-pipeline.py"
CHECK = "kfp-bot / hello-pipeline"


def _edit_hello(bot: Bot, branch: str, *, punctuation: str = "!", repeat: int = 3, comment: str = "") -> str:
    """A PR branch changing hello-pipeline's `punctuation` default, its `repeat` setting, or only a comment."""
    pipeline = (bot.repo.root / HELLO_FILE).read_text().replace('punctuation: str = "!"',
                                                                 f'punctuation: str = "{punctuation}"')
    settings = (bot.repo.root / HELLO_SETTINGS).read_text().replace("repeat: 3", f"repeat: {repeat}")
    return bot.branch(branch, {HELLO_FILE: pipeline + comment, HELLO_SETTINGS: settings})


def test_a_reviewer_sees_the_pipeline_diff_on_the_check_and_collapsed_in_the_pr_comment(bot: Bot) -> None:
    head = _edit_hello(bot, "louder", punctuation="?!", repeat=4)
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "succeeded"
    summary = bot.checks(head)[CHECK]["output"]["summary"]
    assert "#### Pipeline diff: `hello-pipeline` (2 changes)" in summary
    assert "| pipeline input | `punctuation` | `STRING, default !` | `STRING, default ?!` |" in summary
    assert "| settings.yaml | `parameters.repeat` | `3` | `4` |" in summary

    [comment] = bot.replies()
    assert "<details><summary>Pipeline diff of <code>hello-pipeline</code>: 2 changes</summary>" in comment
    assert "| settings.yaml | `parameters.repeat` | `3` | `4` |" in comment
    assert comment.index("<details>") < comment.index("Reproduce locally")


def test_a_comment_only_edit_shows_unchanged_and_costs_no_run(bot: Bot) -> None:
    first = _edit_hello(bot, "commented", comment="\n# reviewed\n")
    bot.open_pull(first)
    bot.settle()
    [ran] = bot.runs(pr=PR)
    assert ran["state"] == "succeeded"
    assert "#### Pipeline diff: `hello-pipeline` (unchanged)" in bot.checks(first)[CHECK]["output"]["summary"]

    second = _edit_hello(bot, "commented-again", comment="\n# reviewed twice\n")
    bot.open_pull(second, action="synchronize")
    bot.settle()
    latest = next(r for r in bot.runs(pr=PR) if r["sha"] == second)
    assert "running" not in [t["state"] for t in latest["transitions"]]  # no run was spent
    summary = bot.checks(second)[CHECK]["output"]["summary"]
    assert f"unchanged since run {ran['id']} (succeeded)" in summary
    assert "No change to the compiled pipeline or its settings." in summary
    [comment] = bot.replies()
    assert "<details><summary>Pipeline diff of <code>hello-pipeline</code>: unchanged</summary>" in comment


def test_a_base_that_does_not_compile_says_why_and_the_run_goes_on(bot: Bot) -> None:
    bot.repo.write(HELLO_FILE, (bot.repo.root / HELLO_FILE).read_text().replace(
        "def count_words(", "def count_words(undefined_name_here: Missing, "))
    bot.base = bot.repo.commit("break hello-pipeline on main")
    bot.github.add_commit(REPO, bot.base, branch="main")
    fixed = (bot.repo.root / HELLO_FILE).read_text().replace("undefined_name_here: Missing, ", "")
    head = bot.branch("fix", {HELLO_FILE: fixed})
    bot.open_pull(head)
    bot.settle()

    [run] = bot.runs(pr=PR)
    assert run["state"] == "succeeded"
    summary = bot.checks(head)[CHECK]["output"]["summary"]
    section = summary[summary.index("#### Pipeline diff"):]
    assert section.startswith("#### Pipeline diff: `hello-pipeline` (not compared)")
    why = section.splitlines()[2]
    assert why.startswith("No pipeline diff against the merge base:") and "Missing" in why


def _plan_reply(bot: Bot, head: str, **pull: Any) -> str:
    """The bot's reply to a reader's `/plan` on a pull request of `head`."""
    bot.open_pull(head, **pull)
    bot.settle()
    bot.comment("/plan", author=READER)
    bot.settle()
    return bot.replies()[-1]


def test_plan_replies_with_each_pipelines_diff(bot: Bot) -> None:
    reply = _plan_reply(bot, _edit_hello(bot, "planned", repeat=5))
    assert "<details><summary>Pipeline diff of <code>hello-pipeline</code>: 1 change</summary>" in reply
    assert "| settings.yaml | `parameters.repeat` | `3` | `5` |" in reply


def test_plan_on_a_fork_compiles_nothing_and_says_why(bot: Bot) -> None:
    reply = _plan_reply(bot, _edit_hello(bot, "forked", repeat=5), fork="stranger/kfp-monorepo", author=READER)
    assert "<details><summary>Pipeline diff of <code>hello-pipeline</code>: not compared</summary>" in reply
    assert "No pipeline diff: this head's code is not compiled until it may run (the head is in a fork" in reply
