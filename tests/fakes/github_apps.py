"""The fake GitHub's App endpoints: the App itself, its installations and installation tokens.

All of them need the App's JWT. A token is created with the installation's permissions, or the
subset the request asks for, and expires after the fake's `token_lifetime` (one hour on GitHub).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fakes.github_api import Call, Endpoint, paginate
from tests.fakes.github_auth import LEVELS, new_token
from tests.fakes.github_model import ApiError, Installation, Repo, Token
from tests.fakes.http import JsonResponse


def covers(installation: Installation, repo: Repo) -> bool:
    """Whether `installation` has access to `repo`."""
    return (installation.account.login.lower() == repo.owner.login.lower()
            and (installation.repos is None or repo.full_name in installation.repos))


def _own_installation(call: Call) -> Installation:
    installation = call.state.installations.get(call.param("installation_id"))
    if installation is None or installation.app_id != call.actor.app_id:
        raise ApiError.not_found()
    return installation


def get_app(call: Call) -> JsonResponse:
    assert call.actor.app_id is not None
    return JsonResponse(200, call.bodies.app(call.state.apps[call.actor.app_id]))


def list_installations(call: Call) -> JsonResponse:
    mine = [i for i in call.state.installations.values() if i.app_id == call.actor.app_id]
    return paginate(call, [call.bodies.installation(i) for i in mine])


def get_installation(call: Call) -> JsonResponse:
    return JsonResponse(200, call.bodies.installation(_own_installation(call)))


def get_repo_installation(call: Call) -> JsonResponse:
    for installation in call.state.installations.values():
        if installation.app_id == call.actor.app_id and covers(installation, call.the_repo):
            return JsonResponse(200, call.bodies.installation(installation))
    raise ApiError.not_found()


def _requested_permissions(installation: Installation, requested: Any) -> dict[str, str]:
    if not requested:
        return dict(installation.permissions)
    if not isinstance(requested, dict):
        raise ApiError(422, "Invalid request.", errors=["permissions must be an object"])
    for name, level in requested.items():
        held = installation.permissions.get(name)
        if level not in LEVELS or held is None or LEVELS[level] > LEVELS[held]:
            raise ApiError(422, "The permissions requested are not granted to this installation.")
    return dict(requested)


def _requested_repos(call: Call, installation: Installation, body: dict[str, Any]) -> set[str] | None:
    names, ids = body.get("repositories"), body.get("repository_ids")
    if not names and not ids:
        return None
    wanted = {f"{installation.account.login}/{n}".lower() for n in names or []}
    chosen = {r.full_name for r in call.state.repos.values()
              if covers(installation, r) and (r.full_name.lower() in wanted or r.id in (ids or []))}
    if len(chosen) != len(names or []) + len(ids or []):
        raise ApiError(422, "There is at least one repository that does not exist or is not "
                            "accessible to the parent installation.")
    return chosen


def create_access_token(call: Call) -> JsonResponse:
    installation = _own_installation(call)
    body = call.json()
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    permissions = _requested_permissions(installation, body.get("permissions"))
    repos = _requested_repos(call, installation, body)
    expires = datetime.now(UTC) + call.state.token_lifetime
    token = Token(new_token("ghs_"), installation_id=installation.id, expires_at=expires,
                  permissions=permissions, repos=repos)
    call.state.tokens[token.value] = token
    answer: dict[str, Any] = {
        "token": token.value, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "permissions": permissions,
        "repository_selection": "all" if repos is None and installation.repos is None else "selected",
    }
    if repos is not None:
        answer["repositories"] = [call.bodies.repo(call.state.repos[name]) for name in sorted(repos)]
    return JsonResponse(201, answer)


ENDPOINTS = [
    Endpoint("GET", "/app", get_app, app_jwt=True),
    Endpoint("GET", "/app/installations", list_installations, app_jwt=True),
    Endpoint("GET", "/app/installations/{installation_id:int}", get_installation, app_jwt=True),
    Endpoint("POST", "/app/installations/{installation_id:int}/access_tokens", create_access_token,
             app_jwt=True),
    Endpoint("GET", "/repos/{owner}/{repo}/installation", get_repo_installation, app_jwt=True),
]
