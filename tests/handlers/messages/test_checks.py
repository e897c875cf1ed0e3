"""Check runs and commit statuses: rendered for fixed runs and compared with tests/golden/messages/, and
the limits GitHub enforces on them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from handlers.messages.checks import (
    MAX_CHECK_OUTPUT_BYTES,
    check_summary,
    check_title,
    head_outcome,
    head_summary,
    head_title,
    run_report,
    status_description,
    trusted_settings_summary,
    trusted_settings_title,
)
from handlers.messages.pull_comment import pull_comment
from handlers.messages.rendering import MAX_MARKDOWN_CHARS, MAX_STATUS_CHARS
from handlers.reports import HeadOutcome, RunPages
from handlers.run_models import RunState
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff
from tests.handlers.messages.samples import (
    HEAD_POSE_DIFF,
    T0,
    TRUSTED_CHANGES,
    VERTEX_URL,
    error_run,
    failed_command_run,
    make_run,
    running_autorun,
    skipped_run,
)
from tests.support.golden import assert_golden

CHECK_SUMMARIES = {
    "check_summary_running.md": running_autorun,
    "check_summary_failed_command.md": failed_command_run,
    "check_summary_skipped.md": skipped_run,
    "check_summary_error.md": error_run,
}


@pytest.mark.parametrize("name", sorted(CHECK_SUMMARIES))
def test_check_summary(name: str) -> None:
    assert_golden(check_summary(CHECK_SUMMARIES[name]()), f"messages/{name}")


def test_check_summary_with_the_pipeline_diff() -> None:
    assert_golden(check_summary(running_autorun(), diff=HEAD_POSE_DIFF), "messages/check_summary_diff.md")


def test_a_pipeline_diff_too_long_for_the_check_shows_its_first_changes_and_the_rest_fits() -> None:
    huge = PipelineDiff("head-pose-pipeline", tuple(
        Change(ChangeKind.TASK_ADDED, f"task-{i:05d}", None, "x" * 200) for i in range(2000)))
    summary = check_summary(running_autorun(), diff=huge)
    assert len(summary.encode()) <= MAX_CHECK_OUTPUT_BYTES
    assert "### Reproduce locally" in summary and "truncated" not in summary  # the rest of the check whole
    assert "| task added | `task-00000` |" in summary
    shown = summary.count("| task added |")
    assert 0 < shown < 2000
    assert f"… and {2000 - shown} more changes, too many to show here" in summary


def test_without_a_base_to_compare_the_check_says_why_in_one_line() -> None:
    summary = check_summary(running_autorun(), diff=PipelineDiff("head-pose-pipeline", note="No pipeline diff: why.\nmore"))
    section = summary[summary.index("#### Pipeline diff"):]
    assert section.splitlines()[:3] == ["#### Pipeline diff: `head-pose-pipeline` (not compared)", "",
                                        "No pipeline diff: why."]


def test_check_titles_and_status_descriptions_of_every_state() -> None:
    lines = ["| state | check title | commit status description |", "|---|---|---|"]
    for state in RunState:
        run = make_run(state=state, url=VERTEX_URL if state is RunState.RUNNING else None,
                       error="it broke\nsecond line" if state in (RunState.FAILED, RunState.ERROR,
                                                                   RunState.CANCELLED, RunState.SKIPPED) else None)
        lines.append(f"| {state.value} | {check_title(run)} | {status_description(run)} |")
    assert_golden("\n".join(lines) + "\n", "messages/check_titles.md")


def test_head_summary_with_runs() -> None:
    runs = [running_autorun(), failed_command_run(), skipped_run()]
    text = f"# {head_title(runs)}\n\n{head_summary(runs, '')}"
    assert_golden(text, "messages/head_summary.md")


def test_head_summary_without_affected_pipelines() -> None:
    text = f"# {head_title([], '')}\n\n{head_summary([], '')}"
    assert_golden(text, "messages/head_summary_none.md")


def test_head_summary_not_run() -> None:
    note = ("This pull request is a draft: 2 pipelines are affected and will run when it is marked "
            "ready for review.")
    text = f"# {head_title([], note)}\n\n{head_summary([], note)}"
    assert_golden(text, "messages/head_summary_not_run.md")


def test_user_text_cannot_break_tables() -> None:
    summary = check_summary(error_run())
    row = next(line for line in summary.splitlines() if line.startswith("| note |"))
    # the value's pipe is escaped and its backticks fenced by a longer run, so the row keeps 3 cells
    assert row == "| note | `` a\\|b `c` `` | settings.yaml |"
    assert "\n````\n" in summary  # the error's own ``` fence cannot close the block


def test_status_description_fits_githubs_limit() -> None:
    run = make_run(state=RunState.FAILED, error="x" * 500)
    description = status_description(run)
    assert len(description) == MAX_STATUS_CHARS and description.endswith("…")


def test_long_errors_keep_their_end_within_githubs_limit() -> None:
    run = make_run(state=RunState.ERROR, error="boom\n" * 40_000 + "ValueError: the real cause")
    summary = check_summary(run)
    assert len(summary) <= MAX_MARKDOWN_CHARS
    assert "ValueError: the real cause" in summary


def test_long_summaries_are_cut_below_githubs_limit() -> None:
    run = make_run(parameters={f"p{i}": "v" * 100 for i in range(1000)})
    summary = check_summary(run)
    assert len(summary) <= MAX_MARKDOWN_CHARS
    assert summary.endswith("_… truncated: the full text was longer than GitHub allows._\n")


def test_links_only_to_web_urls() -> None:
    run = make_run(url="/tmp/kfp-local/runs/run-1")
    assert "/tmp/kfp-local" not in check_summary(run)
    assert "/tmp/kfp-local" not in pull_comment([run])


@pytest.mark.parametrize(("states", "note", "outcome"), [
    ((), "", HeadOutcome.NONE_AFFECTED),
    ((), "draft pull request", HeadOutcome.NOT_RUN),
    ((RunState.SKIPPED, RunState.SKIPPED), "", HeadOutcome.NOT_RUN),
    ((RunState.SUCCEEDED, RunState.RUNNING), "", HeadOutcome.ACTIVE),
    ((RunState.FAILED, RunState.QUEUED), "", HeadOutcome.ACTIVE),
    ((RunState.SUCCEEDED, RunState.ERROR), "", HeadOutcome.FAILED),
    ((RunState.FAILED, RunState.CANCELLED), "", HeadOutcome.FAILED),
    ((RunState.SUCCEEDED, RunState.CANCELLED), "", HeadOutcome.CANCELLED),
    ((RunState.SUCCEEDED, RunState.SKIPPED), "", HeadOutcome.SUCCEEDED),
])
def test_head_outcome(states: tuple[RunState, ...], note: str, outcome: HeadOutcome) -> None:
    runs = [make_run(f"pipeline-{i}", s, run_id=f"run-{i}") for i, s in enumerate(states)]
    assert head_outcome(runs, note) is outcome


def test_head_outcome_uses_the_latest_run_of_each_pipeline() -> None:
    failed = make_run(state=RunState.FAILED, run_id="run-a", created=T0)
    rerun = replace(failed, id="run-b", state=RunState.SUCCEEDED, created_at=T0 + timedelta(minutes=3),
                    updated_at=T0 + timedelta(minutes=4))
    assert head_outcome([failed, rerun], "") is HeadOutcome.SUCCEEDED


def test_trusted_settings_check() -> None:
    allowed = ["pipelines@acme.iam.gserviceaccount.com"]
    text = (f"{trusted_settings_title(TRUSTED_CHANGES)}\n\n"
            f"{trusted_settings_summary(TRUSTED_CHANGES, 'main', allowed)}")
    assert_golden(text, "messages/trusted_settings.md")


PAGES = RunPages("https://kfp-bot.example.com")


def test_with_a_public_address_the_check_links_the_run_page_and_keeps_the_backend_link() -> None:
    run = running_autorun()
    report = run_report(run, pages=PAGES)
    assert report.url == f"https://kfp-bot.example.com/runs/{run.id}"
    assert_golden(report.summary, "messages/check_summary_page.md")


def test_without_a_public_address_the_check_links_the_backend() -> None:
    run = running_autorun()
    assert run_report(run).url == VERTEX_URL
    assert "Run page" not in run_report(run).summary


def test_the_aggregate_check_links_each_run_page() -> None:
    runs = [running_autorun(), failed_command_run(), skipped_run()]
    assert_golden(head_summary(runs, "", pages=PAGES), "messages/head_summary_pages.md")


def test_a_run_page_address_escapes_the_run_id() -> None:
    assert PAGES.url("a b/c") == "https://kfp-bot.example.com/runs/a%20b%2Fc"
    assert RunPages("https://kfp-bot.example.com/").url("r1") == "https://kfp-bot.example.com/runs/r1"
    assert RunPages().url("r1") is None
