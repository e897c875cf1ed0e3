"""GitHubPulls against the fake GitHub: a pull request as commands need it."""

from __future__ import annotations

import pytest

from bot.github import GitHubError, GitHubPulls
from handlers.models import PullRequestRef
from tests.fakes.github import FakeGitHub, fake_sha
from tests.support.github_clients import HEAD, INSTALLATION_ID, PR, REPO, app_settings, clients_for, repo_ref


@pytest.fixture
def pulls(fake: FakeGitHub) -> GitHubPulls:
    return GitHubPulls(clients_for(app_settings(fake)))


def test_pull_request_as_it_is_now(fake: FakeGitHub, pulls: GitHubPulls) -> None:
    fake.set_permission(REPO, "alice", "write")
    pull = pulls.get_pull(repo_ref(fake), PR, INSTALLATION_ID)
    base_sha = fake.state.repos[REPO].pulls[PR].base_sha
    assert pull == PullRequestRef(
        number=PR, title="Faster training", author="alice", html_url=f"https://github.com/{REPO}/pull/{PR}",
        head_sha=HEAD, head_ref="feature", head_repo=REPO, head_clone_url=f"https://github.com/{REPO}.git",
        base_sha=base_sha, base_ref="main", draft=False, author_association="COLLABORATOR")
    assert not pull.is_fork(repo_ref(fake))


def test_pull_request_from_a_fork_after_a_push(fake: FakeGitHub, pulls: GitHubPulls) -> None:
    fork_head = fake_sha("fork", 1)
    fake.add_pull(REPO, 8, head_sha=fake_sha("fork", 0), head_repo="outsider/monorepo", author="outsider",
                  draft=True)
    fake.update_pull(REPO, 8, head_sha=fork_head)
    pull = pulls.get_pull(repo_ref(fake), 8, INSTALLATION_ID)
    assert pull is not None
    assert (pull.head_sha, pull.head_repo, pull.head_clone_url) == (
        fork_head, "outsider/monorepo", "https://github.com/outsider/monorepo.git")
    assert pull.draft and pull.is_fork(repo_ref(fake))
    assert pull.author_association == "NONE"


def test_missing_pull_request_is_none(fake: FakeGitHub, pulls: GitHubPulls) -> None:
    fake.add_issue(REPO, 9)
    assert pulls.get_pull(repo_ref(fake), 9, INSTALLATION_ID) is None
    assert pulls.get_pull(repo_ref(fake), 404, INSTALLATION_ID) is None


def test_other_failures_raise(fake: FakeGitHub, pulls: GitHubPulls) -> None:
    fake.fail_next("GET", r"/repos/octo/monorepo/pulls/7", 500, times=10)
    with pytest.raises(GitHubError, match=r"reading pull request octo/monorepo#7 failed after 3 retries"):
        pulls.get_pull(repo_ref(fake), PR, INSTALLATION_ID)
