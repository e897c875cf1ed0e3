"""The vendored GitHub webhook examples and the helpers that load and sign them."""

from __future__ import annotations

import pytest

from tests.support.webhooks import available_payloads, delivery_headers, load_payload

EXPECTED = {
    "pull_request.opened", "pull_request.synchronize", "pull_request.reopened", "pull_request.closed",
    "pull_request.ready_for_review", "issue_comment.created", "issue_comment.created.issue",
    "issue_comment.edited", "ping", "push", "check_run.rerequested", "check_run.requested_action",
    "check_suite.rerequested", "pull_request.labeled",
}


def test_every_needed_example_is_vendored() -> None:
    assert set(available_payloads()) == EXPECTED


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.count(".") == 1))
def test_action_matches_the_file_name(name: str) -> None:
    event, action = name.split(".")
    payload = load_payload(name)
    assert payload["action"] == action
    subject = {"issue_comment": "comment"}.get(event, event)
    assert subject in payload and payload["repository"]["full_name"]


def test_comment_examples_tell_pull_requests_from_issues() -> None:
    assert "pull_request" in load_payload("issue_comment.created")["issue"]
    assert "pull_request" not in load_payload("issue_comment.created.issue")["issue"]
    assert load_payload("issue_comment.edited")["changes"]["body"]["from"]


def test_push_and_ping_examples() -> None:
    push = load_payload("push")
    assert push["ref"] == f"refs/heads/{push['repository']['default_branch']}"
    assert push["after"] == push["head_commit"]["id"]
    assert load_payload("ping")["hook"]["app_id"]


def test_overrides_are_applied_to_a_fresh_copy() -> None:
    payload = load_payload("pull_request.synchronize", {
        "pull_request.head.sha": "f" * 40, "after": "f" * 40,
        "repository.clone_url": "file:///tmp/monorepo", "pull_request.labels": [{"name": "kfp"}],
    })
    assert payload["pull_request"]["head"]["sha"] == payload["after"] == "f" * 40
    assert payload["repository"]["clone_url"] == "file:///tmp/monorepo"
    payload["pull_request"]["labels"][0]["name"] = "changed"
    untouched = load_payload("pull_request.synchronize")
    assert untouched["pull_request"]["head"]["sha"] == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"

    push = load_payload("push", {"commits.0.modified": ["pipelines/a/a.py"], "installation.id": 7})
    assert push["commits"][0]["modified"] == ["pipelines/a/a.py"] and push["installation"]["id"] == 7


def test_bad_names_and_paths_fail_loudly() -> None:
    with pytest.raises(FileNotFoundError, match="pull_request.opened"):
        load_payload("pull_request.merged")
    with pytest.raises(KeyError, match="pull_requests"):
        load_payload("pull_request.opened", {"pull_requests.head.sha": "x"})
    with pytest.raises(KeyError, match="commits.5"):
        load_payload("push", {"commits.5": {}})


def test_delivery_headers_are_signed_like_github() -> None:
    # The example in GitHub's "Validating webhook deliveries" documentation.
    headers = delivery_headers("ping", b"Hello, World!", "It's a Secret to Everybody", delivery_id="d-1")
    assert headers["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    assert (headers["X-GitHub-Event"], headers["X-GitHub-Delivery"]) == ("ping", "d-1")
    assert "X-Hub-Signature-256" not in delivery_headers("ping", b"{}", None)
