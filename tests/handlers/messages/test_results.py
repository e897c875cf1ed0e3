"""Results beside the baseline and quality gates as reviewers see them: the check summary with a
results table and a failed gate, the PR comment's results, and the headline metric in Slack,
compared with tests/golden/messages/."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from handlers.messages.checks import check_summary
from handlers.messages.pull_comment import pull_comment
from handlers.messages.results import format_delta, format_number, gate_failure, headline
from handlers.messages.slack_blocks import slack_change, slack_thread
from handlers.models import Notification
from handlers.ports.run import CollectedResults
from handlers.reports import RunPages
from handlers.run_models import RunState, Trigger
from handlers.run_results import Comparison, RunResults, evaluate
from tests.handlers.messages.samples import HEAD, REPO, VERTEX_URL, make_run, running_autorun
from tests.support.golden import assert_golden

BASELINE = RunResults(run_id="run-baseline00000001", metrics={"accuracy": 0.91, "loss": 0.2, "recall": 0.8})
GATES = {"accuracy": ">= 0.90", "loss": "<= baseline * 1.05"}


def passing() -> RunResults:
    collected = CollectedResults(metrics={"accuracy": 0.934, "loss": 0.19, "recall": 0.8},
                                 outputs={"model_uri": "gs://acme/models/hp/7", "epochs_run": 10})
    return evaluate("run-0123456789abcdef", collected, BASELINE, GATES)


def failing() -> RunResults:
    collected = CollectedResults(metrics={"accuracy": 0.88, "loss": 0.26, "recall": 0.8})
    return evaluate("run-fedcba9876543210", collected, BASELINE, GATES | {"f1 | x": ">= 0.5"})


def test_check_summary_with_results_beside_the_baseline() -> None:
    run = make_run(url=VERTEX_URL, history=(RunState.QUEUED, RunState.RUNNING, RunState.SUCCEEDED))
    assert_golden(check_summary(run, passing()), "messages/check_summary_results.md")


def test_check_summary_of_a_failed_gate_says_which_with_the_numbers() -> None:
    results = failing()
    error = gate_failure(results)
    assert error.splitlines() == [
        "quality gate accuracy >= 0.90 failed: accuracy = 0.88",
        "quality gate loss <= baseline * 1.05 failed: loss = 0.26, limit 0.21 (baseline 0.2)",
        "quality gate f1 | x >= 0.5: the run reported no metric 'f1 | x'"]
    run = make_run(state=RunState.FAILED, url=VERTEX_URL, error=error, run_id=results.run_id)
    assert_golden(check_summary(run, results), "messages/check_summary_gate_failed.md")


def test_check_summary_without_a_baseline_says_so() -> None:
    results = evaluate("run-1", CollectedResults(metrics={"loss": 0.3}), None, {"loss": "<= baseline * 1.05"})
    text = check_summary(make_run(run_id="run-1"), results)
    assert "No baseline yet" in text and "no baseline: passes" in text


def test_pull_comment_with_results() -> None:
    done = make_run(url=VERTEX_URL)
    failed = replace(make_run("mnist-pipeline", RunState.FAILED, run_id="run-fedcba9876543210", url=VERTEX_URL),
                     error=gate_failure(failing()))
    runs = [done, failed, replace(running_autorun(), id="run-7777777777777777", pipeline="face-detect-pipeline")]
    body = pull_comment(runs, {done.id: passing(), failed.id: failing()})
    assert_golden(body, "messages/pull_comment_results.md")


def _note(state: RunState, run_id: str) -> Notification:
    return Notification(run_id=run_id, repo=REPO, sha=HEAD, pipeline="head-pose-pipeline", trigger=Trigger.AUTORUN,
                        state=state, at=datetime(2024, 5, 1, 12, 2, 5, tzinfo=UTC).isoformat(),
                        previous_state=RunState.RUNNING, pr=7, pr_title="Better head pose", pr_author="alice",
                        pr_url="https://github.com/octo/monorepo/pull/7", url=VERTEX_URL, duration_seconds=125.0)


def test_slack_shows_the_headline_metric() -> None:
    results = passing()
    assert headline(results) == "accuracy 0.934, +0.024 (+2.6%) vs baseline"
    change = slack_change(_note(RunState.SUCCEEDED, results.run_id), headline(results))
    thread = slack_thread(_note(RunState.SUCCEEDED, results.run_id), [make_run(url=VERTEX_URL)],
                          {results.run_id: headline(results)})
    assert_golden(json.dumps({"reply": change, "thread": thread}, indent=2, ensure_ascii=False) + "\n",
                  "messages/slack_results.json")


def test_with_a_public_address_slack_links_each_run_page() -> None:
    pages = RunPages("https://kfp-bot.example.com")
    note = _note(RunState.FAILED, "run-fedcba9876543210")
    change = slack_change(note, pages=pages)
    thread = slack_thread(note, [make_run(url=VERTEX_URL), make_run("mnist-pipeline", RunState.FAILED,
                                                                    run_id="run-fedcba9876543210")], pages=pages)
    assert_golden(json.dumps({"reply": change, "thread": thread}, indent=2, ensure_ascii=False) + "\n",
                  "messages/slack_pages.json")


def test_numbers_read_the_same_everywhere() -> None:
    assert [format_number(v) for v in (None, 3.0, 0.123456789, 1e-7)] == ["—", "3", "0.123457", "1e-07"]
    assert format_delta(Comparison("m", 0.5, 0.5)) == "±0"
    assert format_delta(Comparison("m", 0.5, 0.0)) == "+0.5"
    assert format_delta(Comparison("m", None, 0.5)) == "—"
