"""The run queue and the daily budgets in words: a waiting run's place in line, a budget used up,
a queued run dropped (`handlers/templates/guardrails.j2`), and the reply to a `/run` beyond a
budget (`budget_reply.md.j2`)."""

from __future__ import annotations

from typing import Any

from handlers.messages.rendering import MAX_MARKDOWN_CHARS, format_time, macro, render
from handlers.queue_models import BudgetRefusal, QueueSpot


def queue_view(spot: QueueSpot) -> dict[str, Any]:
    """A waiting run's spot as the templates see it."""
    return {"repo": spot.repo, "pr": spot.pr, "position": spot.position, "running": spot.running,
            "limit": spot.limit, "pr_running": spot.pr_running, "pr_limit": spot.pr_limit,
            "held_by": spot.held_by.value}


def queue_line(spot: QueueSpot) -> str:
    """`queued: 2nd in line for acme/repo, 3 running` (and the pull request's limit when that holds it)."""
    return macro("guardrails.j2", "queue_line", spot=queue_view(spot))


def queue_place(spot: QueueSpot) -> str:
    """`2nd in line for acme/repo, 3 running`: the place shown in a queued run's check."""
    return macro("guardrails.j2", "place", spot=queue_view(spot))


def _refusal_view(refusal: BudgetRefusal) -> dict[str, Any]:
    return {"scope": refusal.scope.value, "repo": refusal.repo, "pr": refusal.pr, "limit": refusal.limit,
            "started": refusal.started, "waiting": refusal.waiting, "resets_at": format_time(refusal.resets_at)}


def budget_exhausted(refusal: BudgetRefusal) -> str:
    """Why an automatic run did not start: which budget is used up, and when it resets (UTC)."""
    return macro("guardrails.j2", "budget_exhausted", refusal=_refusal_view(refusal))


def dropped(reason: str) -> str:
    """The detail of a queued run cancelled before it ever started (superseded, closed, `/cancel`)."""
    return macro("guardrails.j2", "dropped", reason=reason)


def budget_reply(user: str, command: str, asked: int, refusal: BudgetRefusal) -> str:
    """Reply to a `/run` that would go beyond a day's budget: which, how much is spent, when it resets."""
    return render("budget_reply.md.j2", MAX_MARKDOWN_CHARS, user=user, command=command.strip(), asked=asked,
                  refusal=_refusal_view(refusal))
