"""GitHub webhook JSON → the bot's frozen domain events, or a reason to ignore the delivery.

This is the only place that reads GitHub's payload dicts (through `bot.payload_reader.Reader`,
which bounds every value and names the field of any error): handlers get `PullRequestEvent`,
`IssueCommentEvent`, `PushEvent`, `CheckRunEvent` and `CheckSuiteEvent` values and never dig in
raw JSON. A body that does not have the shape its
`X-GitHub-Event` header announces is a `PayloadError` naming the missing or ill-typed field, so
the sender gets a 400 that says what is wrong instead of a handler failing later. Values that
reach a git command line (SHAs, refs, clone URLs) are validated here too
(`pipeline_registry.gitargs`): a clone URL of `--upload-pack=...` is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.bounds import BoundsError, check_login, check_ref, check_repo_name, check_sha, check_text
from bot.payload_reader import PayloadError, Reader, issue_number, json_type
from handlers.models import (
    CheckAction,
    CheckRunEvent,
    CheckSuiteEvent,
    Event,
    IssueCommentEvent,
    PullRequestAction,
    PullRequestEvent,
    PullRequestRef,
    PushEvent,
    RepoRef,
)
from pipeline_registry.gitargs import GitArgumentError, check_url

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Ignored:
    """A delivery the bot acknowledges and does nothing with, and why."""

    reason: str


def parse_event(event_name: str, delivery_id: str, payload: Mapping[str, Any], *,
                bot_login: str | None = None, deploy_branches: Sequence[str] = ()) -> Event | Ignored:
    """The domain event for one webhook delivery, or `Ignored` with the reason.

    `bot_login` is the bot's own GitHub login: its comments are ignored so that it never
    answers itself. `deploy_branches` are the branches whose pushes deploy (empty: the
    repository's default branch). Raises `PayloadError` when the body is not the event
    `event_name` says.
    """
    if event_name == "ping":
        return Ignored("pong")
    if event_name == "pull_request":
        return _pull_request(delivery_id, Reader(event_name, payload))
    if event_name == "issue_comment":
        return _issue_comment(delivery_id, Reader(event_name, payload), bot_login)
    if event_name == "push":
        return _push(delivery_id, Reader(event_name, payload), deploy_branches)
    if event_name == "check_run":
        return _check_run(delivery_id, Reader(event_name, payload))
    if event_name == "check_suite":
        return _check_suite(delivery_id, Reader(event_name, payload))
    return Ignored(f"event '{event_name}' is not handled")


def _pull_request(delivery_id: str, read: Reader) -> PullRequestEvent | Ignored:
    action = read.get("action", str)
    try:
        known = PullRequestAction(action)
    except ValueError:
        return Ignored(f"pull_request action '{action}' is not handled")
    return PullRequestEvent(
        delivery_id=delivery_id,
        action=known,
        repo=_repo(read),
        pull=_pull(read),
        sender=read.get("sender.login", str, check=check_login),
        installation_id=_installation_id(read),
        label=read.get("label.name", str) if known is PullRequestAction.LABELED else None,
    )


def _issue_comment(delivery_id: str, read: Reader, bot_login: str | None) -> IssueCommentEvent | Ignored:
    action = read.get("action", str)
    if action != "created":
        return Ignored(f"issue_comment action '{action}' is not handled: only new comments are")
    repo = _repo(read)
    number = read.get("issue.number", int, check=issue_number)
    comment_id = read.get("comment.id", int)
    body = read.get("comment.body", str, default="")
    author = read.get("comment.user.login", str, check=check_login)
    author_is_bot = read.get("comment.user.type", str, default="User") == "Bot" or _same_login(
        author, bot_login)
    if not read.has("issue.pull_request"):
        return Ignored(f"comment on issue #{number}, not on a pull request")
    if author_is_bot:
        return Ignored(f"comment by bot '{author}'")
    return IssueCommentEvent(
        delivery_id=delivery_id,
        repo=repo,
        number=number,
        comment_id=comment_id,
        body=body,
        author=author,
        author_is_bot=author_is_bot,
        installation_id=_installation_id(read),
    )


def _push(delivery_id: str, read: Reader, deploy_branches: Sequence[str]) -> PushEvent | Ignored:
    ref = read.get("ref", str, check=check_ref)
    after = read.get("after", str, check=check_sha)
    before = read.get("before", str, check=check_sha)
    repo = _repo(read)
    if not ref.startswith("refs/heads/"):
        return Ignored(f"push to {ref}: only branch pushes deploy, not tags")
    branch = ref.removeprefix("refs/heads/")
    if read.get("deleted", bool, default=False) or after == ZERO_SHA:
        return Ignored(f"push deleted branch '{branch}': nothing to deploy")
    wanted = tuple(deploy_branches) or (repo.default_branch,)
    if branch not in wanted:
        return Ignored(f"push to branch '{branch}': deploys happen on {', '.join(wanted)} "
                       "(KFP_BOT_DEPLOY_BRANCHES)")
    pusher = read.get("pusher.name", str, default="") or read.get("sender.login", str, default="")
    return PushEvent(delivery_id=delivery_id, repo=repo, ref=ref, before=before, after=after,
                     pusher=pusher, installation_id=_installation_id(read))


def _check_run(delivery_id: str, read: Reader) -> CheckRunEvent | Ignored:
    """`rerequested` (the Re-run link) and `requested_action` (a button the bot put on the check,
    https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_run); GitHub sends
    both only to the App that created the check run."""
    action = read.get("action", str)
    if action == "rerequested":
        wanted = CheckAction.RERUN
    elif action == "requested_action":
        identifier = read.get("requested_action.identifier", str)
        try:
            wanted = CheckAction(identifier)
        except ValueError:
            return Ignored(f"check_run button '{identifier}' is not one of the bot's")
        if wanted is CheckAction.RERUN:
            return Ignored(f"check_run button '{identifier}' is not one of the bot's")
    else:
        return Ignored(f"check_run action '{action}' is not handled")
    return CheckRunEvent(
        delivery_id=delivery_id, repo=_repo(read), action=wanted,
        check_run_id=read.get("check_run.id", int), name=read.get("check_run.name", str),
        head_sha=read.get("check_run.head_sha", str, check=check_sha),
        external_id=read.get("check_run.external_id", str, default=""),
        sender=read.get("sender.login", str, check=check_login),
        pull_numbers=_pull_numbers(read, "check_run.pull_requests"),
        installation_id=_installation_id(read))


def _check_suite(delivery_id: str, read: Reader) -> CheckSuiteEvent | Ignored:
    """`rerequested`: someone pressed "Re-run all checks" on the bot's suite."""
    action = read.get("action", str)
    if action != "rerequested":
        return Ignored(f"check_suite action '{action}' is not handled")
    return CheckSuiteEvent(
        delivery_id=delivery_id, repo=_repo(read), check_suite_id=read.get("check_suite.id", int),
        head_sha=read.get("check_suite.head_sha", str, check=check_sha),
        sender=read.get("sender.login", str, check=check_login),
        pull_numbers=_pull_numbers(read, "check_suite.pull_requests"), installation_id=_installation_id(read))


def _pull_numbers(read: Reader, path: str) -> tuple[int, ...]:
    """PR numbers GitHub lists for a check (empty for heads in forks, which GitHub leaves out)."""
    pulls = read.get(path, list, default=[])
    return tuple(_number(read, path, index, pull) for index, pull in enumerate(pulls))


def _number(read: Reader, path: str, index: int, pull: Any) -> int:
    number = pull.get("number") if isinstance(pull, Mapping) else None
    if not isinstance(number, int) or isinstance(number, bool):
        raise PayloadError(read.event_name, f"{path}.{index}.number", "should be a number")
    try:
        return issue_number(number)
    except BoundsError as exc:
        raise PayloadError(read.event_name, f"{path}.{index}.number", str(exc)) from None


def _same_login(login: str, bot_login: str | None) -> bool:
    """GitHub App bots comment as `name[bot]`; the setting may be given with or without it."""
    if not bot_login:
        return False

    def normal(value: str) -> str:
        return value.strip().lstrip("@").lower().removesuffix("[bot]")

    return normal(login) == normal(bot_login)


def _repo(read: Reader) -> RepoRef:
    return RepoRef(
        full_name=read.get("repository.full_name", str, check=check_repo_name),
        clone_url=read.get("repository.clone_url", str, check=_clone_url),
        default_branch=read.get("repository.default_branch", str, default="main", check=check_ref),
        html_url=read.get("repository.html_url", str, default=""),
        private=read.get("repository.private", bool, default=False),
    )


def _pull(read: Reader) -> PullRequestRef:
    # A fork deleted after the PR was opened leaves `head.repo` null: still a fork, name unknown.
    head_repo = read.get("pull_request.head.repo", dict, nullable=True)
    return PullRequestRef(
        number=read.get("pull_request.number", int, check=issue_number),
        title=read.get("pull_request.title", str, default=""),
        author=read.get("pull_request.user.login", str, check=check_login),
        html_url=read.get("pull_request.html_url", str),
        head_sha=read.get("pull_request.head.sha", str, check=check_sha),
        head_ref=read.get("pull_request.head.ref", str, check=check_ref),
        head_repo=read.get("pull_request.head.repo.full_name", str,
                                            check=check_repo_name) if head_repo is not None else "",
        head_clone_url=(read.get("pull_request.head.repo.clone_url", str, check=_clone_url)
                        if head_repo is not None else ""),
        base_sha=read.get("pull_request.base.sha", str, check=check_sha),
        base_ref=read.get("pull_request.base.ref", str, check=check_ref),
        draft=read.get("pull_request.draft", bool, default=False),
        author_association=read.get("pull_request.author_association", str, default="NONE"),
        labels=_labels(read),
    )


def _labels(read: Reader) -> tuple[str, ...]:
    """The names of the pull request's labels (`autorun.label` waits for one of them)."""
    names = []
    for index, item in enumerate(read.get("pull_request.labels", list, default=[])):
        field = f"pull_request.labels.{index}.name"
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str):
            raise PayloadError(read.event_name, field, f"should be a string, got {json_type(name)}")
        try:
            names.append(check_text(name))
        except BoundsError as exc:
            raise PayloadError(read.event_name, field, str(exc)) from None
    return tuple(names)


def _installation_id(read: Reader) -> int | None:
    if not read.has("installation"):
        return None
    return read.get("installation.id", int)


def _clone_url(value: str) -> str:
    """A clone URL git can only read as a location (`pipeline_registry.gitargs.check_url`): a
    value such as `--upload-pack=...` is refused here, with the field named by the reader."""
    check_text(value)
    try:
        return check_url(value, "")
    except GitArgumentError as exc:
        raise BoundsError(exc.message.strip(), hint=exc.hint) from None
