"""GitHubClients against the fake GitHub: App and token auth, token caching, retries, rate limits.

Everything goes through real PyGithub over HTTP; assertions are on the requests the fake
received and on the errors a user would read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.config import ConfigurationError, Settings
from bot.github import GitHubClients, GitHubError, RetryPolicy
from handlers.models import RepoRef
from tests.fakes.github import FakeGitHub
from tests.support.github_clients import (
    FAST_RETRY,
    INSTALLATION_ID,
    REPO,
    app_settings,
    clients_for,
    repo_ref,
    seed,
    token_settings,
)

PERMISSION_PATH = r"/repos/octo/monorepo/collaborators/alice/permission"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        seed(fake)
        fake.set_permission(REPO, "alice", "write")
        yield fake


def permission(clients: GitHubClients, installation_id: int | None = INSTALLATION_ID) -> str:
    return clients.call("reading a permission",
                        lambda: clients.repo(REPO, installation_id).get_collaborator_permission("alice"))


def test_app_installation_token_is_fetched_once_and_reused(fake: FakeGitHub) -> None:
    clients = clients_for(app_settings(fake))
    assert permission(clients) == "write"
    assert permission(clients) == "write"
    tokens = fake.requests_to("POST", r"/app/installations/77/access_tokens")
    assert [(r.auth_scheme, r.status) for r in tokens] == [("Bearer", 201)]
    assert [(r.auth_scheme, r.actor) for r in fake.requests_to("GET", PERMISSION_PATH)] == \
        [("token", "installation:77")] * 2


def test_an_installation_token_is_asked_for_again_after_a_5xx(fake: FakeGitHub) -> None:
    # Minting a token is the one POST retried after a 5xx: a second token harms nothing.
    clients = clients_for(app_settings(fake))
    fake.fail_next("POST", r"/app/installations/77/access_tokens", 502)
    assert permission(clients) == "write"
    assert [r.status for r in fake.requests_to("POST", r"/app/installations/77/access_tokens")] == [502, 201]


def test_app_installation_token_is_refreshed_before_it_expires() -> None:
    # PyGithub renews a token 20 s before it expires: a 10 s token is renewed on every use
    with FakeGitHub(token_lifetime=timedelta(seconds=10)) as fake:
        seed(fake)
        fake.set_permission(REPO, "alice", "write")
        clients = clients_for(app_settings(fake))
        permission(clients)
        permission(clients)
        assert len(fake.requests_to("POST", r"/app/installations/77/access_tokens")) == 2


def test_installation_is_looked_up_once_when_the_event_did_not_say(fake: FakeGitHub) -> None:
    clients = clients_for(app_settings(fake))
    assert permission(clients, installation_id=None) == "write"
    assert permission(clients, installation_id=None) == "write"
    lookups = fake.requests_to("GET", r"/repos/octo/monorepo/installation")
    assert [(r.auth_scheme, r.status) for r in lookups] == [("Bearer", 200)]
    assert clients.installation_id_for(REPO) == INSTALLATION_ID


def test_app_not_installed_on_the_repository(fake: FakeGitHub) -> None:
    fake.add_repo("other/repo")
    clients = clients_for(app_settings(fake))
    with pytest.raises(GitHubError) as caught:
        clients.repo("other/repo", None).get_collaborator_permission("alice")
    assert caught.value.status == 404
    assert str(caught.value).startswith("GitHub: finding the GitHub App installation of other/repo failed: 404")


def test_token_auth(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake))
    assert permission(clients, installation_id=None) == "write"
    [request] = fake.requests
    assert (request.auth_scheme, request.actor) == ("token", "user:kfp-ci")


def test_bad_token_is_a_clear_error_without_the_token(fake: FakeGitHub) -> None:
    secret = "ghp_" + "S3cr3t" * 6
    clients = clients_for(Settings(github_api_url=fake.api_url, github_token=secret))
    with pytest.raises(GitHubError) as caught:
        permission(clients, installation_id=None)
    assert caught.value.status == 401
    assert str(caught.value).startswith("GitHub: reading a permission failed: 401 Bad credentials")
    assert secret not in str(caught.value) and secret not in repr(caught.value.args)


def test_token_for_git(fake: FakeGitHub) -> None:
    app = clients_for(app_settings(fake))
    token = app.token_for(repo_ref(fake))
    assert token is not None and token.startswith("ghs_")
    elsewhere = RepoRef(full_name=REPO, clone_url="https://gitlab.example.com/octo/monorepo.git")
    assert app.token_for(elsewhere) is None  # never hand a credential to another host
    personal = token_settings(fake)
    assert clients_for(personal).token_for(repo_ref(fake)) == personal.github_token.get_secret_value()


def test_a_5xx_is_retried(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake))
    fake.fail_next("GET", PERMISSION_PATH, 502, times=2)
    assert permission(clients, None) == "write"
    assert [r.status for r in fake.requests_to("GET", PERMISSION_PATH)] == [502, 502, 200]


def test_persistent_5xx_gives_up_after_bounded_retries(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake), RetryPolicy(total=2, backoff_factor=0.0))
    fake.fail_next("GET", PERMISSION_PATH, 500, times=10)
    with pytest.raises(GitHubError) as caught:
        permission(clients, None)
    assert str(caught.value).startswith("GitHub: reading a permission failed after 2 retries")
    assert "500" in str(caught.value)
    assert len(fake.requests_to("GET", PERMISSION_PATH)) == 3


def test_rate_limited_403_waits_for_the_reset_then_succeeds(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake))
    # the limit resets in the past already: PyGithub retries without sleeping
    fake.fail_next("GET", PERMISSION_PATH, 403, headers={"X-RateLimit-Reset": str(int(time.time()) - 5)})
    assert permission(clients, None) == "write"
    assert [r.status for r in fake.requests_to("GET", PERMISSION_PATH)] == [403, 200]


def test_rate_limit_reset_too_far_away_is_a_clear_error(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake))
    fake.fail_next("GET", PERMISSION_PATH, 403, headers={"X-RateLimit-Reset": str(int(time.time()) + 3600)})
    with pytest.raises(GitHubError) as caught:
        permission(clients, None)
    message = str(caught.value)
    assert message.startswith("GitHub: reading a permission failed: rate limited")
    assert "longer than the bot waits (5 s)" in message
    assert len(fake.requests_to("GET", PERMISSION_PATH)) == 1


def test_secondary_rate_limit_429_is_retried(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake))
    fake.fail_next("GET", PERMISSION_PATH, 429, headers={"Retry-After": "0"})
    assert permission(clients, None) == "write"
    assert [r.status for r in fake.requests_to("GET", PERMISSION_PATH)] == [429, 200]


def test_forbidden_403_that_is_no_rate_limit_is_not_retried(fake: FakeGitHub) -> None:
    clients = clients_for(token_settings(fake))
    # A real refusal: the quota is not used up (the fake's default 403 is a primary rate limit).
    fake.fail_next("GET", PERMISSION_PATH, 403, body={"message": "Must have admin rights to Repository."},
                   headers={"X-RateLimit-Remaining": "4999"})
    with pytest.raises(GitHubError) as caught:
        permission(clients, None)
    assert caught.value.status == 403 and "Must have admin rights" in str(caught.value)
    assert len(fake.requests_to("GET", PERMISSION_PATH)) == 1


def test_unreachable_github_is_a_clear_error() -> None:
    with FakeGitHub() as fake:
        settings = token_settings(fake)
    clients = clients_for(settings, RetryPolicy(total=1, backoff_factor=0.0))
    with pytest.raises(GitHubError) as caught:
        permission(clients, None)
    assert str(caught.value) == (f"GitHub: reading a permission failed: cannot reach {settings.github_api_url} "
                                 "(ConnectionError)")


def test_a_bad_private_key_stops_start_up() -> None:
    settings = Settings(github_api_url="http://127.0.0.1:9", github_app_id=1, github_private_key="not a key")
    with pytest.raises(ConfigurationError, match="not an unencrypted PEM private key"):
        GitHubClients(settings, retry=FAST_RETRY)


def test_no_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="KFP_BOT_GITHUB_TOKEN"):
        GitHubClients(Settings(github_api_url="http://127.0.0.1:9"))
