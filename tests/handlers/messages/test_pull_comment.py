"""The PR comment: rendered for fixed runs and compared with tests/golden/messages/; the latest run of
each pipeline is the one shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from handlers.messages.pull_comment import pull_comment
from handlers.messages.rendering import MAX_MARKDOWN_CHARS
from handlers.queue_models import QueueSpot
from handlers.reports import SUMMARY_MARKER, RunPages
from handlers.run_models import RunState
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff
from tests.handlers.messages.samples import (
    HEAD_POSE_DIFF,
    HEAD_POSE_PLAN,
    MNIST_DIFF,
    T0,
    TRUSTED_CHANGES,
    failed_command_run,
    make_run,
    running_autorun,
    skipped_run,
)
from tests.support.golden import assert_golden


def test_pull_comment() -> None:
    superseded = make_run(state=RunState.SUCCEEDED, run_id="run-0000000000000001", created=T0 - timedelta(hours=1))
    other = replace(running_autorun(), id="run-7777777777777777", pipeline="face-detect-pipeline")
    runs = [superseded, failed_command_run(), other, skipped_run()]
    assert_golden(pull_comment(runs), "messages/pull_comment.md")


def test_pull_comment_without_pipelines() -> None:
    assert_golden(pull_comment([]), "messages/pull_comment_none.md")


def test_pull_comment_starts_with_marker_and_shows_latest_run_per_pipeline() -> None:
    old = make_run(state=RunState.FAILED, run_id="run-old", created=T0, error="old failure")
    new = make_run(state=RunState.SUCCEEDED, run_id="run-new", created=T0 + timedelta(minutes=1))
    body = pull_comment([new, old])
    assert body.splitlines()[0] == SUMMARY_MARKER
    rows = [line for line in body.splitlines() if line.startswith("| head-pose-pipeline |")]
    assert len(rows) == 1 and "✅ succeeded" in rows[0]
    assert "old failure" not in body


def test_pull_comment_with_trusted_changes() -> None:
    run = make_run(plan={**HEAD_POSE_PLAN, "trusted_changes": TRUSTED_CHANGES})
    assert_golden(pull_comment([run]), "messages/pull_comment_trusted.md")


def test_pull_comment_with_collapsed_pipeline_diffs() -> None:
    head_pose = running_autorun()
    mnist = replace(skipped_run(), id="run-mnist", pipeline="mnist-pipeline")
    body = pull_comment([head_pose, mnist], diffs={head_pose.id: HEAD_POSE_DIFF, mnist.id: MNIST_DIFF})
    assert_golden(body, "messages/pull_comment_diff.md")


def test_pipeline_diffs_too_long_for_the_comment_leave_the_runs_whole() -> None:
    runs = [replace(running_autorun(), id=f"run-{i}", pipeline=f"p-{i}") for i in range(40)]
    huge = {run.id: PipelineDiff(run.pipeline, tuple(Change(ChangeKind.TASK_ADDED, f"t{j}", None, "y" * 300)
                                                     for j in range(50))) for run in runs}
    body = pull_comment(runs, diffs=huge)
    assert len(body) <= MAX_MARKDOWN_CHARS
    assert all(f"| p-{i} |" in body for i in range(40)) and "Reproduce locally" in body
    assert body.count("<details>") == body.count("</details>") > 0  # no <details> cut open


def test_with_a_public_address_each_run_links_its_page() -> None:
    runs = [failed_command_run(), skipped_run()]
    body = pull_comment(runs, pages=RunPages("https://kfp-bot.example.com"))
    assert_golden(body, "messages/pull_comment_pages.md")


def test_a_waiting_run_shows_its_place_in_line() -> None:
    waiting = replace(running_autorun(), state=RunState.QUEUED)
    spot = QueueSpot(repo=waiting.repo, pr=waiting.pr, position=2, running=3, limit=3, pr_running=1, pr_limit=2)
    body = pull_comment([waiting, skipped_run()], queues={waiting.id: spot})
    assert_golden(body, "messages/pull_comment_queued.md")
