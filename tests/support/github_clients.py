"""A seeded FakeGitHub and the bot's GitHub clients pointed at it, as a GitHub App or with a token.

Used by the tests of bot/github/: every call goes through real PyGithub over HTTP to the fake,
with retries fast (no backoff sleeps) and PyGithub's request pacing off.
"""

from __future__ import annotations

import functools

from bot.config import Settings
from bot.github import GitHubClients, RetryPolicy
from handlers.models import RepoRef
from tests.fakes.github import FakeGitHub, fake_sha
from tests.fakes.github_auth import generate_private_key

REPO = "octo/monorepo"
APP_ID = 4242
INSTALLATION_ID = 77
PR = 7
HEAD = fake_sha("octo/monorepo", "feature", 1)
BOT_LOGIN = "kfp-bot[bot]"
TOKEN_USER = "kfp-ci"
FAST_RETRY = RetryPolicy(total=3, backoff_factor=0.0, backoff_max=0.0, max_rate_limit_wait=5.0,
                         secondary_rate_wait=0.0)


@functools.cache
def app_private_key() -> str:
    """One RSA key for every test App (generating one takes most of a test's time)."""
    return generate_private_key()


def seed(fake: FakeGitHub) -> None:
    """octo/monorepo with PR #7 (head HEAD) by alice."""
    fake.add_repo(REPO)
    fake.add_pull(REPO, PR, head_sha=HEAD, author="alice", title="Faster training")


def repo_ref(fake: FakeGitHub) -> RepoRef:
    """The seeded repository as the bot knows it (cloned from the fake's host)."""
    return RepoRef(full_name=REPO, clone_url=f"{fake.api_url}/{REPO}.git", html_url=f"https://github.com/{REPO}")


def app_settings(fake: FakeGitHub, *, app_id: int = APP_ID, installation_id: int = INSTALLATION_ID,
                 **permissions: str) -> Settings:
    """Settings of a GitHub App installed on octo/monorepo (optionally with other permissions)."""
    key = fake.add_app(app_id, app_private_key())
    fake.add_installation(installation_id, app_id=app_id, repos=[REPO], permissions=permissions or None)
    return Settings(github_api_url=fake.api_url, github_app_id=app_id, github_private_key=key)


def token_settings(fake: FakeGitHub) -> Settings:
    """Settings with a personal access token of the `kfp-ci` account."""
    return Settings(github_api_url=fake.api_url, github_token=fake.add_token(login=TOKEN_USER))


def clients_for(settings: Settings, retry: RetryPolicy = FAST_RETRY) -> GitHubClients:
    """The bot's clients for `settings`, fast retries, no pacing."""
    return GitHubClients(settings, retry=retry, timeout_seconds=10, seconds_between_requests=None,
                         seconds_between_writes=None)
