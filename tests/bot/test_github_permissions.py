"""GitHubPermissions against the fake GitHub: who may run pipelines, and how long it is remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.github import GitHubClients, GitHubError, GitHubPermissions
from tests.fakes.github import FakeGitHub
from tests.support.github_clients import (
    INSTALLATION_ID,
    REPO,
    app_settings,
    clients_for,
    repo_ref,
    token_settings,
)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.current = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clients(fake: FakeGitHub) -> GitHubClients:
    return clients_for(app_settings(fake))


def permission_requests(fake: FakeGitHub, user: str) -> int:
    return len(fake.requests_to("GET", rf"/repos/octo/monorepo/collaborators/{user}/permission"))


@pytest.mark.parametrize(("role", "allowed"), [
    ("admin", True), ("maintain", True), ("write", True), ("triage", False), ("read", False), ("none", False),
])
def test_write_access_or_more_may_run(fake: FakeGitHub, clients: GitHubClients, role: str, allowed: bool) -> None:
    fake.set_permission(REPO, "bob", role)
    assert GitHubPermissions(clients, ttl_seconds=60).can_write(repo_ref(fake), "bob", INSTALLATION_ID) is allowed


def test_repository_owner_may_run_with_a_token(fake: FakeGitHub) -> None:
    permissions = GitHubPermissions(clients_for(token_settings(fake)), ttl_seconds=60)
    assert permissions.can_write(repo_ref(fake), "octo", None) is True
    fake.add_user("stranger")
    assert permissions.can_write(repo_ref(fake), "stranger", None) is False


def test_answer_is_cached_per_repository_and_user_within_the_ttl(fake: FakeGitHub, clients: GitHubClients) -> None:
    fake.set_permission(REPO, "alice", "write")
    fake.set_permission(REPO, "bob", "read")
    clock = Clock()
    permissions = GitHubPermissions(clients, ttl_seconds=60, clock=clock)
    repo = repo_ref(fake)
    assert permissions.can_write(repo, "alice", INSTALLATION_ID)
    clock.advance(59)
    assert permissions.can_write(repo, "Alice", INSTALLATION_ID)  # logins are case-insensitive
    assert not permissions.can_write(repo, "bob", INSTALLATION_ID)
    assert permission_requests(fake, "alice") == 1
    assert permission_requests(fake, "bob") == 1

    fake.set_permission(REPO, "alice", "read")  # access revoked: seen once the answer expires
    clock.advance(2)
    assert not permissions.can_write(repo, "alice", INSTALLATION_ID)
    assert permission_requests(fake, "alice") == 2


def test_zero_ttl_asks_every_time(fake: FakeGitHub, clients: GitHubClients) -> None:
    fake.set_permission(REPO, "alice", "write")
    permissions = GitHubPermissions(clients, ttl_seconds=0, clock=Clock())
    for _ in range(2):
        assert permissions.can_write(repo_ref(fake), "alice", INSTALLATION_ID)
    assert permission_requests(fake, "alice") == 2


def test_failure_is_a_github_error_and_is_not_cached(fake: FakeGitHub, clients: GitHubClients) -> None:
    fake.set_permission(REPO, "alice", "write")
    permissions = GitHubPermissions(clients, ttl_seconds=60, clock=Clock())
    fake.fail_next("GET", r"/repos/octo/monorepo/collaborators/alice/permission", 500, times=10)
    with pytest.raises(GitHubError) as caught:
        permissions.can_write(repo_ref(fake), "alice", INSTALLATION_ID)
    assert str(caught.value).startswith("GitHub: checking the permission of @alice on octo/monorepo failed")
    for fault in fake.pending_faults:
        fault.times = 0
    assert permissions.can_write(repo_ref(fake), "alice", INSTALLATION_ID)


def test_unknown_user_is_a_github_error(fake: FakeGitHub, clients: GitHubClients) -> None:
    with pytest.raises(GitHubError) as caught:
        GitHubPermissions(clients).can_write(repo_ref(fake), "ghost-user-404", INSTALLATION_ID)
    assert caught.value.status == 404
