"""Every run state change, published as a `Notification` on the notifications topic.

`handlers.runs.move` calls `publish_run_change` after each stored transition, so every state
change (PR runs, `/run` commands and deploys alike) becomes one message other systems may
subscribe to (schema: `docs/notification.schema.json`, version `NOTIFICATION_VERSION`). The
Slack notifier (`handlers.slack_notifier`) is one such subscriber. The state change is already stored
and reported on GitHub when this runs, so a publish failure is logged with the run and the
reason and never fails or blocks the run.
"""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.models import Notification, Run, RunState
from handlers.ports import StoredPull


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


def publish_run_change(ctx: HandlerContext, run: Run) -> Notification | None:
    """Publish the notification of `run`'s latest state change; None when not published.

    Never raises: a topic that is down must not turn a stored state change into a failed step
    (which would mark the run as errored). The failure is logged with the run id and reason.
    """
    if ctx.notifications is None:
        return None
    try:
        pull = ctx.store.get_pull(run.repo, run.pr) if run.pr is not None else None
        notification = notification_for(run, pull)
        ctx.notifications.publish(notification)
    except Exception as exc:  # the run goes on whatever the topic does
        ctx.log.warning("notification for run %s (%s is %s) not published: %s: %s", run.id, run.pipeline,
                        run.state.value, type(exc).__name__, exc)
        return None
    return notification
