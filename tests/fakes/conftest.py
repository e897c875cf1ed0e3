"""Fixtures for the tests of the fakes: a seeded FakeGitHub and PyGithub clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import github
import pytest

from tests.fakes.github import FakeGitHub
from tests.fakes.github_auth import generate_private_key

REPO = "octo/monorepo"
HEAD_SHA = "4f1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5"
APP_ID = 1234
INSTALLATION_ID = 42
PR_NUMBER = 7
ClientFactory = Callable[..., github.Github]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the fakes' own tests `fakes`: reported apart from the product's (tests/support/tiers.py)."""
    for item in items:
        if item.nodeid.startswith("tests/fakes/"):
            item.add_marker(pytest.mark.fakes)


@pytest.fixture(scope="session")
def app_key() -> str:
    """One RSA key for the App, made once: generating 2048-bit keys is the slow part."""
    return generate_private_key()


@pytest.fixture
def fake(app_key: str) -> Iterator[FakeGitHub]:
    """A running FakeGitHub with octo/monorepo, its PR #7 and App 1234 installed on it."""
    with FakeGitHub() as server:
        server.add_repo(REPO, default_branch="main")
        server.add_pull(REPO, PR_NUMBER, head_sha=HEAD_SHA, head_ref="tune-lr", author="alice")
        server.add_app(APP_ID, app_key)
        server.add_installation(INSTALLATION_ID, app_id=APP_ID, repos=[REPO])
        yield server


def _client(fake: FakeGitHub, auth: github.Auth.Auth | None, **options: object) -> github.Github:
    # PyGithub waits 0.25 s between requests and 1 s between writes unless told not to.
    return github.Github(base_url=fake.api_url, auth=auth, seconds_between_requests=0,
                         seconds_between_writes=0, **options)  # type: ignore[arg-type]


@pytest.fixture
def app_client(fake: FakeGitHub, app_key: str) -> ClientFactory:
    """Builds a PyGithub client authenticated as an installation (default 42) of App 1234;
    other keyword arguments go to github.Github."""
    def build(installation_id: int = INSTALLATION_ID, app_id: int = APP_ID, **options: object) -> github.Github:
        auth = github.Auth.AppAuth(app_id, app_key).get_installation_auth(installation_id)
        return _client(fake, auth, **options)
    return build


@pytest.fixture
def token_client(fake: FakeGitHub) -> ClientFactory:
    """Builds a PyGithub client with a personal access token of `login` (default octocat)."""
    def build(login: str = "octocat", **options: object) -> github.Github:
        return _client(fake, github.Auth.Token(fake.add_token(login=login)), **options)
    return build
