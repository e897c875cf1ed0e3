"""The fake GitHub's check runs and commit statuses: what a PR's checks area shows."""

from __future__ import annotations

from typing import Any

from tests.fakes.github_api import Call, Endpoint, paginate
from tests.fakes.github_model import (
    ApiError,
    CheckConclusion,
    CheckRun,
    CheckStatus,
    Status,
    StatusState,
    now_iso,
)
from tests.fakes.github_validation import check_check_run, check_status
from tests.fakes.http import JsonResponse

REPO = "/repos/{owner}/{repo}"


def _apply(run: CheckRun, body: dict[str, Any]) -> None:
    """Copy a validated create/update body onto `run`, with GitHub's implied changes."""
    for key in ("name", "details_url", "external_id", "started_at"):
        if key in body:
            setattr(run, key, body[key])
    if "output" in body:
        annotations = run.output.get("annotations", []) + body["output"].get("annotations", [])
        run.output = {**body["output"], "annotations": annotations}
    if "actions" in body:
        run.actions = list(body["actions"])
    if body.get("conclusion") is not None:
        # "Providing conclusion will automatically set the status parameter to completed."
        run.conclusion = CheckConclusion(body["conclusion"])
        run.status = CheckStatus.COMPLETED
    elif "status" in body:
        run.status = CheckStatus(body["status"])
        if run.status is not CheckStatus.COMPLETED:
            run.conclusion = None
            run.completed_at = None
    if run.status is CheckStatus.COMPLETED:
        run.completed_at = body.get("completed_at") or run.completed_at or now_iso()


def create_check_run(call: Call) -> JsonResponse:
    body = call.json()
    check_check_run(body, creating=True)
    repo = call.the_repo
    if body["head_sha"] not in repo.commits:
        raise ApiError.validation([{"resource": "CheckRun", "field": "head_sha", "code": "invalid",
                                    "message": f"No commit found for SHA: {body['head_sha']}"}])
    app_id = call.actor.app_id
    assert app_id is not None
    run = CheckRun(id=call.state.next_id("check_run"), repo=repo.full_name, head_sha=body["head_sha"],
                   name=body["name"], app_id=app_id,
                   check_suite_id=call.state.suite_id(repo.full_name, body["head_sha"], app_id),
                   started_at=now_iso())
    _apply(run, body)
    call.state.check_runs[run.id] = run
    rendered = call.bodies.check_run(run)
    return JsonResponse(201, rendered, {"Location": rendered["url"]})


def _run(call: Call) -> CheckRun:
    run = call.state.check_runs.get(call.param("check_run_id"))
    if run is None or run.repo != call.the_repo.full_name:
        raise ApiError.not_found()
    return run


def get_check_run(call: Call) -> JsonResponse:
    return JsonResponse(200, call.bodies.check_run(_run(call)))


def update_check_run(call: Call) -> JsonResponse:
    run = _run(call)
    if call.actor.app_id != run.app_id:
        raise ApiError(403, f"Invalid app_id `{call.actor.app_id}` - check run can only be modified "
                            "by the GitHub App that created it.")
    body = call.json()
    check_check_run(body, creating=False, has_conclusion=run.conclusion is not None)
    _apply(run, body)
    return JsonResponse(200, call.bodies.check_run(run))


def list_check_runs(call: Call) -> JsonResponse:
    """GET commits/{ref}/check-runs: `check_name`, `status`, `app_id` and `filter` (latest|all)."""
    sha = call.the_repo.resolve(call.param("ref"))
    query = call.incoming.query
    runs = [r for r in call.state.check_runs.values() if r.repo == call.the_repo.full_name and r.head_sha == sha]
    if "check_name" in query:
        runs = [r for r in runs if r.name == query["check_name"]]
    if "status" in query:
        runs = [r for r in runs if r.status.value == query["status"]]
    if "app_id" in query:
        runs = [r for r in runs if str(r.app_id) == query["app_id"]]
    if query.get("filter", "latest") == "latest":
        newest: dict[tuple[int, str], CheckRun] = {}
        for run in runs:
            newest[(run.app_id, run.name)] = run
        runs = list(newest.values())
    elif query["filter"] != "all":
        raise ApiError.validation([{"resource": "CheckRun", "field": "filter", "code": "invalid"}])
    runs.sort(key=lambda r: r.id, reverse=True)
    return paginate(call, [call.bodies.check_run(r) for r in runs],
                    lambda page: {"total_count": len(runs), "check_runs": page})


def create_status(call: Call) -> JsonResponse:
    body = call.json()
    check_status(body)
    repo, sha = call.the_repo, call.param("sha")
    if sha not in repo.commits:
        raise ApiError(422, f"No commit found for SHA: {sha}")
    creator = call.state.user(call.actor.login or "ghost")
    status = Status(id=call.state.next_id("status"), repo=repo.full_name, sha=sha,
                    state=StatusState(body["state"]), context=body.get("context") or "default",
                    description=body.get("description"), target_url=body.get("target_url"), creator=creator)
    call.state.statuses.append(status)
    rendered = call.bodies.status(status)
    return JsonResponse(201, rendered, {"Location": rendered["url"]})


def _statuses_newest_first(call: Call) -> list[Status]:
    sha = call.the_repo.resolve(call.param("ref"))
    return [s for s in reversed(call.state.statuses) if s.repo == call.the_repo.full_name and s.sha == sha]


def list_statuses(call: Call) -> JsonResponse:
    return paginate(call, [call.bodies.status(s) for s in _statuses_newest_first(call)])


def combined_status(call: Call) -> JsonResponse:
    latest: dict[str, Status] = {}
    statuses = _statuses_newest_first(call)
    for status in statuses:
        latest.setdefault(status.context, status)
    states = {s.state for s in latest.values()}
    if states & {StatusState.ERROR, StatusState.FAILURE}:
        state = StatusState.FAILURE
    elif not states or StatusState.PENDING in states:
        state = StatusState.PENDING
    else:
        state = StatusState.SUCCESS
    repo = call.the_repo
    sha = repo.resolve(call.param("ref"))
    api = f"{call.bodies.api}/repos/{repo.full_name}"
    return JsonResponse(200, {
        "state": state.value, "statuses": [call.bodies.status(s) for s in latest.values()], "sha": sha,
        "total_count": len(latest), "repository": call.bodies.repo(repo),
        "commit_url": f"{api}/commits/{sha}", "url": f"{api}/commits/{sha}/status",
    })


CHECKS_READ, CHECKS_WRITE = [("checks", "read")], [("checks", "write")]
STATUSES_READ, STATUSES_WRITE = [("statuses", "read")], [("statuses", "write")]

ENDPOINTS = [
    Endpoint("POST", f"{REPO}/check-runs", create_check_run, CHECKS_WRITE, apps_only=True),
    Endpoint("GET", f"{REPO}/check-runs/{{check_run_id:int}}", get_check_run, CHECKS_READ),
    Endpoint("PATCH", f"{REPO}/check-runs/{{check_run_id:int}}", update_check_run, CHECKS_WRITE, apps_only=True),
    Endpoint("GET", f"{REPO}/commits/{{ref}}/check-runs", list_check_runs, CHECKS_READ),
    Endpoint("POST", f"{REPO}/statuses/{{sha}}", create_status, STATUSES_WRITE),
    Endpoint("GET", f"{REPO}/statuses/{{ref}}", list_statuses, STATUSES_READ),
    Endpoint("GET", f"{REPO}/commits/{{ref}}/statuses", list_statuses, STATUSES_READ),
    Endpoint("GET", f"{REPO}/commits/{{ref}}/status", combined_status, STATUSES_READ),
]
