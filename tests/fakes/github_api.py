"""Plumbing shared by the fake GitHub's endpoint modules: the endpoint table, the call context,
and GitHub's page-based pagination (``per_page``/``page`` with a ``Link`` header).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tests.fakes.github_auth import Actor
from tests.fakes.github_bodies import Bodies
from tests.fakes.github_model import ApiError, GitHubState, Repo
from tests.fakes.http import BadRequestBody, Incoming, JsonResponse

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
Permission = tuple[str, str]  # (installation permission, "read" | "write")


@dataclass
class Call:
    """One authenticated request on its way through a handler."""

    state: GitHubState
    bodies: Bodies
    incoming: Incoming
    actor: Actor
    repo: Repo | None

    def json(self) -> Any:
        """The request body; 400 "Problems parsing JSON" like GitHub when it is not JSON."""
        try:
            return self.incoming.json()
        except BadRequestBody:
            raise ApiError(400, "Problems parsing JSON") from None

    def param(self, name: str) -> Any:
        return self.incoming.params[name]

    @property
    def the_repo(self) -> Repo:
        assert self.repo is not None, "endpoint without {owner}/{repo}"
        return self.repo


@dataclass(frozen=True)
class Endpoint:
    """A route of the fake and who may call it.

    `permissions`: an installation token needs one of these (GitHub answers 403 "Resource not
    accessible by integration" otherwise). `app_jwt`: only an App JWT is accepted. `apps_only`:
    personal tokens are refused (GitHub lets only Apps write check runs).
    """

    method: str
    template: str
    handler: Callable[[Call], JsonResponse]
    permissions: Sequence[Permission] = ()
    app_jwt: bool = False
    apps_only: bool = False


def paginate(call: Call, items: list[Any], wrap: Callable[[list[Any]], Any] | None = None) -> JsonResponse:
    """One page of `items` as GitHub serves it, with the Link header PyGithub follows.

    `wrap` turns the page into the body for endpoints that answer an object
    (e.g. ``{"total_count": n, "check_runs": page}``).
    """
    query = call.incoming.query
    try:
        per_page = min(max(int(query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
        page = max(int(query.get("page", 1)), 1)
    except ValueError:
        raise ApiError(422, "Invalid pagination parameters") from None
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page: page * per_page]

    def link(number: int, rel: str) -> str:
        params = urlencode({**query, "per_page": per_page, "page": number})
        return f'<{call.bodies.api}{call.incoming.path}?{params}>; rel="{rel}"'

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    headers = {"Link": ", ".join(links)} if links else {}
    return JsonResponse(200, wrap(chunk) if wrap else chunk, headers)
