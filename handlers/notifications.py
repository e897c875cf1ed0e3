"""Every run state change, published as a `Notification` through the outbox.

`handlers.runs.move` passes `notify_change` to each transition, so every state change (PR runs,
`/run` commands and deploys alike) becomes one message other systems may subscribe to (schema:
`docs/notification.schema.json`, version `NOTIFICATION_VERSION`), queued in the transaction
that stores the change. The embedded bus hands it to the Slack notifier (`handlers.slack_notifier`); in
production the relay publishes it to the notifications topic, whose push subscription brings it
back to the notifier. A topic that is down delays the message (it stays in the outbox and is
published again), and never fails or blocks the run.
"""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.models import Notification
from handlers.ports.store import StoredPull, Then
from handlers.run_models import Run, RunState


def previous_state(run: Run) -> RunState | None:
    """The state before the run's latest transition (None for a run that was just created)."""
    if len(run.transitions) >= 2:
        return run.transitions[-2].state
    return None


def notification_for(run: Run, pull: StoredPull | None = None) -> Notification:
    """The notification of `run`'s latest state change; `pull` adds the PR's title, author and URL."""
    pr = pull.pull if pull is not None else None
    at = run.transitions[-1].at if run.transitions else run.updated_at
    return Notification(
        run_id=run.id, repo=run.repo, sha=run.sha, pipeline=run.pipeline, trigger=run.trigger,
        state=run.state, at=at.isoformat(), previous_state=previous_state(run), pr=run.pr,
        pr_title=pr.title if pr else None, pr_author=pr.author if pr else None,
        pr_url=(pr.html_url or None) if pr else None, triggered_by=run.triggered_by,
        overrides=dict(run.overrides), url=run.url, duration_seconds=run.duration_seconds,
        error=run.error if run.state in _ERROR_STATES else None)


_ERROR_STATES = frozenset({RunState.FAILED, RunState.ERROR, RunState.CANCELLED, RunState.SKIPPED})


def notify_change(ctx: HandlerContext, run: Run) -> Then:
    """What a state change of `run` causes: its notification, built from the run as stored after
    the change. `Store.transition` queues it in the transaction that stores the change, so the
    change is never kept without its notification nor notified twice. The pull request is read
    here, before that transaction, so the transaction stays short."""
    pull = ctx.store.get_pull(run.repo, run.pr) if run.pr is not None else None
    return lambda moved: (notification_for(moved, pull),)
