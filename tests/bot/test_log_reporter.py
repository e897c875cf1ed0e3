"""LogReporter: without GitHub credentials, every report is one structured log line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.log_reporter import LogReporter
from handlers.messages.checks import head_report, run_report
from handlers.messages.pull_comment import pull_report
from handlers.models import RepoRef
from handlers.run_models import Run, RunState, Trigger

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
REPO = RepoRef(full_name="octo/monorepo", clone_url="file:///tmp/monorepo")
SHA = "4f1c2a9d0e8b7c6a5f4e3d2c1b0a9f8e7d6c5b4a"


def make_run(state: RunState, pipeline: str = "head-pose-pipeline") -> Run:
    return Run(id=f"run-{pipeline}", repo=REPO.full_name, pr=7, sha=SHA, base_sha=None, pipeline=pipeline,
               trigger=Trigger.AUTORUN, state=state, created_at=T0, updated_at=T0 + timedelta(seconds=65),
               error="exit code 1" if state is RunState.FAILED else None)


def test_every_report_is_one_line_with_fields(caplog: pytest.LogCaptureFixture) -> None:
    reporter = LogReporter()
    caplog.set_level(logging.INFO, logger="kfp_bot.report")
    failed, running = make_run(RunState.FAILED), make_run(RunState.RUNNING, "mnist")
    reporter.run_changed(run_report(failed))
    reporter.head_summary(head_report(REPO, SHA, [failed, running], "", None))
    reporter.pull_summary(pull_report(REPO, 7, [failed, running], None))
    reporter.acknowledge(REPO, 123, None)
    reporter.reply(REPO, 7, "unknown pipeline 'x'\n", None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "kfp-bot / head-pose-pipeline octo/monorepo@4f1c2a9d0e8b: failed: Failed after 1m 5s: exit code 1",
        "kfp-bot octo/monorepo@4f1c2a9d0e8b: 2 pipelines: 1 failed, 1 running",
        "octo/monorepo#7: head-pose-pipeline=failed, mnist=running",
        "octo/monorepo: accepted command in comment 123",
        "octo/monorepo#7: reply: unknown pipeline 'x'",
    ]
    first, head = caplog.records[0], caplog.records[1]
    assert (first.event, first.run_id, first.state, first.pipeline) == (
        "run_changed", "run-head-pose-pipeline", "failed", "head-pose-pipeline")
    assert (head.event, head.outcome) == ("head_summary", "active")


def test_no_pipelines_affected(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kfp_bot.report")
    LogReporter().head_summary(head_report(REPO, SHA, [], "", None))
    LogReporter().pull_summary(pull_report(REPO, 7, [], None))
    assert [r.getMessage() for r in caplog.records] == [
        "kfp-bot octo/monorepo@4f1c2a9d0e8b: No pipelines affected by this change",
        "octo/monorepo#7: no pipelines affected",
    ]
