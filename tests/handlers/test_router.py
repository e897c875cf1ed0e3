"""Routing by event kind and action, and one registration per comment command."""

from __future__ import annotations

import pytest

from handlers import check_run, issue_comment, pull_request
from handlers.comment_commands import CommandKind
from handlers.models import (
    CheckAction,
    EventKind,
    PullRequestAction,
    PullRequestEvent,
    PullRequestRef,
    RepoRef,
    RunStart,
)
from handlers.router import CommandRouter, Router
from handlers.routes import ROUTES

REPO = RepoRef(full_name="octo/monorepo", clone_url="https://github.com/octo/monorepo.git")
PULL = PullRequestRef(number=7, title="t", author="octocat", html_url="https://github.com/octo/monorepo/pull/7",
                      head_sha="a" * 40, head_ref="topic", head_repo="octo/monorepo",
                      head_clone_url=REPO.clone_url, base_sha="b" * 40, base_ref="main")


def pull_event(action: PullRequestAction) -> PullRequestEvent:
    return PullRequestEvent(delivery_id="d-1", action=action, repo=REPO, pull=PULL, sender="octocat")


def test_an_action_reaches_only_its_handlers_and_those_of_every_action() -> None:
    router = Router()
    seen: list[str] = []

    @router.on(EventKind.PULL_REQUEST, action=PullRequestAction.CLOSED)
    def closed(event, ctx) -> None:
        seen.append("closed")

    @router.on(EventKind.PULL_REQUEST, action=PullRequestAction.OPENED)
    @router.on(EventKind.PULL_REQUEST, action=PullRequestAction.SYNCHRONIZE)
    def new_head(event, ctx) -> None:
        seen.append("new head")

    @router.on(EventKind.PULL_REQUEST)
    def every(event, ctx) -> None:
        seen.append("every")

    assert router.dispatch(pull_event(PullRequestAction.SYNCHRONIZE), None) == 2  # type: ignore[arg-type]
    assert seen == ["every", "new head"]
    seen.clear()
    assert router.dispatch(pull_event(PullRequestAction.CLOSED), None) == 2  # type: ignore[arg-type]
    assert seen == ["every", "closed"]
    seen.clear()
    assert router.dispatch(pull_event(PullRequestAction.REOPENED), None) == 1  # type: ignore[arg-type]
    assert seen == ["every"]
    assert router.dispatch(RunStart(run_id="r"), None) == 0  # type: ignore[arg-type]


def test_the_bot_routes_each_pull_request_action_to_one_handler() -> None:
    special = {PullRequestAction.CLOSED: pull_request.closed, PullRequestAction.LABELED: pull_request.labeled}
    for action in PullRequestAction:
        expected = special.get(action, pull_request.new_head)
        assert tuple(ROUTES.handlers_for(EventKind.PULL_REQUEST, action)) == (expected,)


def test_every_comment_command_has_exactly_one_handler() -> None:
    assert issue_comment.commands.missing() == []
    assert len({issue_comment.commands.handler_for(kind) for kind in CommandKind}) == len(CommandKind)


def test_a_command_registered_twice_is_refused_at_import() -> None:
    commands: CommandRouter = CommandRouter(CommandKind)
    commands.on(CommandKind.HELP)(lambda *args: None)
    with pytest.raises(ValueError, match="/help is handled by"):
        commands.on(CommandKind.HELP)(lambda *args: None)


def test_each_check_run_action_has_its_own_handler() -> None:
    handlers = {action: tuple(ROUTES.handlers_for(EventKind.CHECK_RUN, action)) for action in CheckAction}
    assert handlers == {CheckAction.RERUN: (check_run.rerun,), CheckAction.RUN: (check_run.run_button,),
                        CheckAction.CANCEL: (check_run.cancel_button,)}
