"""`check_run` events on the bot's checks: the "Re-run" link and the Run / Cancel buttons.

GitHub sends `rerequested` when someone clicks "Re-run" on a check, and `requested_action` when
someone presses a button the bot put on it (`messages.checks.check_buttons`: "Run" on a skipped
pipeline, "Cancel" on an unfinished one). Both act on the run the check shows (its
`external_id` is the run id):

- Re-run / Run: the same pipeline again at the check's commit, with the run's overrides, as a
  new run (`trigger: command`, by the person who asked);
- Cancel: that run is cancelled, as `/cancel` would.

The trust rules are those of `/run` (`planning.may_command`): the person needs write access (or
KFP_BOT_ALLOWED_USERS); then a fork's or an outside contributor's head runs, as it does for a
maintainer's `/run`. A refusal or a problem is answered on the pull request. Re-running the
aggregate `kfp-bot` check re-runs the head's affected pipelines, like `check_suite`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from handlers.context import HandlerContext
from handlers.messages.checks import HEAD_CHECK_NAME
from handlers.messages.replies import check_request_text, command_error, command_refused
from handlers.models import CheckAction, CheckRunEvent, EventKind, PullRequestRef, RepoRef
from handlers.planning import checkout_and_plan, create_runs, may_command, pipelines_named, report_all, runnable
from handlers.router import Router
from handlers.run_models import Run, Trigger
from handlers.runs import cancel
from handlers.status_reporting import safely
from kfp_bot_errors import KfpBotError

router = Router()

_ASKED = {CheckAction.RERUN: "Re-run", CheckAction.RUN: "Run", CheckAction.CANCEL: "Cancel"}


@router.on(EventKind.CHECK_RUN, action=CheckAction.RERUN)
def rerun(event: CheckRunEvent, ctx: HandlerContext) -> None:
    """A check's "Re-run": that pipeline again at that commit; on the aggregate check, every affected one."""
    run = _shown_run(ctx, event)
    if run is None and event.name == HEAD_CHECK_NAME:
        rerun_head(ctx, event.repo, event.head_sha, event.sender, event.pull_numbers, event.installation_id,
                   id_parts=("check_run", event.check_run_id, event.delivery_id))
        return
    _act(ctx, event, run, _rerun)


@router.on(EventKind.CHECK_RUN, action=CheckAction.RUN)
def run_button(event: CheckRunEvent, ctx: HandlerContext) -> None:
    """The "Run" button of a skipped pipeline's check: that pipeline at that commit."""
    _act(ctx, event, _shown_run(ctx, event), _rerun)


@router.on(EventKind.CHECK_RUN, action=CheckAction.CANCEL)
def cancel_button(event: CheckRunEvent, ctx: HandlerContext) -> None:
    """The "Cancel" button of an unfinished pipeline's check: that run is cancelled."""
    _act(ctx, event, _shown_run(ctx, event), _cancel)


def _shown_run(ctx: HandlerContext, event: CheckRunEvent) -> Run | None:
    """The run a check of the bot shows (its external id), if it is one of this repository's."""
    run = ctx.store.get_run(event.external_id) if event.external_id else None
    return run if run is not None and run.repo == event.repo.full_name else None


def _act(ctx: HandlerContext, event: CheckRunEvent, run: Run | None,
         act: Callable[[HandlerContext, CheckRunEvent, Run, PullRequestRef], None]) -> None:
    """Do `act` on the shown run for someone allowed to, answering a refusal or problem on the PR."""
    if run is None:
        ctx.log.info("check run %s '%s' (delivery %s) shows no kfp-bot run: ignored", event.check_run_id,
                     event.name, event.delivery_id)
        return
    if run.pr is None:
        ctx.log.warning("check run %s of run %s (delivery %s): runs without a pull request (deploys) are "
                        "not re-run from GitHub", event.check_run_id, run.id, event.delivery_id)
        return
    text = check_request_text(run.pipeline, _ASKED[event.action])
    pull = _pull(ctx, event.repo, run.pr, event.installation_id, text, event.delivery_id)
    if pull is None or not _allowed(ctx, event.repo, pull, event.sender, event.installation_id, text):
        return
    try:
        act(ctx, event, run, pull)
    except KfpBotError as exc:
        _reply(ctx, event.repo, pull.number, event.installation_id, command_error(text, [str(exc)], []))


def rerun_head(ctx: HandlerContext, repo: RepoRef, sha: str, sender: str, pull_numbers: tuple[int, ...],
               installation_id: int | None, *, id_parts: tuple[object, ...]) -> None:
    """Run every pipeline the pull request changes at head `sha` again (for `sender`, if allowed)."""
    text = check_request_text(None, "Re-run")
    number = _pull_number(ctx, repo, sha, pull_numbers)
    if number is None:
        ctx.log.info("re-run of %s@%s asked by %s: no pull request of the bot has that head; nothing to run",
                     repo.full_name, sha[:12], sender)
        return
    pull = _pull(ctx, repo, number, installation_id, text, str(id_parts[-1]))
    if pull is None or not _allowed(ctx, repo, pull, sender, installation_id, text):
        return
    at = replace(pull, head_sha=sha)
    try:
        _, plan, _ = checkout_and_plan(ctx, repo, at)
        create_runs(ctx, repo, at, installation_id, runnable(plan), trigger=Trigger.COMMAND, triggered_by=sender,
                    id_parts=id_parts)
    except KfpBotError as exc:
        _reply(ctx, repo, pull.number, installation_id, command_error(text, [str(exc)], []))
        return
    report_all(ctx, repo, at, installation_id)


def _rerun(ctx: HandlerContext, event: CheckRunEvent, run: Run, pull: PullRequestRef) -> None:
    """The run's pipeline again, at the run's commit (which may no longer be the PR's head)."""
    at = replace(pull, head_sha=run.sha)
    repo_dir, plan, _ = checkout_and_plan(ctx, event.repo, at)
    chosen = pipelines_named(repo_dir, [run.pipeline], plan)
    create_runs(ctx, event.repo, at, event.installation_id, chosen, trigger=Trigger.COMMAND,
                triggered_by=event.sender, id_parts=("check_run", event.check_run_id, event.delivery_id),
                overrides=run.overrides)
    report_all(ctx, event.repo, at, event.installation_id)


def _cancel(ctx: HandlerContext, event: CheckRunEvent, run: Run, pull: PullRequestRef) -> None:
    if run.state.terminal:
        ctx.log.info("cancel of run %s asked by %s (delivery %s): it is %s already", run.id, event.sender,
                     event.delivery_id, run.state.value)
        return
    cancel(ctx, [run], f"cancelled by @{event.sender}")
    report_all(ctx, event.repo, replace(pull, head_sha=run.sha), event.installation_id)


def _pull_number(ctx: HandlerContext, repo: RepoRef, sha: str, pull_numbers: tuple[int, ...]) -> int | None:
    """The PR of a head: as GitHub lists it, else from the bot's runs (GitHub lists none for forks)."""
    if pull_numbers:
        return pull_numbers[0]
    numbers = sorted({r.pr for r in ctx.store.list_runs(repo=repo.full_name, sha=sha) if r.pr is not None})
    return numbers[0] if numbers else None


def _pull(ctx: HandlerContext, repo: RepoRef, number: int, installation_id: int | None, text: str,
          delivery: str) -> PullRequestRef | None:
    try:
        pull = ctx.pulls.get_pull(repo, number, installation_id)
    except KfpBotError as exc:
        ctx.log.error("%s (delivery %s): pull request #%s not read: %s", text, delivery, number, exc)
        raise
    if pull is None:
        ctx.log.warning("%s (delivery %s): %s has no pull request #%s", text, delivery, repo.full_name, number)
    return pull


def _allowed(ctx: HandlerContext, repo: RepoRef, pull: PullRequestRef, user: str, installation_id: int | None,
             text: str) -> bool:
    """`/run`'s rule: write access or KFP_BOT_ALLOWED_USERS; refused visibly on the PR otherwise."""
    try:
        allowed = may_command(ctx, repo, user, installation_id)
    except KfpBotError as exc:
        ctx.log.error("permission check for %s failed: %s", user, exc)
        allowed = False
    if not allowed:
        _reply(ctx, repo, pull.number, installation_id, command_refused(
            user, f"{text} needs write access to the repository (or being listed in KFP_BOT_ALLOWED_USERS)"))
    return allowed


def _reply(ctx: HandlerContext, repo: RepoRef, number: int, installation_id: int | None, body: str) -> None:
    safely(ctx, f"{repo.full_name}#{number}", "reply", lambda: ctx.reporter.reply(repo, number, body, installation_id))
