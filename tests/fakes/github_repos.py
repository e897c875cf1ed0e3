"""The fake GitHub's repositories, pull requests, commits, collaborator permissions and users."""

from __future__ import annotations

from tests.fakes.github_api import Call, Endpoint
from tests.fakes.github_model import ApiError, Repo, Role
from tests.fakes.http import JsonResponse

REPO = "/repos/{owner}/{repo}"


def get_repo(call: Call) -> JsonResponse:
    return JsonResponse(200, call.bodies.repo(call.the_repo))


def get_pull(call: Call) -> JsonResponse:
    pull = call.the_repo.pulls.get(call.param("number"))
    if pull is None:
        raise ApiError.not_found()
    return JsonResponse(200, call.bodies.pull(call.the_repo, pull))


def get_commit(call: Call) -> JsonResponse:
    repo = call.the_repo
    sha = repo.resolve(call.param("ref"))
    api, web = f"{call.bodies.api}/repos/{repo.full_name}", f"https://github.com/{repo.full_name}"
    person = {"name": "Test Author", "email": "author@example.com", "date": repo.created_at}
    return JsonResponse(200, {
        "sha": sha, "node_id": f"C_{sha[:20]}", "url": f"{api}/commits/{sha}",
        "html_url": f"{web}/commit/{sha}", "comments_url": f"{api}/commits/{sha}/comments",
        "commit": {"url": f"{api}/git/commits/{sha}", "author": person, "committer": person,
                   "message": f"commit {sha[:7]}", "tree": {"sha": sha, "url": f"{api}/git/trees/{sha}"},
                   "comment_count": 0, "verification": {"verified": False, "reason": "unsigned",
                                                        "signature": None, "payload": None}},
        "author": None, "committer": None, "parents": [],
        "stats": {"total": 0, "additions": 0, "deletions": 0}, "files": [],
    })


def role_of(repo: Repo, login: str) -> Role:
    """A user's role: the seeded one, the owner is admin, anyone else has none. Everyone can read
    a public repository, so there GitHub answers `read` rather than `none`."""
    role = repo.roles.get(login)
    if role is None:
        role = Role.ADMIN if login.lower() == repo.owner.login.lower() else Role.NONE
    return Role.READ if role is Role.NONE and not repo.private else role


def get_collaborator_permission(call: Call) -> JsonResponse:
    login = call.param("username")
    user = call.state.users.get(login)
    if user is None:  # GitHub answers 404 for a login that does not exist
        raise ApiError.not_found()
    role = role_of(call.the_repo, login)
    return JsonResponse(200, call.bodies.collaborator_permission(call.the_repo, user, role))


def get_user(call: Call) -> JsonResponse:
    user = call.state.users.get(call.param("username"))
    if user is None:
        raise ApiError.not_found()
    return JsonResponse(200, call.bodies.user(user))


ENDPOINTS = [
    Endpoint("GET", REPO, get_repo, [("metadata", "read")]),
    Endpoint("GET", f"{REPO}/pulls/{{number:int}}", get_pull, [("pull_requests", "read")]),
    Endpoint("GET", f"{REPO}/commits/{{ref}}", get_commit, [("contents", "read")]),
    Endpoint("GET", f"{REPO}/collaborators/{{username}}/permission", get_collaborator_permission,
             [("metadata", "read")]),
    Endpoint("GET", "/users/{username}", get_user),
]
