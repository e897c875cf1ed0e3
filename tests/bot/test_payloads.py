"""GitHub's example payloads become the bot's events, or are ignored with a reason."""

from __future__ import annotations

import pytest

from bot.payloads import Ignored, PayloadError, parse_event
from handlers.event_codec import event_from_dict, event_to_dict
from handlers.models import (
    CheckAction,
    CheckRunEvent,
    CheckSuiteEvent,
    IssueCommentEvent,
    PullRequestAction,
    PullRequestEvent,
    PushEvent,
    RepoRef,
)
from tests.support.webhooks import load_payload

HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE_SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"


@pytest.mark.parametrize("action", [a.value for a in PullRequestAction])
def test_pull_request_actions_the_bot_acts_on(action: str) -> None:
    event = parse_event("pull_request", "d-1", load_payload(f"pull_request.{action}"))

    assert isinstance(event, PullRequestEvent)
    assert event.action is PullRequestAction(action)
    assert event.delivery_id == "d-1"
    assert event.repo == RepoRef(full_name="Codertocat/Hello-World",
                                 clone_url="https://github.com/Codertocat/Hello-World.git",
                                 default_branch="master", html_url="https://github.com/Codertocat/Hello-World",
                                 private=False)
    assert event.pull.number == 2
    assert event.pull.head_sha == HEAD_SHA
    assert event.pull.base_sha == BASE_SHA
    assert event.pull.head_ref == "changes"
    assert event.pull.base_ref == "master"
    assert event.pull.head_repo == "Codertocat/Hello-World"
    assert event.pull.head_clone_url == "https://github.com/Codertocat/Hello-World.git"
    assert event.pull.author == "Codertocat"
    assert event.pull.html_url == "https://github.com/Codertocat/Hello-World/pull/2"
    assert event.pull.title == "Update the README with new information."
    assert event.pull.author_association == "OWNER"
    assert event.sender == "Codertocat"
    assert event.installation_id == 1
    label = ":bug" if action == "labeled" else ""
    assert event.key == f"pr:Codertocat/Hello-World#2@{HEAD_SHA}:{action}{label}"


def test_a_label_added_and_the_labels_of_the_pull_request() -> None:
    event = parse_event("pull_request", "d-1", load_payload("pull_request.labeled", {
        "label.name": "run-pipelines", "pull_request.labels": [{"name": "bug"}, {"name": "run-pipelines"}]}))

    assert isinstance(event, PullRequestEvent)
    assert event.label == "run-pipelines"
    assert event.pull.labels == ("bug", "run-pipelines")
    assert parse_event("pull_request", "d-1", load_payload("pull_request.opened")).pull.labels == ("bug",)


@pytest.mark.parametrize(("labels", "message"), [
    ([{"id": 1}], "field 'pull_request.labels.0.name' should be a string, got null"),
    (["bug"], "field 'pull_request.labels.0.name' should be a string, got null"),
    ([{"name": "ok"}, {"name": 7}], "field 'pull_request.labels.1.name' should be a string, got a number"),
    ({"name": "x"}, "field 'pull_request.labels' should be an array"),
])
def test_malformed_labels_are_named_by_their_path(labels: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace(".", r"\.")):
        parse_event("pull_request", "d-1", load_payload("pull_request.opened", {"pull_request.labels": labels}))


def test_pull_request_from_a_fork_and_a_draft() -> None:
    payload = load_payload("pull_request.opened", {
        "pull_request.head.repo.full_name": "outsider/Hello-World",
        "pull_request.head.repo.clone_url": "https://github.com/outsider/Hello-World.git",
        "pull_request.draft": True,
    })

    event = parse_event("pull_request", "d-1", payload)

    assert isinstance(event, PullRequestEvent)
    assert event.pull.draft is True
    assert event.pull.head_repo == "outsider/Hello-World"
    assert event.pull.is_fork(event.repo)


def test_a_deleted_fork_is_still_a_fork_with_no_name() -> None:
    event = parse_event("pull_request", "d-1", load_payload("pull_request.closed", {"pull_request.head.repo": None}))

    assert isinstance(event, PullRequestEvent)
    assert event.pull.head_repo == ""
    assert event.pull.head_clone_url == ""
    assert event.pull.is_fork(event.repo)


def test_other_pull_request_actions_are_ignored_with_the_action_named() -> None:
    outcome = parse_event("pull_request", "d-1", load_payload("pull_request.opened", {"action": "unlabeled"}))

    assert outcome == Ignored("pull_request action 'unlabeled' is not handled")


def test_a_delivery_without_installation_has_no_installation_id() -> None:
    payload = load_payload("pull_request.opened")
    del payload["installation"]

    event = parse_event("pull_request", "d-1", payload)

    assert isinstance(event, PullRequestEvent)
    assert event.installation_id is None


def test_a_new_comment_on_a_pull_request() -> None:
    payload = load_payload("issue_comment.created", {"comment.body": "/run head-pose-pipeline epochs=1"})

    event = parse_event("issue_comment", "d-2", payload)

    assert event == IssueCommentEvent(
        delivery_id="d-2",
        repo=RepoRef(full_name="Codertocat/Hello-World", clone_url="https://github.com/Codertocat/Hello-World.git",
                     default_branch="master", html_url="https://github.com/Codertocat/Hello-World"),
        number=1, comment_id=492700400, body="/run head-pose-pipeline epochs=1", author="Codertocat",
        author_is_bot=False, installation_id=1)


def test_a_comment_on_a_plain_issue_is_ignored() -> None:
    outcome = parse_event("issue_comment", "d-2", load_payload("issue_comment.created.issue"))

    assert outcome == Ignored("comment on issue #1, not on a pull request")


def test_edited_comments_are_ignored() -> None:
    outcome = parse_event("issue_comment", "d-2", load_payload("issue_comment.edited"))

    assert outcome == Ignored("issue_comment action 'edited' is not handled: only new comments are")


def test_comments_by_bots_are_ignored() -> None:
    payload = load_payload("issue_comment.created", {"comment.user.type": "Bot",
                                                     "comment.user.login": "dependabot[bot]"})

    assert parse_event("issue_comment", "d-2", payload) == Ignored("comment by bot 'dependabot[bot]'")


@pytest.mark.parametrize("bot_login", ["kfp-bot", "kfp-bot[bot]", "KFP-Bot", "@kfp-bot"])
def test_the_bots_own_comments_are_ignored_however_its_login_is_configured(bot_login: str) -> None:
    # A token-based bot comments as a plain user, so its login is the only way to tell.
    payload = load_payload("issue_comment.created", {"comment.user.login": "kfp-bot[bot]",
                                                     "comment.user.type": "User"})

    assert parse_event("issue_comment", "d-2", payload, bot_login=bot_login) == Ignored(
        "comment by bot 'kfp-bot[bot]'")


def test_a_user_whose_login_only_resembles_the_bot_is_not_ignored() -> None:
    payload = load_payload("issue_comment.created", {"comment.user.login": "kfp-bot-fan"})

    event = parse_event("issue_comment", "d-2", payload, bot_login="kfp-bot")

    assert isinstance(event, IssueCommentEvent)
    assert event.author == "kfp-bot-fan"


@pytest.mark.parametrize(("name", "reason"), [
    ("ping", "pong"),
    ("check_run.requested_action", "check_run button 'lgtm|26764' is not one of the bot's"),
])
def test_events_the_bot_does_not_act_on(name: str, reason: str) -> None:
    assert parse_event(name.split(".")[0], "d-3", load_payload(name)) == Ignored(reason)


def test_a_push_body_under_an_issue_comment_header_names_the_missing_field() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_event("issue_comment", "d-4", load_payload("push"))

    assert caught.value.field == "action"
    assert str(caught.value) == "issue_comment payload: field 'action' is missing"


def test_a_missing_nested_field_is_named_by_its_path() -> None:
    payload = load_payload("pull_request.opened")
    del payload["pull_request"]["head"]["sha"]

    with pytest.raises(PayloadError, match=r"field 'pull_request\.head\.sha' is missing"):
        parse_event("pull_request", "d-4", payload)


@pytest.mark.parametrize(("path", "value", "message"), [
    ("pull_request.number", "2", "field 'pull_request.number' should be a number, got a string"),
    ("pull_request.number", True, "field 'pull_request.number' should be a number, got true/false"),
    ("pull_request.head", "ec26c3e", "field 'pull_request.head' is not an object"),
    ("repository.full_name", None, "field 'repository.full_name' is null"),
    ("pull_request.draft", "no", "field 'pull_request.draft' should be true or false, got a string"),
    ("installation.id", [1], "field 'installation.id' should be a number, got an array"),
])
def test_ill_typed_fields_are_named_with_what_was_expected(path: str, value: object, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_event("pull_request", "d-4", load_payload("pull_request.opened", {path: value}))

    assert str(caught.value) == f"pull_request payload: {message}"


def test_parsed_events_survive_the_bus_encoding() -> None:
    for name, event_name in (("pull_request.synchronize", "pull_request"), ("issue_comment.created", "issue_comment")):
        event = parse_event(event_name, "d-5", load_payload(name))

        assert event_from_dict(event_to_dict(event)) == event


def test_a_push_to_the_default_branch_is_a_push_event() -> None:
    event = parse_event("push", "d-6", load_payload("push"))

    assert isinstance(event, PushEvent)
    assert (event.branch, event.after, event.pusher) == ("master", "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                                                         "Codertocat")
    assert event.repo.full_name == "Codertocat/Hello-World"
    assert event_from_dict(event_to_dict(event)) == event


@pytest.mark.parametrize(("overrides", "branches", "reason"), [
    ({"ref": "refs/heads/feature"}, (), "push to branch 'feature': deploys happen on master (KFP_BOT_DEPLOY_BRANCHES)"),
    ({"ref": "refs/heads/master"}, ("release",), "push to branch 'master': deploys happen on release "
                                                 "(KFP_BOT_DEPLOY_BRANCHES)"),
    ({"ref": "refs/tags/v1.0"}, (), "push to refs/tags/v1.0: only branch pushes deploy, not tags"),
    ({"deleted": True, "after": "0" * 40}, (), "push deleted branch 'master': nothing to deploy"),
])
def test_pushes_that_do_not_deploy_say_why(overrides: dict, branches: tuple, reason: str) -> None:
    outcome = parse_event("push", "d-7", load_payload("push", overrides), deploy_branches=branches)

    assert outcome == Ignored(reason)


def test_a_push_to_a_configured_deploy_branch_is_a_push_event() -> None:
    event = parse_event("push", "d-8", load_payload("push", {"ref": "refs/heads/release"}),
                        deploy_branches=("main", "release"))

    assert isinstance(event, PushEvent) and event.branch == "release"


def test_check_run_rerequested_is_a_re_run_of_that_check() -> None:
    event = parse_event("check_run", "d-7", load_payload("check_run.rerequested"))
    assert isinstance(event, CheckRunEvent)
    assert (event.action, event.check_run_id, event.name) == (CheckAction.RERUN, 4, "randscape")
    assert event.repo.full_name == "github/hello-world" and event.installation_id == 1
    assert event.head_sha == load_payload("check_run.rerequested")["check_run"]["head_sha"]
    assert event_from_dict(event_to_dict(event)) == event


def test_check_run_buttons_of_the_bot_are_actions_and_others_are_ignored() -> None:
    pressed = parse_event("check_run", "d-8", load_payload("check_run.requested_action", {
        "requested_action.identifier": "cancel", "check_run.external_id": "run-1"}))
    assert isinstance(pressed, CheckRunEvent)
    assert (pressed.action, pressed.external_id, pressed.pull_numbers) == (CheckAction.CANCEL, "run-1", (26764,))
    assert pressed.sender == load_payload("check_run.requested_action")["sender"]["login"]
    assert event_from_dict(event_to_dict(pressed)) == pressed
    foreign = parse_event("check_run", "d-9", load_payload("check_run.requested_action"))
    assert foreign == Ignored("check_run button 'lgtm|26764' is not one of the bot's")
    assert parse_event("check_run", "d-10", load_payload("check_run.requested_action", {
        "action": "created"})) == Ignored("check_run action 'created' is not handled")


def test_check_suite_rerequested_names_the_head_and_its_pull_requests() -> None:
    event = parse_event("check_suite", "d-11", load_payload("check_suite.rerequested"))
    assert isinstance(event, CheckSuiteEvent)
    assert (event.head_sha, event.pull_numbers, event.check_suite_id) == (HEAD_SHA, (2,), 118578147)
    assert event.repo.full_name == "Codertocat/Hello-World" and event.installation_id == 957387
    assert event_from_dict(event_to_dict(event)) == event
    with pytest.raises(PayloadError, match="check_suite.head_sha"):
        parse_event("check_suite", "d-12", load_payload("check_suite.rerequested", {"check_suite.head_sha": 7}))


@pytest.mark.parametrize(("event_name", "name", "path", "value", "message"), [
    ("pull_request", "pull_request.opened", "installation.id", 2**63,
     "field 'installation.id' must be between 1 and 9223372036854775807, got 9223372036854775808"),
    ("pull_request", "pull_request.opened", "pull_request.number", 2**31,
     "field 'pull_request.number' must be between 1 and 2147483647, got 2147483648"),
    ("pull_request", "pull_request.opened", "pull_request.number", 0,
     "field 'pull_request.number' must be between 1 and 2147483647, got 0"),
    ("issue_comment", "issue_comment.created", "comment.id", -1,
     "field 'comment.id' must be between 1 and 9223372036854775807, got -1"),
    ("issue_comment", "issue_comment.created", "issue.number", 10**30,
     "field 'issue.number' must be between 1 and 2147483647, got 1000000000000000000000000000000"),
    ("pull_request", "pull_request.opened", "pull_request.title", "fix \udc80",
     "field 'pull_request.title' is not valid Unicode text (lone surrogate at character 4)"),
    ("pull_request", "pull_request.opened", "pull_request.user.login", "Codertocat\ud83d",
     "field 'pull_request.user.login' is not a GitHub login, got 'Codertocat\\\\ud83d'"),
    ("pull_request", "pull_request.opened", "pull_request.head.ref", "feature\x00",
     "field 'pull_request.head.ref' contains a NUL character (at 7)"),
    ("pull_request", "pull_request.opened", "repository.full_name", "../../etc",
     "field 'repository.full_name' is not a repository name (owner/name), got '../../etc'"),
    ("pull_request", "pull_request.opened", "pull_request.head.sha", "HEAD~1",
     "field 'pull_request.head.sha' is not a commit SHA (40 hexadecimal digits), got 'HEAD~1'"),
    ("pull_request", "pull_request.opened", "pull_request.base.ref", "main..evil",
     "field 'pull_request.base.ref' is not a valid git branch or ref name, got 'main..evil'"),
    ("push", "push", "after", "--upload-pack=touch /tmp/x",
     "field 'after' is not a commit SHA (40 hexadecimal digits), got '--upload-pack=touch /tmp/x'"),
    ("issue_comment", "issue_comment.created", "comment.body", "/run \x00",
     "field 'comment.body' contains a NUL character (at 5)"),
])
def test_values_the_bot_could_not_store_or_hand_to_git_are_refused_naming_the_field(
        event_name: str, name: str, path: str, value: object, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_event(event_name, "d-9", load_payload(name, {path: value}))

    assert str(caught.value) == f"{event_name} payload: {message}"
    assert caught.value.field == path
