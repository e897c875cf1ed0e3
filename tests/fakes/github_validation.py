"""The request rules GitHub enforces on what the bot writes, answered as GitHub's 422.

Each `check_*` function raises `ApiError` 422 ``{"message": "Validation Failed", "errors": [...]}``
listing every broken rule, so a test sees the same refusal the real API would give.
Limits are GitHub's documented ones (https://docs.github.com/en/rest/checks/runs: output summary
and text 65535, 50 annotations per request, at most 3 actions with identifier 20, label 20 and
description 40 characters; https://docs.github.com/en/rest/commits/statuses: description 140;
https://docs.github.com/en/rest/issues/comments: comment body 65536 characters). The output's
65535 is counted in UTF-8 *bytes*, whatever the page says: GitHub answers "summary exceeds a
maximum bytesize of 65535" for a summary of fewer characters with emoji in it
(https://github.com/github/docs/issues/35252).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.fakes.github_model import ApiError, CheckConclusion, CheckStatus, ReactionContent, StatusState

OUTPUT_TEXT_LIMIT = 65535
MAX_ANNOTATIONS = 50
MAX_ACTIONS = 3
ACTION_LIMITS = {"label": 20, "description": 40, "identifier": 20}
STATUS_DESCRIPTION_LIMIT = 140
COMMENT_BODY_LIMIT = 65536
APP_STATUSES = {CheckStatus.QUEUED.value, CheckStatus.IN_PROGRESS.value, CheckStatus.COMPLETED.value}
APP_CONCLUSIONS = {c.value for c in CheckConclusion} - {CheckConclusion.STALE.value}


def _error(resource: str, field: str, code: str, message: str | None = None) -> dict[str, Any]:
    error = {"resource": resource, "field": field, "code": code}
    if message:
        error["message"] = message
    return error


def _raise_if(errors: list[dict[str, Any]]) -> None:
    if errors:
        raise ApiError.validation(errors)


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def check_check_run(body: Any, *, creating: bool, has_conclusion: bool = False) -> None:
    """Rules for POST (creating) and PATCH /check-runs bodies.

    `has_conclusion`: the run being updated already has one (so ``status: completed`` alone is fine).
    """
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    errors: list[dict[str, Any]] = []
    for key in ("name", "head_sha") if creating else ():
        if not isinstance(body.get(key), str) or not body.get(key):
            errors.append(_error("CheckRun", key, "missing_field"))
    for key in ("name", "details_url", "external_id"):
        if key in body and not isinstance(body[key], str):
            errors.append(_error("CheckRun", key, "invalid"))
    status, conclusion = body.get("status"), body.get("conclusion")
    if status is not None and status not in APP_STATUSES:
        errors.append(_error("CheckRun", "status", "invalid",
                             f"status must be one of {sorted(APP_STATUSES)}, got {status!r}"))
    if conclusion is not None and conclusion not in APP_CONCLUSIONS:
        errors.append(_error("CheckRun", "conclusion", "invalid",
                             f"conclusion must be one of {sorted(APP_CONCLUSIONS)}, got {conclusion!r}"))
    if conclusion is None and not has_conclusion and (status == "completed" or "completed_at" in body):
        errors.append(_error("CheckRun", "conclusion", "missing_field",
                             "conclusion is required when status is completed or completed_at is given"))
    for key in ("started_at", "completed_at"):
        if key in body and not _is_timestamp(body[key]):
            errors.append(_error("CheckRun", key, "invalid", f"{key} must be an ISO 8601 timestamp"))
    errors += _output_errors(body.get("output")) + _actions_errors(body.get("actions"))
    _raise_if(errors)


def _output_errors(output: Any) -> list[dict[str, Any]]:
    if output is None:
        return []
    if not isinstance(output, dict):
        return [_error("CheckRun", "output", "invalid")]
    errors = [_error("CheckRun", f"output.{key}", "missing_field")
              for key in ("title", "summary") if not isinstance(output.get(key), str)]
    for key in ("summary", "text"):
        # Bytes, not characters: GitHub's own answer (see the module docstring).
        if isinstance(output.get(key), str) and len(output[key].encode("utf-8")) > OUTPUT_TEXT_LIMIT:
            errors.append(_error("CheckRun", key, "custom",
                                 f"{key} exceeds a maximum bytesize of {OUTPUT_TEXT_LIMIT}"))
    annotations = output.get("annotations", [])
    if not isinstance(annotations, list) or len(annotations) > MAX_ANNOTATIONS:
        errors.append(_error("CheckRun", "output.annotations", "custom",
                             f"at most {MAX_ANNOTATIONS} annotations per request"))
    return errors


def _actions_errors(actions: Any) -> list[dict[str, Any]]:
    if actions is None:
        return []
    if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
        return [_error("CheckRun", "actions", "custom", f"at most {MAX_ACTIONS} actions")]
    errors = []
    for position, action in enumerate(actions):
        for key, limit in ACTION_LIMITS.items():
            value = action.get(key) if isinstance(action, dict) else None
            if not isinstance(value, str) or not value:
                errors.append(_error("CheckRun", f"actions[{position}].{key}", "missing_field"))
            elif len(value) > limit:
                errors.append(_error("CheckRun", f"actions[{position}].{key}", "custom",
                                     f"{key} is too long (maximum is {limit} characters)"))
    return errors


def check_status(body: Any) -> None:
    """Rules for POST /statuses/{sha}."""
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    errors = []
    states = [s.value for s in StatusState]
    if body.get("state") not in states:
        errors.append(_error("Status", "state", "missing_field" if "state" not in body else "invalid",
                             f"state must be one of {states}, got {body.get('state')!r}"))
    description = body.get("description")
    if description is not None and (not isinstance(description, str)
                                    or len(description) > STATUS_DESCRIPTION_LIMIT):
        errors.append(_error("Status", "description", "custom",
                             f"description is too long (maximum is {STATUS_DESCRIPTION_LIMIT} characters)"))
    for key in ("target_url", "context"):
        if body.get(key) is not None and not isinstance(body[key], str):
            errors.append(_error("Status", key, "invalid"))
    _raise_if(errors)


def check_comment(body: Any) -> str:
    """Rules for creating or editing an issue comment; returns the comment text."""
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    text = body.get("body")
    if not isinstance(text, str) or not text.strip():
        _raise_if([_error("IssueComment", "body", "missing_field", "body cannot be blank")])
    if len(text) > COMMENT_BODY_LIMIT:
        _raise_if([_error("IssueComment", "body", "custom",
                          f"Body is too long (maximum is {COMMENT_BODY_LIMIT} characters)")])
    return text


def check_reaction(body: Any) -> ReactionContent:
    """Rules for creating a reaction; returns its content."""
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    allowed = [c.value for c in ReactionContent]
    if body.get("content") not in allowed:
        _raise_if([_error("Reaction", "content", "invalid",
                          f"content must be one of {allowed}, got {body.get('content')!r}")])
    return ReactionContent(body["content"])
