"""Argument injection into git: payload values never become git options, with a real git binary.

The attack of the issue: a pull request whose clone URL is `--upload-pack=touch <marker>` made
`git fetch` run that command. Each test checks that the marker file does not exist afterwards,
and that the refusal names the field it came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.checkout import GitSource
from handlers.clone_urls import CloneUrlRefused, check_clone_url
from handlers.context import Policy
from handlers.models import RepoRef
from pipeline_registry.errors import RepositoryError
from tests.handlers.conftest import PR, REPO, Bot, pull_request_payload
from tests.support.gitrepo import GitRepo
from tests.support.webhooks import load_payload


def _attack(marker: Path) -> str:
    return f"--upload-pack=touch {marker}"


@pytest.mark.parametrize("field", ["repository.clone_url", "pull_request.head.repo.clone_url"])
def test_a_pull_request_with_an_option_as_clone_url_is_refused_naming_the_field(bot: Bot, tmp_path: Path,
                                                                                field: str) -> None:
    marker = tmp_path / "pwned"
    head = bot.branch("evil", {"README.md": "x\n"})
    payload = pull_request_payload("opened", bot.repo.root, head, bot.base, author="alice", draft=False,
                                   fork=None, number=PR, clone_url=None)
    _set(payload, field, _attack(marker))
    answer = bot.deliver("pull_request", payload)
    bot.settle()

    assert answer.status_code == 400
    assert f"field '{field}' starts with '-'" in answer.json()["reason"]
    assert not marker.exists()
    assert bot.runs(pr=PR) == []


@pytest.mark.parametrize("field,value,problem", [
    ("pull_request.head.sha", "--output=/tmp/x", "is not a commit SHA"),
    ("pull_request.head.sha", "a" * 20 + ".." + "b" * 18, "is not a commit SHA"),
    ("pull_request.base.sha", "a" * 40 + "\n", "is not a commit SHA"),
    ("pull_request.head.ref", "--upload-pack=x", "is not a valid git branch or ref name"),
    ("pull_request.base.ref", "main..evil", "is not a valid git branch or ref name"),
    ("pull_request.head.ref", "a\x07b", "is not a valid git branch or ref name"),
    ("pull_request.head.ref", "feature/-x", "is not a valid git branch or ref name"),
    ("repository.default_branch", "-main", "is not a valid git branch or ref name"),
])
def test_shas_and_refs_from_a_payload_are_validated(bot: Bot, field: str, value: str, problem: str) -> None:
    head = bot.branch("evil", {"README.md": "x\n"})
    payload = pull_request_payload("opened", bot.repo.root, head, bot.base, author="alice", draft=False,
                                   fork=None, number=PR, clone_url=None)
    _set(payload, field, value)
    answer = bot.deliver("pull_request", payload)

    assert answer.status_code == 400
    error = answer.json()["reason"]
    assert f"field '{field}'" in error and problem in error


@pytest.mark.parametrize("field,value", [("ref", "refs/heads/--upload-pack=x"), ("ref", "refs/heads/a..b"),
                                         ("after", "-" * 40), ("before", "HEAD~1")])
def test_push_refs_and_shas_are_validated(bot: Bot, field: str, value: str) -> None:
    payload = load_payload("push", {"repository.full_name": REPO, "repository.clone_url": str(bot.repo.root),
                                    "repository.default_branch": "main", "ref": "refs/heads/main",
                                    "after": bot.base, field: value})
    answer = bot.deliver("push", payload)
    assert answer.status_code == 400
    assert f"field '{field}'" in answer.json()["reason"]


def test_git_source_refuses_an_option_as_url_and_never_runs_it(example_repo: GitRepo, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = GitSource(tmp_path / "cache")
    with pytest.raises(RepositoryError, match="clone URL starts with '-'"):
        source.checkout(RepoRef(full_name=REPO, clone_url=""), _attack(marker), example_repo.head())
    assert not marker.exists()


def test_git_fetch_gets_payload_values_after_the_end_of_options(example_repo: GitRepo, tmp_path: Path) -> None:
    """Defence in depth: even a value that got past validation reaches git after `--`."""
    marker = tmp_path / "pwned"
    source = GitSource(tmp_path / "cache")
    mirror = tmp_path / "cache" / "mirror.git"
    source._ensure_mirror(mirror)
    with pytest.raises(RepositoryError, match="cannot fetch"):
        source._fetch(mirror, _attack(marker), [example_repo.head()], {})
    assert not marker.exists()
    # The same call fetches a real repository.
    source._fetch(mirror, str(example_repo.root), [example_repo.head()], {})
    assert source._has_commit(mirror, example_repo.head())


def test_git_source_never_uses_the_ext_transport(example_repo: GitRepo, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = GitSource(tmp_path / "cache")
    mirror = tmp_path / "cache" / "mirror.git"
    source._ensure_mirror(mirror)
    with pytest.raises(RepositoryError):
        source._fetch(mirror, f"ext::sh -c touch% {marker}", [example_repo.head()], {})
    assert not marker.exists()


@pytest.mark.parametrize("url", ["--upload-pack=touch /tmp/x", "relative/repo", "ext::sh -c id", "http://github.com/o/r.git",
                                 "https://evil.example/o/r.git", "ssh://git@evil.example/o/r.git"])
def test_clone_urls_outside_the_allowlist_are_refused(url: str) -> None:
    with pytest.raises(CloneUrlRefused):
        check_clone_url(url, Policy(allow_local_repos=True, github_host="github.com"))


@pytest.mark.parametrize("url,local", [("https://github.com/o/r.git", False), ("ssh://git@github.com/o/r.git", False),
                                       ("/srv/git/r", True), ("file:///srv/git/r", True)])
def test_clone_urls_in_the_allowlist_are_accepted(url: str, local: bool) -> None:
    check_clone_url(url, Policy(allow_local_repos=True, github_host="github.com"))
    if local:
        with pytest.raises(CloneUrlRefused, match="KFP_BOT_ALLOW_LOCAL_REPOS"):
            check_clone_url(url, Policy(allow_local_repos=False, github_host="github.com"))


def _set(payload: dict, dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    node = payload
    for part in parents:
        node = node[part]
    node[last] = value
