"""The run queue and daily budgets in words, compared with tests/golden/messages/: a waiting run's
check (title, summary, status), a budget used up, a queued run dropped, and the reply to a `/run`
beyond a budget."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.messages.checks import run_report
from handlers.messages.guardrails import budget_exhausted, budget_reply, dropped, queue_line
from handlers.messages.rendering import MAX_STATUS_CHARS, ordinal
from handlers.queue_models import BudgetRefusal, LimitScope, QueueSpot
from handlers.run_models import RunState
from tests.handlers.messages.samples import REPO, make_run
from tests.support.golden import assert_golden

RESETS = datetime(2024, 5, 2, 0, 0, tzinfo=UTC)
SPOT = QueueSpot(repo=REPO, pr=7, position=2, running=3, limit=3, pr_running=1, pr_limit=2)
PR_FULL = QueueSpot(repo=REPO, pr=7, position=1, running=2, limit=4, pr_running=2, pr_limit=2)
PR_BUDGET = BudgetRefusal(scope=LimitScope.PULL_REQUEST, repo=REPO, pr=7, limit=20, started=19, waiting=1,
                          resets_at=RESETS)
REPO_BUDGET = BudgetRefusal(scope=LimitScope.REPOSITORY, repo=REPO, pr=7, limit=100, started=100, waiting=0,
                            resets_at=RESETS)


def test_a_waiting_runs_check_shows_its_place_in_line() -> None:
    report = run_report(make_run(state=RunState.QUEUED), queue=SPOT)
    assert report.title == f"Queued: 2nd in line for {REPO}, 3 running"
    assert len(report.description) <= MAX_STATUS_CHARS
    held = run_report(make_run(state=RunState.QUEUED), queue=PR_FULL)
    assert held.title == (f"Queued: 1st in line for {REPO}, 2 running; pull request #7 is at its limit of "
                          "2 concurrent runs")
    assert run_report(make_run(state=RunState.QUEUED)).title == "Queued"  # about to start: no place yet
    assert_golden(report.summary, "messages/check_summary_queued.md")


def test_queue_and_budget_lines() -> None:
    lines = "\n".join([
        queue_line(SPOT), queue_line(PR_FULL), budget_exhausted(PR_BUDGET), budget_exhausted(REPO_BUDGET),
        dropped("superseded by 4f1c2a9"), dropped("cancelled by @alice"),
    ]) + "\n"
    assert_golden(lines, "messages/guardrails_lines.txt")
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_the_reply_to_a_run_beyond_a_budget_says_which_and_when_it_resets() -> None:
    text = (budget_reply("alice", "/run head-pose-pipeline epochs=1", 1, PR_BUDGET) + "\n---\n\n"
            + budget_reply("alice", "/run all", 3, REPO_BUDGET))
    assert_golden(text, "messages/budget_reply.md")
