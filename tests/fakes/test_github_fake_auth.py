"""FakeGitHub's authentication (App JWT, installation and personal tokens) and fault injection,
driven through PyGithub, including PyGithub's own retries (github.GithubRetry)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import github
import jwt
import pytest
import requests
from github import GithubException, GithubIntegration, GithubRetry

from tests.fakes.conftest import APP_ID, HEAD_SHA, INSTALLATION_ID, PR_NUMBER, REPO, ClientFactory
from tests.fakes.github import FakeGitHub
from tests.fakes.github_auth import generate_private_key

FAST_RETRY = {"backoff_factor": 0.01}


def test_installation_token_flow(fake: FakeGitHub, app_key: str) -> None:
    integration = GithubIntegration(auth=github.Auth.AppAuth(APP_ID, app_key), base_url=fake.api_url,
                                    seconds_between_requests=0, seconds_between_writes=0)
    app = integration.get_app()
    assert (app.id, app.slug) == (APP_ID, "kfp-bot")
    installation = integration.get_repo_installation("octo", "monorepo")
    assert installation.id == INSTALLATION_ID
    assert [i.id for i in integration.get_installations()] == [INSTALLATION_ID]
    assert integration.get_app_installation(INSTALLATION_ID).app_id == APP_ID

    token = integration.get_access_token(INSTALLATION_ID)
    lifetime = token.expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)
    assert token.token.startswith("ghs_") and token.permissions["checks"] == "write"

    gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token(token.token), seconds_between_requests=0)
    assert gh.get_repo(REPO).full_name == REPO
    assert fake.requests[-1].actor == f"installation:{INSTALLATION_ID}"

    fake.add_repo("octo/elsewhere")
    with pytest.raises(github.UnknownObjectException):
        integration.get_repo_installation("octo", "elsewhere")
    with pytest.raises(github.UnknownObjectException):
        gh.get_repo("octo/elsewhere")  # not in the installation: GitHub hides it


def test_jwt_must_be_signed_by_the_apps_key(fake: FakeGitHub) -> None:
    intruder = github.Auth.AppAuth(APP_ID, generate_private_key()).get_installation_auth(INSTALLATION_ID)
    gh = github.Github(base_url=fake.api_url, auth=intruder, seconds_between_requests=0)
    with pytest.raises(GithubException) as refused:
        gh.get_repo(REPO)
    assert refused.value.status == 401
    assert refused.value.data["message"] == "A JSON web token could not be decoded"
    assert [(r.path, r.status) for r in fake.requests] == [("/app/installations/42/access_tokens", 401)]


@pytest.mark.parametrize(("claims", "message"), [
    ({"iss": "999"}, "'Issuer' claim ('iss') must be an Integer"),
    ({"exp": -10}, "'Expiration time' claim ('exp') must be a numeric value"),
    ({"exp": 1200}, "'Expiration time' claim ('exp') is too far in the future."),
    ({"iat": 600}, "'Issued at' claim ('iat') must be an Integer"),
])
def test_jwt_claims_are_checked(fake: FakeGitHub, app_key: str, claims: dict[str, object], message: str) -> None:
    """Like PyGithub's JWT (iat 60 s back, exp 5 min ahead) with one claim changed (times relative to now)."""
    now = int(time.time())
    payload: dict[str, object] = {"iat": now - 60, "exp": now + 300, "iss": str(APP_ID)}
    payload.update({k: now + v if isinstance(v, int) else v for k, v in claims.items()})
    answer = requests.get(f"{fake.api_url}/app", timeout=5,
                          headers={"Authorization": f"Bearer {jwt.encode(payload, app_key, algorithm='RS256')}"})
    assert answer.status_code == 401
    assert answer.json()["message"].startswith(message)


def test_tokens_are_checked(fake: FakeGitHub, app_key: str, app_client: ClientFactory,
                            token_client: ClientFactory) -> None:
    with pytest.raises(github.BadCredentialsException):
        github.Github(base_url=fake.api_url, auth=github.Auth.Token("ghp_made_up")).get_repo(REPO)

    assert token_client("octocat").get_repo(REPO).full_name == REPO
    assert fake.requests[-1].actor == "user:octocat"

    gh = app_client()
    gh.get_repo(REPO)
    fake.expire_tokens()
    with pytest.raises(github.BadCredentialsException):
        gh.get_repo(REPO)

    # A valid App JWT, used where an installation token belongs.
    jwt_only = github.Github(base_url=fake.api_url, auth=github.Auth.AppAuth(APP_ID, app_key))
    with pytest.raises(GithubException) as app_on_repo:
        jwt_only.get_repo(REPO)
    assert app_on_repo.value.status == 403
    assert app_on_repo.value.data["message"] == "Resource not accessible by integration"


def test_installation_permissions_are_enforced(fake: FakeGitHub, app_client: ClientFactory) -> None:
    fake.add_installation(50, app_id=APP_ID, account="octo", permissions={"issues": "write"})
    repo = app_client(installation_id=50).get_repo(REPO)  # metadata:read is always granted
    repo.get_issue(PR_NUMBER).create_comment("allowed")
    with pytest.raises(GithubException) as refused:
        repo.create_check_run("kfp-bot / x", HEAD_SHA)
    assert refused.value.status == 403
    assert refused.value.data["message"] == "Resource not accessible by integration"


def test_token_requests_may_narrow_but_not_widen(fake: FakeGitHub, app_key: str) -> None:
    integration = GithubIntegration(auth=github.Auth.AppAuth(APP_ID, app_key), base_url=fake.api_url,
                                    seconds_between_requests=0, seconds_between_writes=0)
    narrow = integration.get_access_token(INSTALLATION_ID, permissions={"issues": "read"})
    assert narrow.permissions == {"issues": "read"}
    gh = github.Github(base_url=fake.api_url, auth=github.Auth.Token(narrow.token), lazy=True,
                       seconds_between_requests=0, seconds_between_writes=0)
    with pytest.raises(GithubException) as refused:
        gh.get_repo(REPO).get_issue(PR_NUMBER).create_comment("no")
    assert refused.value.status == 403
    with pytest.raises(GithubException) as widened:
        integration.get_access_token(INSTALLATION_ID, permissions={"administration": "write"})
    assert widened.value.status == 422


def test_server_error_is_retried_by_github_retry(fake: FakeGitHub, app_client: ClientFactory) -> None:
    gh = app_client(retry=GithubRetry(total=3, **FAST_RETRY))
    gh.get_repo(REPO)  # fetches the installation token first
    fake.clear_requests()
    fake.fail_next("GET", rf"/repos/{REPO}/pulls/\d+", 502)

    assert gh.get_repo(REPO).get_pull(PR_NUMBER).head.sha == HEAD_SHA
    assert [r.status for r in fake.requests_to("GET", rf"/repos/{REPO}/pulls/{PR_NUMBER}")] == [502, 200]
    assert fake.pending_faults == []


def test_retries_give_up_visibly(fake: FakeGitHub, app_client: ClientFactory) -> None:
    gh = app_client(retry=GithubRetry(total=2, **FAST_RETRY))
    gh.get_repo(REPO)
    fault = fake.fail_next("GET", rf"/repos/{REPO}", 503, times=10)
    with pytest.raises(requests.exceptions.RetryError, match="too many 503 error responses"):
        gh.get_repo(REPO)
    assert fault.times == 7  # the first try and two retries


def test_rate_limits(fake: FakeGitHub, app_client: ClientFactory) -> None:
    plain = app_client(retry=None)
    plain.get_repo(REPO)
    fake.fail_next("GET", rf"/repos/{REPO}", 403)
    with pytest.raises(github.RateLimitExceededException) as limited:
        plain.get_repo(REPO)
    assert limited.value.headers["x-ratelimit-remaining"] == "0"

    # Retried once the reset time (here already past) is reached; a secondary limit after Retry-After.
    retrying = app_client(retry=GithubRetry(total=3, **FAST_RETRY))
    fake.fail_next("GET", rf"/repos/{REPO}", 403, headers={"X-RateLimit-Reset": str(int(time.time()) - 5)})
    fake.fail_next("POST", r".*/issues/\d+/comments", 429, headers={"Retry-After": "0"})
    repo = retrying.get_repo(REPO)
    repo.get_issue(PR_NUMBER).create_comment("posted once")
    assert [c["body"] for c in fake.comments(REPO, PR_NUMBER)] == ["posted once"]
    assert [r.status for r in fake.requests_to("POST", r".*/comments")] == [429, 201]


def test_github_retry_does_not_retry_patch(fake: FakeGitHub, app_client: ClientFactory) -> None:
    """PyGithub's GithubRetry allows GET and POST (and urllib3's idempotent verbs) but not PATCH:
    a check run or comment edit that meets a 502 fails at once, and the bot has to retry it."""
    repo = app_client(retry=GithubRetry(total=3, **FAST_RETRY)).get_repo(REPO)
    run = repo.create_check_run("kfp-bot / x", HEAD_SHA)
    fake.fail_next("PATCH", r".*/check-runs/\d+", 502)
    with pytest.raises(GithubException) as failed:
        run.edit(status="in_progress")
    assert failed.value.status == 502
    assert fake.check_runs(REPO, HEAD_SHA)[0]["status"] == "queued"
