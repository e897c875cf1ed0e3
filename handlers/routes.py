"""All handler modules' routers, combined in one place, and what happens when a step fails."""

from __future__ import annotations

from handlers import check_run, check_suite, issue_comment, pull_request, push, runs, slack_notifier
from handlers.context import HandlerContext
from handlers.messages.checks import plan_failed
from handlers.messages.replies import internal_error
from handlers.models import (
    BuildStatus,
    CheckRunEvent,
    CheckSuiteEvent,
    Event,
    IssueCommentEvent,
    PullRequestEvent,
    PushEvent,
    RunStart,
    RunStatus,
)
from handlers.router import Router
from handlers.status_reporting import handling, record_failure, report_head, safely

ROUTES = Router().include(pull_request.router, issue_comment.router, push.router, runs.router,
                          slack_notifier.router, check_run.router, check_suite.router)


def dispatch(event: Event, ctx: HandlerContext) -> None:
    """Hand an event to every handler of its kind."""
    with handling(event):
        handled = ROUTES.dispatch(event, ctx)
    if handled == 0:
        ctx.log.warning("no handler for %s event %s", event.kind.value, event.key)


def handle_failure(event: Event, error: BaseException, ctx: HandlerContext) -> None:
    """A handler crashed: turn it into a visible state instead of a silently dropped event.

    Run steps end the run as `error` with the reason; webhook events conclude the head's
    aggregate check (or log, when there is no head to show it on) with the delivery id.
    """
    reason = f"kfp-bot failed while handling {event.kind.value}: {type(error).__name__}: {error}"
    record_failure(ctx, event, reason)
    if isinstance(event, (RunStart, BuildStatus, RunStatus)):
        runs.fail_run(ctx, event.run_id, reason)
    elif isinstance(event, PullRequestEvent):
        report_head(ctx, event.repo, event.pull.head_sha, event.installation_id,
                    note=plan_failed(reason))
    elif isinstance(event, PushEvent) and event.branch is not None:
        report_head(ctx, event.repo, event.after, event.installation_id, note=plan_failed(reason))
    elif isinstance(event, (CheckRunEvent, CheckSuiteEvent)):
        report_head(ctx, event.repo, event.head_sha, event.installation_id, note=plan_failed(reason))
    elif isinstance(event, IssueCommentEvent):
        safely(ctx, event.key, "reply", lambda: ctx.reporter.reply(
            event.repo, event.number, internal_error(reason), event.installation_id))
    ctx.log.error("event %s failed: %s", event.key, reason)
