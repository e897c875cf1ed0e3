"""A stand-in for GitHub's REST API: real HTTP on 127.0.0.1, state in memory, every request recorded.

It serves what kfp-bot asks of GitHub through PyGithub (repositories, pull requests, check runs,
commit statuses, issue comments and reactions, collaborator permissions, GitHub App installation
tokens), answers with GitHub's JSON shapes and refuses what GitHub refuses (401 bad credentials,
403 for a missing App permission, 404 outside an installation, 422 for invalid bodies).

    with FakeGitHub() as fake:
        fake.add_repo("octo/monorepo", default_branch="main")
        fake.add_pull("octo/monorepo", 7, head_sha=sha, author="alice")
        key = fake.add_app(1234)
        fake.add_installation(1, app_id=1234, repos=["octo/monorepo"])
        auth = github.Auth.AppAuth(1234, key).get_installation_auth(1)
        gh = github.Github(base_url=fake.api_url, auth=auth, seconds_between_requests=0,
                           seconds_between_writes=0)
        ...
        assert fake.check_runs("octo/monorepo", sha)[0]["status"] == "in_progress"
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Self

from tests.fakes import github_apps, github_checks, github_hooks, github_issues, github_repos
from tests.fakes.github_api import Call, Endpoint
from tests.fakes.github_apps import covers
from tests.fakes.github_auth import Actor, ActorKind, authenticate, generate_private_key, new_token, public_key_of
from tests.fakes.github_bodies import Bodies
from tests.fakes.github_model import (
    ApiError,
    App,
    Comment,
    GitHubState,
    Installation,
    Issue,
    Pull,
    Repo,
    Role,
    Token,
    UserType,
)
from tests.fakes.http import FakeHTTPServer, Incoming, JsonResponse

DEFAULT_INSTALLATION_PERMISSIONS = {
    "checks": "write", "statuses": "write", "issues": "write", "pull_requests": "write",
    "contents": "read", "metadata": "read",
}
RATE_LIMIT = 5000
ENDPOINTS: list[Endpoint] = [*github_repos.ENDPOINTS, *github_checks.ENDPOINTS, *github_issues.ENDPOINTS,
                             *github_apps.ENDPOINTS, *github_hooks.ENDPOINTS]


def _header(incoming: Incoming, name: str) -> str | None:
    return next((v for k, v in incoming.headers.items() if k.lower() == name.lower()), None)


def fake_sha(*parts: object) -> str:
    """A stable 40-hex commit sha made from `parts`, for commits a test does not care about."""
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class FakeGitHub(FakeHTTPServer):
    """GitHub's REST API for tests. Seed it, point PyGithub's `base_url` at `api_url`, assert on views.

    `token_lifetime`: how long installation tokens live (GitHub: one hour).
    """

    def __init__(self, *, token_lifetime: timedelta = timedelta(hours=1)) -> None:
        super().__init__()
        self.state = GitHubState()
        self.state.token_lifetime = token_lifetime
        self._last_url = "http://127.0.0.1:0"
        self._served = 0
        for endpoint in ENDPOINTS:
            self.add_route(endpoint.method, endpoint.template,
                           lambda incoming, endpoint=endpoint: self._serve(endpoint, incoming))

    def start(self) -> Self:
        super().start()
        self._last_url = self.url
        return self

    @property
    def api_url(self) -> str:
        """What to give PyGithub as `base_url`, e.g. http://127.0.0.1:43121."""
        return self.url

    # -- seeding ---------------------------------------------------------------------------

    def add_user(self, login: str, *, type: str = "User") -> None:
        """Make `login` an existing GitHub account (users named elsewhere are created anyway)."""
        self.state.user(login, UserType(type))

    def add_repo(self, full_name: str, *, default_branch: str = "main", private: bool = False,
                 clone_url: str | None = None, owner_type: str = "Organization",
                 head_sha: str | None = None) -> dict[str, Any]:
        """A repository whose default branch points at `head_sha` (a made-up sha by default).

        `clone_url` lets the bot clone a local git repository (e.g. ``file:///tmp/...``).
        """
        with self.lock:
            owner = self.state.user(full_name.split("/")[0], UserType(owner_type))
            repo = Repo(full_name, self.state.next_id("repo"), owner, default_branch, private,
                        clone_url or f"https://github.com/{full_name}.git")
            self.state.repos[full_name] = repo
            self._add_commit(repo, head_sha or fake_sha(full_name, default_branch), default_branch)
            return self._bodies().repo(repo)

    def add_commit(self, repo: str, sha: str, *, branch: str | None = None) -> None:
        """Make `sha` a commit of `repo` (GitHub refuses checks and statuses on unknown commits);
        with `branch`, that branch now points at it."""
        with self.lock:
            self._add_commit(self._repo(repo), sha, branch)

    def add_pull(self, repo: str, number: int, *, head_sha: str, head_ref: str = "feature",
                 base_ref: str | None = None, base_sha: str | None = None, author: str = "octocat",
                 head_repo: str | None = None, draft: bool = False, title: str | None = None,
                 body: str | None = None) -> dict[str, Any]:
        """An open pull request; `head_repo` ("fork-owner/name") makes it come from a fork.
        Returns GitHub's JSON for it."""
        with self.lock:
            base = self._repo(repo)
            head = base if head_repo is None else self.state.repos.get(head_repo) or self._fork(base, head_repo)
            base_ref = base_ref or base.default_branch
            base_sha = base_sha or base.branches.get(base_ref) or fake_sha(repo, base_ref)
            self._add_commit(base, base_sha, base_ref if base_ref not in base.branches else None)
            self._add_commit(head, head_sha, head_ref)
            base.commits.add(head_sha)  # GitHub keeps a PR's head in the base repository (refs/pull/N/head)
            user = self.state.user(author)
            issue = base.issues.get(number) or Issue(number, self.state.next_id("issue"),
                                                     title or f"Pull request {number}", body, user)
            base.issues[number] = issue
            base.pulls[number] = Pull(number, self.state.next_id("pull"), head_sha, head_ref, head, base_ref,
                                      base_sha, user, issue.title, body, draft)
            return self._bodies().pull(base, base.pulls[number])

    def update_pull(self, repo: str, number: int, **changes: Any) -> dict[str, Any]:
        """Change a seeded pull request, e.g. ``head_sha=new`` after a push, ``draft=False``,
        ``state="closed"``, ``merged=True``. Returns GitHub's JSON for it."""
        with self.lock:
            base = self._repo(repo)
            pull = base.pulls[number]
            for key, value in changes.items():
                if not hasattr(pull, key):
                    raise TypeError(f"pull requests have no {key!r}")
                setattr(pull, key, value)
            self._add_commit(pull.head_repo, pull.head_sha, pull.head_ref)
            base.commits.add(pull.head_sha)
            return self._bodies().pull(base, pull)

    def add_issue(self, repo: str, number: int, *, title: str = "An issue", author: str = "octocat",
                  body: str | None = None) -> dict[str, Any]:
        """A plain issue (not a pull request). Returns GitHub's JSON for it."""
        with self.lock:
            base = self._repo(repo)
            base.issues[number] = Issue(number, self.state.next_id("issue"), title, body, self.state.user(author))
            return self._bodies().issue(base, base.issues[number])

    def add_comment(self, repo: str, number: int, body: str, *, author: str = "octocat") -> dict[str, Any]:
        """A comment someone already wrote on issue or pull request `number`. Returns its JSON."""
        with self.lock:
            issue = self._repo(repo).issues.get(number)
            if issue is None:
                raise KeyError(f"{repo} has no issue or pull request #{number}; seed it with add_pull/add_issue")
            comment = Comment(self.state.next_id("comment"), repo, number, body, self.state.user(author))
            self.state.comments[comment.id] = comment
            issue.comment_ids.append(comment.id)
            return self._bodies().comment(comment)

    def set_permission(self, repo: str, user: str, role: str | Role) -> None:
        """`user`'s role on `repo`: admin, maintain, write, triage, read or none."""
        with self.lock:
            self._repo(repo).roles[user] = Role(role)
            self.state.user(user)

    def add_token(self, token: str | None = None, *, login: str = "octocat") -> str:
        """A personal access token acting as `login`, with access to every repository."""
        with self.lock:
            value = token or new_token("ghp_")
            self.state.tokens[value] = Token(value, login=self.state.user(login).login)
            return value

    def add_app(self, app_id: int, private_key_pem: str | None = None, *, slug: str = "kfp-bot",
                name: str | None = None, owner: str = "octo") -> str:
        """A GitHub App; returns its private key (a new one unless given) for PyGithub's AppAuth."""
        key = private_key_pem or generate_private_key()
        with self.lock:
            bot = self.state.user(f"{slug}[bot]", UserType.BOT)
            organization = self.state.user(owner, UserType.ORGANIZATION)
            self.state.apps[app_id] = App(app_id, slug, name or slug, organization, bot, public_key_of(key),
                                          dict(DEFAULT_INSTALLATION_PERMISSIONS))
        return key

    def add_installation(self, installation_id: int, *, app_id: int, account: str | None = None,
                         repos: Iterable[str] | None = None,
                         permissions: Mapping[str, str] | None = None) -> None:
        """Install App `app_id` on `account` (default: the owner of the first of `repos`), for
        `repos` only or, when None, every repository of the account."""
        repo_names = None if repos is None else set(repos)
        owner = account or (sorted(repo_names)[0].split("/")[0] if repo_names else None)
        if owner is None:
            raise ValueError("add_installation needs an account or repos")
        granted = {**dict(permissions or DEFAULT_INSTALLATION_PERMISSIONS), "metadata": "read"}
        with self.lock:
            self.state.installations[installation_id] = Installation(
                installation_id, app_id, self.state.user(owner, UserType.ORGANIZATION), repo_names, granted)

    def expire_tokens(self) -> None:
        """Expire every installation token issued so far: the next use answers 401 Bad credentials."""
        with self.lock:
            for name in [n for n, t in self.state.tokens.items() if t.installation_id is not None]:
                del self.state.tokens[name]

    # -- views -----------------------------------------------------------------------------

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Every check run on commit `sha` of `repo`, oldest first, as GitHub would show it now."""
        with self.lock:
            return [self._bodies().check_run(r) for r in self.state.check_runs.values()
                    if r.repo == repo and r.head_sha == sha]

    def actions(self, check_run_id: int) -> list[dict[str, Any]]:
        """The buttons (`actions`) check run `check_run_id` shows now (GitHub's REST answers leave
        them out; the checks page shows them)."""
        with self.lock:
            return list(self.state.check_runs[check_run_id].actions)

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Every commit status set on `sha` of `repo`, oldest first."""
        with self.lock:
            return [self._bodies().status(s) for s in self.state.statuses if s.repo == repo and s.sha == sha]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """The comments on issue or pull request `number`, oldest first."""
        with self.lock:
            issue = self._repo(repo).issues[number]
            return [self._bodies().comment(self.state.comments[i]) for i in issue.comment_ids]

    def reactions(self, comment_id: int) -> list[dict[str, Any]]:
        """The reactions on issue comment `comment_id`, oldest first."""
        with self.lock:
            return [self._bodies().reaction(r) for r in self.state.reactions if r.comment_id == comment_id]

    # -- serving ---------------------------------------------------------------------------

    def _serve(self, endpoint: Endpoint, incoming: Incoming) -> JsonResponse:
        try:
            if not _header(incoming, "User-Agent"):
                raise ApiError(403, "Request forbidden by administrative rules. "
                                    "Please make sure your request has a User-Agent header")
            actor = authenticate(self.state, _header(incoming, "Authorization"))
            incoming.notes["actor"] = actor.label
            params = incoming.params
            repo = self.state.repo(params["owner"], params["repo"]) if "owner" in params else None
            self._authorize(endpoint, actor, repo, incoming.method)
            return endpoint.handler(Call(self.state, self._bodies(), incoming, actor, repo))
        except ApiError as error:
            return JsonResponse(error.status, error.body)

    def _authorize(self, endpoint: Endpoint, actor: Actor, repo: Repo | None, method: str) -> None:
        """GitHub's access rules, in its order: credentials type, repository visibility, permission."""
        if endpoint.app_jwt:
            if actor.kind is not ActorKind.APP:
                raise ApiError(401, "A JSON web token could not be decoded")
            return
        if actor.kind is ActorKind.APP:
            raise ApiError(403, "Resource not accessible by integration")
        if actor.kind is ActorKind.ANONYMOUS:
            if repo is not None and repo.private:
                raise ApiError.not_found()
            if method != "GET":
                raise ApiError(401, "Requires authentication")
            return
        if endpoint.apps_only and actor.kind is ActorKind.USER:
            raise ApiError(403, "You must authenticate via a GitHub App.")
        if actor.kind is ActorKind.INSTALLATION:
            installation = self.state.installations[actor.installation_id or 0]
            if repo is not None and (not covers(installation, repo)
                                     or (actor.repos is not None and repo.full_name not in actor.repos)):
                raise ApiError.not_found()
            if endpoint.permissions and not any(actor.may(p, level) for p, level in endpoint.permissions):
                raise ApiError(403, "Resource not accessible by integration")

    def default_fault(self, status: int) -> tuple[Any, dict[str, str]]:
        """GitHub's answers: 403 is a primary rate limit, 429 a secondary one with Retry-After."""
        if status == 403:
            return ({"message": "API rate limit exceeded for installation ID 1.",
                     "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
                    {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": "0",
                     "X-RateLimit-Used": str(RATE_LIMIT), "X-RateLimit-Resource": "core",
                     "X-RateLimit-Reset": str(int(time.time()) + 1)})
        if status == 429:
            return ({"message": "You have exceeded a secondary rate limit. "
                                "Please wait a few minutes before you try again."}, {"Retry-After": "1"})
        body, headers = super().default_fault(status)
        if status == 401:
            body = {"message": "Bad credentials"}
        return {**body, "documentation_url": "https://docs.github.com/rest"}, headers

    def not_found(self, incoming: Incoming) -> JsonResponse:
        return JsonResponse(404, ApiError.not_found().body)

    def response_headers(self, incoming: Incoming, response: JsonResponse) -> dict[str, str]:
        self._served += 1
        return {"X-GitHub-Media-Type": "github.v3; format=json", "X-GitHub-Request-Id": f"FAKE:{self._served}",
                "X-GitHub-Api-Version-Selected": "2022-11-28", "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": str(max(RATE_LIMIT - self._served, 0)),
                "X-RateLimit-Used": str(min(self._served, RATE_LIMIT)), "X-RateLimit-Resource": "core",
                "X-RateLimit-Reset": str(int(time.time()) + 3600)}

    # -- helpers ---------------------------------------------------------------------------

    def _bodies(self) -> Bodies:
        return Bodies(self._last_url, self.state)

    def _repo(self, full_name: str) -> Repo:
        repo = self.state.repos.get(full_name)
        if repo is None:
            raise KeyError(f"FakeGitHub has no repository {full_name!r}; seed it with add_repo() "
                           f"(known: {sorted(self.state.repos)})")
        return repo

    @staticmethod
    def _add_commit(repo: Repo, sha: str, branch: str | None) -> None:
        repo.commits.add(sha)
        if branch:
            repo.branches[branch] = sha

    def _fork(self, base: Repo, full_name: str) -> Repo:
        owner = self.state.user(full_name.split("/")[0])
        fork = Repo(full_name, self.state.next_id("repo"), owner, base.default_branch, base.private,
                    f"https://github.com/{full_name}.git", fork=True)
        self.state.repos[full_name] = fork
        return fork
