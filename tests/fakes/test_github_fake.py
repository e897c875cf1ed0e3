"""FakeGitHub driven through real PyGithub: each endpoint, what it records, and GitHub's 422s."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import github
import pytest
import requests
from github import GithubException

from tests.fakes.conftest import APP_ID, HEAD_SHA, PR_NUMBER, REPO, ClientFactory
from tests.fakes.github import FakeGitHub


def test_repository_and_pull_request_fields(fake: FakeGitHub, app_client: ClientFactory) -> None:
    fake.add_repo("octo/private-one", default_branch="trunk", private=True, clone_url="file:///tmp/origin")
    fake.add_installation(43, app_id=APP_ID, repos=["octo/private-one"])
    fake.add_pull("octo/private-one", 3, head_sha="b" * 40, head_ref="fix", head_repo="mallory/private-one",
                  author="mallory", draft=True, title="Fix training")
    gh = app_client()

    repo = gh.get_repo(REPO)
    assert (repo.full_name, repo.default_branch, repo.private) == (REPO, "main", False)
    assert repo.clone_url == "https://github.com/octo/monorepo.git"
    pull = repo.get_pull(PR_NUMBER)
    assert (pull.number, pull.head.sha, pull.head.ref, pull.base.ref) == (PR_NUMBER, HEAD_SHA, "tune-lr", "main")
    assert (pull.user.login, pull.draft, pull.state) == ("alice", False, "open")
    assert gh.get_user("alice").type == "User"
    assert repo.get_commit("main").sha == repo.get_pull(PR_NUMBER).base.sha
    assert pull.head.repo.full_name == pull.base.repo.full_name == REPO

    fork_pull = app_client(installation_id=43).get_repo("octo/private-one").get_pull(3)
    assert fork_pull.head.repo.full_name == "mallory/private-one" and fork_pull.head.repo.fork
    assert fork_pull.base.repo.clone_url == "file:///tmp/origin"
    assert (fork_pull.draft, fork_pull.title, fork_pull.user.login) == (True, "Fix training", "mallory")


def test_check_run_lifecycle(fake: FakeGitHub, app_client: ClientFactory) -> None:
    repo = app_client().get_repo(REPO)
    run = repo.create_check_run("kfp-bot / head-pose-pipeline", HEAD_SHA, external_id="run-1",
                                details_url="https://kfp.example/runs/1",
                                output={"title": "Building", "summary": "2 images to build"})
    assert (run.status, run.conclusion, run.external_id) == ("queued", None, "run-1")
    assert run.app.id == APP_ID and [p.number for p in run.pull_requests] == [PR_NUMBER]

    run.edit(status="in_progress")
    assert fake.check_runs(REPO, HEAD_SHA)[0]["status"] == "in_progress"
    run.edit(conclusion="failure", output={"title": "Failed", "summary": "training step failed"})

    shown = fake.check_runs(REPO, HEAD_SHA)
    assert len(shown) == 1
    assert (shown[0]["status"], shown[0]["conclusion"]) == ("completed", "failure")
    assert shown[0]["completed_at"] is not None
    assert shown[0]["output"]["summary"] == "training step failed"
    assert shown[0]["details_url"] == "https://kfp.example/runs/1"
    fetched = repo.get_check_run(run.id)
    assert (fetched.name, fetched.conclusion) == ("kfp-bot / head-pose-pipeline", "failure")


def test_listing_check_runs_filters_and_pages(fake: FakeGitHub, app_client: ClientFactory) -> None:
    repo = app_client(per_page=2).get_repo(REPO)
    for name in ("kfp-bot / a", "kfp-bot / b", "kfp-bot / c"):
        repo.create_check_run(name, HEAD_SHA)
    rerun = repo.create_check_run("kfp-bot / a", HEAD_SHA, status="in_progress")
    commit = repo.get_commit(HEAD_SHA)

    latest = commit.get_check_runs()
    assert latest.totalCount == 3
    assert sorted(r.name for r in latest) == ["kfp-bot / a", "kfp-bot / b", "kfp-bot / c"]
    assert len(list(commit.get_check_runs(filter="all"))) == 4
    assert [r.id for r in commit.get_check_runs(check_name="kfp-bot / a")] == [rerun.id]
    assert [r.name for r in commit.get_check_runs(status="in_progress")] == ["kfp-bot / a"]

    pages = fake.requests_to("GET", rf"/repos/{REPO}/commits/{HEAD_SHA}/check-runs")
    assert any(r.query.get("page") == "2" for r in pages), "PyGithub followed the Link header"
    assert any(r.query.get("check_name") == "kfp-bot / a" for r in pages)


def test_check_run_rules(fake: FakeGitHub, app_client: ClientFactory, token_client: ClientFactory) -> None:
    repo = app_client().get_repo(REPO)
    cases = [
        ({"status": "completed"}, "conclusion"),
        ({"conclusion": "passed"}, "conclusion"),
        ({"conclusion": "stale"}, "conclusion"),
        ({"status": "waiting"}, "status"),
        ({"output": {"title": "no summary"}}, "output.summary"),
        ({"actions": [{"label": "Re-run", "description": "d", "identifier": "x"}] * 4}, "actions"),
    ]
    for arguments, field in cases:
        with pytest.raises(GithubException) as refused:
            repo.create_check_run("kfp-bot / x", HEAD_SHA, **arguments)
        assert refused.value.status == 422
        assert refused.value.data["message"] == "Validation Failed"
        assert field in [e["field"] for e in refused.value.data["errors"]], arguments

    with pytest.raises(GithubException) as unknown_commit:
        repo.create_check_run("kfp-bot / x", "0" * 40)
    assert unknown_commit.value.status == 422
    assert fake.check_runs(REPO, HEAD_SHA) == []

    with pytest.raises(GithubException) as not_an_app:
        token_client().get_repo(REPO).create_check_run("kfp-bot / x", HEAD_SHA)
    assert not_an_app.value.status == 403
    assert not_an_app.value.data["message"] == "You must authenticate via a GitHub App."


def test_check_run_output_is_limited_in_bytes_as_github_does(fake: FakeGitHub, app_client: ClientFactory) -> None:
    repo = app_client().get_repo(REPO)
    emoji = "✅" * 30_000  # 30,000 characters, 90,000 bytes
    for key in ("summary", "text"):
        output = {"title": "t", "summary": "s", key: emoji}
        with pytest.raises(GithubException) as refused:
            repo.create_check_run("kfp-bot / x", HEAD_SHA, output=output)
        assert refused.value.status == 422
        assert refused.value.data["errors"] == [{"resource": "CheckRun", "field": key, "code": "custom",
                                                 "message": f"{key} exceeds a maximum bytesize of 65535"}]
    fits = "✅" * (65_535 // 3)
    repo.create_check_run("kfp-bot / x", HEAD_SHA, output={"title": "t", "summary": fits, "text": fits})
    assert [c["output"]["summary"] for c in fake.check_runs(REPO, HEAD_SHA)] == [fits]


def test_a_fault_after_the_write_does_it_and_loses_the_answer(fake: FakeGitHub, app_client: ClientFactory) -> None:
    fake.fail_next("POST", r"/repos/octo/monorepo/issues/\d+/comments", 502, after=True)
    issue = app_client(retry=None).get_repo(REPO).get_issue(PR_NUMBER)
    with pytest.raises(GithubException) as lost:
        issue.create_comment("hello")
    assert lost.value.status == 502
    assert [c["body"] for c in fake.comments(REPO, PR_NUMBER)] == ["hello"]


def test_only_the_app_that_created_a_check_run_may_change_it(
        fake: FakeGitHub, app_client: ClientFactory, app_key: str) -> None:
    run = app_client().get_repo(REPO).create_check_run("kfp-bot / x", HEAD_SHA)
    fake.add_app(999, app_key, slug="other-bot")
    fake.add_installation(77, app_id=999, repos=[REPO])
    with pytest.raises(GithubException) as refused:
        app_client(installation_id=77, app_id=999).get_repo(REPO).get_check_run(run.id).edit(conclusion="success")
    assert refused.value.status == 403
    assert fake.check_runs(REPO, HEAD_SHA)[0]["status"] == "queued"


def test_commit_statuses(fake: FakeGitHub, app_client: ClientFactory) -> None:
    commit = app_client().get_repo(REPO).get_commit(HEAD_SHA)
    commit.create_status("pending", target_url="https://kfp.example/1", description="building", context="kfp-bot")
    commit.create_status("success", description="done", context="kfp-bot")
    commit.create_status("failure", description="lint", context="other")

    assert [s.state for s in commit.get_statuses()] == ["failure", "success", "pending"]
    combined = commit.get_combined_status()
    assert combined.state == "failure" and combined.total_count == 2
    shown = fake.statuses(REPO, HEAD_SHA)
    assert [(s["context"], s["state"]) for s in shown] == [("kfp-bot", "pending"), ("kfp-bot", "success"),
                                                           ("other", "failure")]
    assert shown[0]["creator"]["login"] == "kfp-bot[bot]"

    for state, description in (("ok", "x"), ("success", "d" * 141)):
        with pytest.raises(GithubException) as refused:
            commit.create_status(state, description=description)
        assert refused.value.status == 422
    assert len(fake.statuses(REPO, HEAD_SHA)) == 3


def test_comments_on_pull_requests_and_issues(fake: FakeGitHub, app_client: ClientFactory) -> None:
    fake.add_issue(REPO, 8, title="A question")
    earlier = fake.add_comment(REPO, PR_NUMBER, "/run head-pose-pipeline epochs=1", author="alice")
    repo = app_client().get_repo(REPO)

    pull = repo.get_pull(PR_NUMBER)
    summary = pull.create_issue_comment("kfp-bot summary: 1 pipeline")
    summary.edit("kfp-bot summary: 1 pipeline, running")
    repo.get_issue(8).create_comment("not a pull request")

    assert [c.body for c in pull.get_issue_comments()] == ["/run head-pose-pipeline epochs=1",
                                                           "kfp-bot summary: 1 pipeline, running"]
    assert repo.get_issue(PR_NUMBER).pull_request is not None and repo.get_issue(8).pull_request is None
    shown = fake.comments(REPO, PR_NUMBER)
    assert [c["user"]["login"] for c in shown] == ["alice", "kfp-bot[bot]"]
    assert shown[1]["performed_via_github_app"]["id"] == APP_ID
    assert shown[1]["html_url"].endswith(f"/pull/{PR_NUMBER}#issuecomment-{summary.id}")
    assert repo.get_issue(PR_NUMBER).get_comment(earlier["id"]).user.login == "alice"
    assert [c["body"] for c in fake.comments(REPO, 8)] == ["not a pull request"]

    with pytest.raises(GithubException) as blank:
        pull.create_issue_comment("   ")
    assert blank.value.status == 422
    with pytest.raises(GithubException) as too_long:
        summary.edit("x" * 65537)
    assert too_long.value.status == 422
    assert fake.comments(REPO, PR_NUMBER)[1]["body"] == "kfp-bot summary: 1 pipeline, running"

    summary.delete()
    assert [c["user"]["login"] for c in fake.comments(REPO, PR_NUMBER)] == ["alice"]


def test_reactions(fake: FakeGitHub, app_client: ClientFactory) -> None:
    command = fake.add_comment(REPO, PR_NUMBER, "/run head-pose-pipeline", author="alice")
    comment = app_client().get_repo(REPO).get_issue(PR_NUMBER).get_comment(command["id"])

    first = comment.create_reaction("eyes")
    again = comment.create_reaction("eyes")
    comment.create_reaction("rocket")
    assert first.id == again.id, "GitHub answers the existing reaction instead of adding one"
    assert [(r["content"], r["user"]["login"]) for r in fake.reactions(command["id"])] == [
        ("eyes", "kfp-bot[bot]"), ("rocket", "kfp-bot[bot]")]
    assert [r.status for r in fake.requests_to("POST", r".*/reactions")] == [201, 200, 201]
    assert [r.content for r in comment.get_reactions()] == ["eyes", "rocket"]

    with pytest.raises(GithubException) as refused:
        comment.create_reaction("thumbsup")
    assert refused.value.status == 422 and refused.value.data["errors"][0]["field"] == "content"


@pytest.mark.parametrize(("role", "permission"), [
    ("admin", "admin"), ("maintain", "write"), ("write", "write"), ("triage", "read"), ("read", "read"),
    ("none", "read"),  # everyone can read a public repository
])
def test_collaborator_permission(fake: FakeGitHub, app_client: ClientFactory, role: str, permission: str) -> None:
    fake.set_permission(REPO, "bob", role)
    repo = app_client().get_repo(REPO)
    assert repo.get_collaborator_permission("bob") == permission
    assert repo.get_collaborator_role_name("bob") == (role if role != "none" else "read")


def test_permission_of_people_without_a_role(fake: FakeGitHub, app_client: ClientFactory) -> None:
    fake.add_repo("octo/secret", private=True)
    fake.add_installation(44, app_id=APP_ID, account="octo")  # every repository of octo
    fake.add_user("stranger")
    repo = app_client().get_repo(REPO)
    assert repo.get_collaborator_permission("stranger") == "read"
    assert repo.get_collaborator_permission("octo") == "admin"  # the owner
    with pytest.raises(github.UnknownObjectException):
        repo.get_collaborator_permission("no-such-login")
    secret = app_client(installation_id=44).get_repo("octo/secret")
    assert secret.get_collaborator_permission("stranger") == "none"
    assert secret.get_collaborator_role_name("stranger") == "none"


def test_requests_are_recorded_without_credentials(fake: FakeGitHub, app_client: ClientFactory) -> None:
    app_client().get_repo(REPO).get_pull(PR_NUMBER).create_issue_comment("hello")

    token_request, repo_request, pull_request, comment_request = fake.requests
    assert (token_request.method, token_request.path) == ("POST", "/app/installations/42/access_tokens")
    assert token_request.auth_scheme == "Bearer" and token_request.actor == f"app:{APP_ID}"
    assert comment_request.auth_scheme == "token" and comment_request.actor == "installation:42"
    assert comment_request.json == {"body": "hello"} and comment_request.status == 201
    for recorded in fake.requests:
        assert recorded.headers["Authorization"] in ("Bearer ***", "token ***")
    assert (repo_request.path, pull_request.path) == (f"/repos/{REPO}", f"/repos/{REPO}/pulls/{PR_NUMBER}")


def test_http_level_answers(fake: FakeGitHub) -> None:
    token = fake.add_token()
    auth = {"Authorization": f"token {token}"}
    malformed = requests.post(f"{fake.api_url}/repos/{REPO}/issues/{PR_NUMBER}/comments", data="{",
                              headers=auth, timeout=5)
    assert malformed.status_code == 400 and malformed.json()["message"] == "Problems parsing JSON"
    assert malformed.headers["Content-Type"].startswith("application/json")
    unknown = requests.get(f"{fake.api_url}/repos/{REPO}/no-such-thing", headers=auth, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Not Found"
    statuses = requests.get(f"{fake.api_url}/repos/{REPO}/commits/{HEAD_SHA}/statuses", headers=auth, timeout=5)
    assert statuses.status_code == 200 and statuses.json() == []
    unknown_ref = requests.get(f"{fake.api_url}/repos/{REPO}/commits/nope/statuses", headers=auth, timeout=5)
    assert unknown_ref.status_code == 422 and unknown_ref.json()["message"] == "No commit found for SHA: nope"
    anonymous = requests.get(f"{fake.api_url}/repos/{REPO}", timeout=5)
    assert anonymous.status_code == 200 and anonymous.json()["full_name"] == REPO
    anonymous_write = requests.post(f"{fake.api_url}/repos/{REPO}/issues/{PR_NUMBER}/comments",
                                    data=json.dumps({"body": "hi"}), timeout=5)
    assert anonymous_write.status_code == 401
    # requests and urllib3 always send a User-Agent; http.client sends none unless told
    connection = http.client.HTTPConnection(urlsplit(fake.api_url).netloc, timeout=5)
    connection.request("GET", f"/repos/{REPO}", headers=auth)
    no_agent = connection.getresponse()
    assert no_agent.status == 403 and b"User-Agent" in no_agent.read()
    connection.close()
    assert int(anonymous.headers["X-RateLimit-Remaining"]) < 5000
