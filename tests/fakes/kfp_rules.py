"""The rules of the fake KFP API server: request validation, filters, paging and error bodies.

Kept apart from `kfp_api.FakeKfp` (routes and state) so each stays small. The wording of the
messages follows the KFP API server's, so what a client shows is what a user would see.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any

import yaml

from tests.fakes.http import Incoming, JsonResponse

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 429: 8, 500: 13, 501: 12, 502: 14, 503: 14, 504: 4}
_OPERATIONS = {1: "EQUALS", 2: "NOT_EQUALS", 9: "IS_SUBSTRING"}


class Api(enum.Enum):
    """The REST API versions the fake can serve."""

    V2BETA1 = "v2beta1"
    V1BETA1 = "v1beta1"


class Refusal(Exception):
    """A handler's refusal, answered as a KFP error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    """What the KFP API server (grpc-gateway) answers with an error."""
    code = GRPC_CODES.get(status, 2)
    return {"error": message, "code": code, "message": message,
            "details": [{"@type": "type.googleapis.com/api.Error", "error_message": message,
                         "error_details": message}]}


def api_of(incoming: Incoming) -> Api:
    """The API version a request was sent to."""
    return Api.V2BETA1 if incoming.path.startswith("/apis/v2beta1/") else Api.V1BETA1


def json_object(incoming: Incoming) -> dict[str, Any]:
    """The request body, which must be a JSON object."""
    try:
        body = incoming.json()
    except ValueError as exc:
        raise Refusal(400, f"Invalid input error: {exc}") from None
    if not isinstance(body, dict):
        raise Refusal(400, "Invalid input error: the body must be a JSON object")
    return body


def v2_declared(body: dict[str, Any]) -> set[str]:
    """The input parameters the pipeline spec of a v2beta1 run declares; refuses a run without a spec."""
    spec = body.get("pipeline_spec")
    if not isinstance(spec, dict):
        raise Refusal(400, "Invalid input error: a run needs a pipeline_spec or a pipeline_version_reference")
    if isinstance(spec.get("pipeline_spec"), dict):  # spec with a platform spec beside it
        spec = spec["pipeline_spec"]
    if not all(key in spec for key in ("pipelineInfo", "root", "schemaVersion")):
        raise Refusal(400, "Invalid input error: pipeline_spec is not a PipelineSpec (pipelineInfo, root, "
                           "schemaVersion)")
    return set((spec["root"].get("inputDefinitions") or {}).get("parameters") or {})


def v1_declared(body: dict[str, Any]) -> tuple[set[str], dict[str, str]]:
    """The parameters the Argo workflow of a v1beta1 run declares, and those the request gives."""
    spec = body.get("pipeline_spec") or {}
    manifest = spec.get("workflow_manifest")
    if not isinstance(manifest, str) or not manifest.strip():
        raise Refusal(400, "Invalid input error: Please specify a pipeline by providing a (workflow manifest) "
                           "or (pipeline id or/and pipeline version).")
    try:
        workflow = yaml.safe_load(manifest)
    except yaml.YAMLError:
        workflow = None
    if not (isinstance(workflow, dict) and workflow.get("kind") == "Workflow"
            and str(workflow.get("apiVersion", "")).startswith("argoproj.io/")):
        raise Refusal(400, "Invalid input error: Could not unmarshal the workflow manifest: not an Argo Workflow")
    given: dict[str, str] = {}
    for parameter in spec.get("parameters") or []:
        if not isinstance(parameter.get("name"), str) or not isinstance(parameter.get("value", ""), str):
            raise Refusal(400, f"Invalid input error: parameter {parameter!r}: name and value must be strings")
        given[parameter["name"]] = parameter.get("value", "")
    declared = {p.get("name") for p in ((workflow.get("spec") or {}).get("arguments") or {}).get("parameters") or []}
    return {str(d) for d in declared}, given


def v1_owner(body: dict[str, Any]) -> str | None:
    """The experiment a v1beta1 run names as its owner, if any."""
    for reference in body.get("resource_references") or []:
        key = reference.get("key") or {}
        if key.get("type") == "EXPERIMENT":
            if reference.get("relationship") != "OWNER":
                raise Refusal(400, "Invalid input error: the experiment reference must be an OWNER relationship")
            return str(key.get("id") or "")
    return None


def item_filter(incoming: Incoming, api: Api, keys: set[str]) -> Callable[[dict[str, Any]], bool]:
    """The `filter` query parameter (a JSON Filter proto) as a predicate on rendered items."""
    raw = incoming.query.get("filter")
    if not raw:
        return lambda item: True
    try:
        predicates = json.loads(raw).get("predicates") or []
    except (ValueError, AttributeError):
        raise Refusal(400, f"Invalid input error: filter is not a JSON Filter: {raw}") from None
    op_field = "operation" if api is Api.V2BETA1 else "op"
    checks = []
    for predicate in predicates:
        unknown = set(predicate) - {op_field, "key", "stringValue", "string_value"}
        if unknown:
            raise Refusal(400, f"Invalid input error: unknown field(s) {sorted(unknown)} in a {api.value} predicate")
        op = predicate.get(op_field)
        op = _OPERATIONS.get(op, op) if isinstance(op, int) else op
        if op not in _OPERATIONS.values() or predicate.get("key") not in keys:
            raise Refusal(400, f"Invalid input error: unsupported predicate {predicate}")
        checks.append((op, predicate["key"], str(predicate.get("stringValue", predicate.get("string_value", "")))))

    def matches(item: dict[str, Any]) -> bool:
        for op, key, value in checks:
            actual = str(item.get(key, ""))
            ok = {"EQUALS": actual == value, "NOT_EQUALS": actual != value, "IS_SUBSTRING": value in actual}[op]
            if not ok:
                return False
        return True

    return matches


def page(incoming: Incoming, field_name: str, items: list[dict[str, Any]]) -> JsonResponse:
    """One page of `items` (`page_size`, `page_token` as an offset), as KFP list answers look."""
    try:
        size = int(incoming.query.get("page_size") or 20)
        start = int(incoming.query.get("page_token") or 0)
    except ValueError:
        raise Refusal(400, "Invalid input error: bad page_size or page_token") from None
    page = items[start:start + max(size, 1)]
    body: dict[str, Any] = {"total_size": len(items)}
    if page:  # grpc-gateway leaves out empty lists
        body[field_name] = page
    if start + len(page) < len(items):
        body["next_page_token"] = str(start + len(page))
    return JsonResponse(200, body)
