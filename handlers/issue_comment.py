"""`issue_comment` events on pull requests: the bot's commands.

`/run NAME k=v`, `/run all`, `/plan`, `/cancel [NAME]`, `/help`, `/ok-to-run`. Every command
gets a visible answer: a reaction when accepted, a reply when refused or invalid (saying what
is valid), a plan or help text when asked for. Commands that start, stop or approve work need
write access (or KFP_BOT_ALLOWED_USERS).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from handlers.comment_commands import ALL_PIPELINES, Command, CommandKind, CommandProblem, parse_comment
from handlers.context import HandlerContext
from handlers.messages.guardrails import budget_reply
from handlers.messages.replies import (
    approved,
    cancel_reply,
    command_error,
    command_help,
    command_refused,
    plan_reply,
    run_accepted,
)
from handlers.models import EventKind, IssueCommentEvent, PullRequestRef
from handlers.planning import (
    checkout_and_plan,
    create_runs,
    evaluate_trust,
    may_command,
    pipelines_named,
    report_all,
    runnable,
    supersede,
)
from handlers.router import CommandRouter, Router
from handlers.run_diffs import pipeline_diff
from handlers.run_models import Trigger
from handlers.run_queue import budget_refusal, remember_limits
from handlers.runs import cancel
from handlers.status_reporting import safely
from handlers.trusted import default_branch, review, show_changes
from kfp_bot_errors import KfpBotError
from pipeline_registry.errors import UnknownPipelineError
from pipeline_registry.repository import Repository
from pipeline_registry.spec_diff import PipelineDiff

router = Router()
CommandHandler = Callable[[Command, IssueCommentEvent, PullRequestRef, HandlerContext], None]
commands: CommandRouter[CommandKind, CommandHandler] = CommandRouter(CommandKind)


@router.on(EventKind.ISSUE_COMMENT)
def on_comment(event: IssueCommentEvent, ctx: HandlerContext) -> None:
    """Answer every command of a new PR comment."""
    if event.author_is_bot or (ctx.policy.bot_login and event.author == ctx.policy.bot_login):
        return
    parsed = parse_comment(event.body)
    if not parsed:
        return
    pull = ctx.pulls.get_pull(event.repo, event.number, event.installation_id)
    if pull is None:
        _reply(ctx, event, command_error(parsed[0].text, [
            f"kfp-bot has not seen pull request #{event.number} yet: push a commit or reopen it"], []))
        return
    for command in parsed:
        if isinstance(command, CommandProblem):
            _reply(ctx, event, command_error(command.text, [command.message], []))
            continue
        try:
            _execute(command, event, pull, ctx)
        except UnknownPipelineError as exc:
            _reply(ctx, event, command_error(command.text, [exc.message], exc.known))
        except KfpBotError as exc:
            _reply(ctx, event, command_error(command.text, [str(exc)], []))


def _execute(command: Command, event: IssueCommentEvent, pull: PullRequestRef, ctx: HandlerContext) -> None:
    if command.kind.needs_write_access and not _allowed(ctx, event):
        _reply(ctx, event, command_refused(
            event.author, f"{command.text} needs write access to the repository "
                          "(or being listed in KFP_BOT_ALLOWED_USERS)"))
        return
    commands.handler_for(command.kind)(command, event, pull, ctx)


def _allowed(ctx: HandlerContext, event: IssueCommentEvent) -> bool:
    try:
        return may_command(ctx, event.repo, event.author, event.installation_id, _trusted_users(ctx, event))
    except KfpBotError as exc:
        ctx.log.error("permission check for %s failed: %s", event.author, exc)
        return False


def _trusted_users(ctx: HandlerContext, event: IssueCommentEvent) -> tuple[str, ...]:
    """`allowed_users` of the default branch's `.kfp-bot.yaml` (a PR cannot add itself)."""
    try:
        return default_branch(ctx, event.repo).config.allowed_users
    except KfpBotError as exc:
        ctx.log.warning("allowed_users of %s not read: %s", event.repo.full_name, exc)
        return ()


def _bound(ctx: HandlerContext, event: IssueCommentEvent, pull: PullRequestRef) -> PullRequestRef:
    """The pull request at the commit a command acts on.

    An untrusted author's PR (a fork, or no write access) runs the head the bot knew when the
    comment arrived, never a commit pushed after it; a trusted author's runs the head now.
    """
    untrusted = pull.is_fork(event.repo)
    if not untrusted:
        try:
            untrusted = not may_command(ctx, event.repo, pull.author, event.installation_id)
        except KfpBotError:
            untrusted = True
    if not untrusted or event.head_sha == pull.head_sha:
        return pull
    if event.head_sha is None:
        raise KfpBotError("kfp-bot had not seen the head of this pull request when you commented, so it "
                          "cannot tell which commit you reviewed",
                          hint="push a commit (or close and reopen the pull request), then comment again")
    return dataclasses.replace(pull, head_sha=event.head_sha)


@commands.on(CommandKind.HELP)
def _help(command: Command, event: IssueCommentEvent, pull: PullRequestRef, ctx: HandlerContext) -> None:
    """`/help`: every command, and the pipelines of the PR's head."""
    try:
        repo_dir, _, _ = checkout_and_plan(ctx, event.repo, pull)
        names = sorted(Repository.open(repo_dir).pipelines())
    except KfpBotError:
        names = []
    _reply(ctx, event, command_help(names))


@commands.on(CommandKind.PLAN)
def _plan(command: Command, event: IssueCommentEvent, pull: PullRequestRef, ctx: HandlerContext) -> None:
    """`/plan`: the pipelines the PR affects, why, and what the change does to each compiled one
    (compiled at the head and the merge base when the head may run: a fork's or an outside
    contributor's code is compiled only once a maintainer approved that commit)."""
    repo_dir, plan, _ = checkout_and_plan(ctx, event.repo, pull)
    names = [p.name for p in runnable(plan)]
    trust = evaluate_trust(ctx, event.repo, pull, event.installation_id, _trusted_users(ctx, event))
    if trust.may_run:
        diffs = [pipeline_diff(ctx, repo_dir, name, pull.base_sha) for name in names]
    else:
        diffs = [PipelineDiff(name, note=f"No pipeline diff: this head's code is not compiled until it may run "
                                         f"({trust.reason}).") for name in names]
    _reply(ctx, event, plan_reply(plan.to_json(), diffs))


@commands.on(CommandKind.RUN)
def _run(command: Command, event: IssueCommentEvent, live: PullRequestRef, ctx: HandlerContext) -> None:
    """`/run NAME k=v` and `/run all`: runs at the commented head, with the overrides checked first."""
    pull = _bound(ctx, event, live)
    _acknowledge(ctx, event)
    repo_dir, plan, _ = checkout_and_plan(ctx, event.repo, pull)
    if command.pipeline == ALL_PIPELINES:
        chosen = runnable(plan)
    else:
        chosen = pipelines_named(repo_dir, [command.pipeline or ""], plan)
        _validate_overrides(ctx, repo_dir, command, chosen[0].name)
    view = review(ctx, event.repo, repo_dir, [p.name for p in chosen])
    limits = remember_limits(ctx, event.repo.full_name, view.config)
    refusal = budget_refusal(ctx, event.repo.full_name, pull.number, len(chosen), limits) if chosen else None
    if refusal is not None:  # beyond a day's budget: nothing runs, the reply says when it resets
        _reply(ctx, event, budget_reply(event.author, command.text, len(chosen), refusal))
        return
    runs = create_runs(ctx, event.repo, pull, event.installation_id, chosen, trigger=Trigger.COMMAND,
                       triggered_by=event.author, id_parts=(event.comment_id,),
                       overrides=command.overrides, trusted_changes=view.changes)
    show_changes(ctx, event.repo, pull.head_sha, view, event.installation_id)
    if not chosen:
        _reply(ctx, event, command_error(command.text, ["no pipeline is affected by this pull request"],
                                                  sorted(Repository.open(repo_dir).pipelines())))
    elif runs:
        _reply(ctx, event, run_accepted(event.author, runs, head_now=_moved(pull, live), pages=ctx.pages))
    report_all(ctx, event.repo, live, event.installation_id)


def _moved(bound: PullRequestRef, live: PullRequestRef) -> str | None:
    """The live head when a command was bound to an older one."""
    return live.head_sha if live.head_sha != bound.head_sha else None


def _validate_overrides(ctx: HandlerContext, repo_dir: Path, command: Command, name: str) -> None:
    """Reject unknown or mistyped parameters before anything is created."""
    if not command.assignments:
        return
    from pipeline_registry.parameters import resolve_parameters

    repository = Repository.open(repo_dir)
    package = ctx.compiler.compile(repo_dir, name, repository.component_images(name),
                                   ctx.work_dir / "validate" / name)
    resolve_parameters(repository.settings(name), command.overrides, package.inputs)


@commands.on(CommandKind.CANCEL)
def _cancel(command: Command, event: IssueCommentEvent, pull: PullRequestRef, ctx: HandlerContext) -> None:
    """`/cancel [NAME]`: the PR's unfinished runs (of NAME)."""
    active = ctx.store.list_runs(repo=event.repo.full_name, pr=event.number, active=True)
    targets = [r for r in active if command.pipeline in (None, r.pipeline)]
    if not targets:
        names = sorted({r.pipeline for r in active})
        _reply(ctx, event, command_error(command.text, ["no unfinished run to cancel"
                                                  + (f" for {command.pipeline}" if command.pipeline else "")],
                                                  names))
        return
    _acknowledge(ctx, event)
    cancelled = cancel(ctx, targets, f"cancelled by @{event.author}")
    _reply(ctx, event, cancel_reply(event.author, cancelled, command.pipeline))


@commands.on(CommandKind.OK_TO_RUN)
def _approve(command: Command, event: IssueCommentEvent, live: PullRequestRef, ctx: HandlerContext) -> None:
    """`/ok-to-run`: approve the commented head and start its runs."""
    pull = _bound(ctx, event, live)
    ctx.store.approve(event.repo.full_name, event.number, pull.head_sha, event.author)
    _acknowledge(ctx, event)
    if pull.head_sha == live.head_sha:
        supersede(ctx, event.repo, pull, f"superseded by {pull.head_sha[:7]}", keep_sha=pull.head_sha)
    repo_dir, plan, _ = checkout_and_plan(ctx, event.repo, pull)
    pipelines = runnable(plan)
    view = review(ctx, event.repo, repo_dir, [p.name for p in pipelines])
    remember_limits(ctx, event.repo.full_name, view.config)
    create_runs(ctx, event.repo, pull, event.installation_id, pipelines, trigger=Trigger.AUTORUN,
                triggered_by=event.author, id_parts=("ok-to-run", event.comment_id),
                trusted_changes=view.changes)
    show_changes(ctx, event.repo, pull.head_sha, view, event.installation_id)
    _reply(ctx, event, approved(event.author, pull.head_sha, [p.name for p in pipelines],
                                         head_now=_moved(pull, live)))
    report_all(ctx, event.repo, live, event.installation_id)


def _acknowledge(ctx: HandlerContext, event: IssueCommentEvent) -> None:
    safely(ctx, str(event.comment_id), "reaction",
           lambda: ctx.reporter.acknowledge(event.repo, event.comment_id, event.installation_id))


def _reply(ctx: HandlerContext, event: IssueCommentEvent, body: str) -> None:
    safely(ctx, f"{event.repo.full_name}#{event.number}", "reply",
           lambda: ctx.reporter.reply(event.repo, event.number, body, event.installation_id))
