"""What the fake Cloud Build checks and computes the way Cloud Build does.

The rules a build must pass before Cloud Build accepts it (tag rule, step ids and `wait_for`,
substitution keys and `$` escaping, a service account's logging), the expansion of
substitutions a worker applies to the steps, and the `ListBuilds` filter language (the
`key="value" AND …` subset the bot uses). A mistake here would only show in production, so the
fake refuses what Cloud Build refuses, with Cloud Build's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import grpc
from google.cloud.devtools import cloudbuild_v1

from tests.fakes.grpc_fake import Rejection

Status = cloudbuild_v1.Build.Status
LoggingMode = cloudbuild_v1.BuildOptions.LoggingMode
FailureType = cloudbuild_v1.Build.FailureInfo.FailureType

TAG_RULE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_USER_KEY = re.compile(r"^_[A-Z0-9_]+$")
_TEMPLATE_VAR = re.compile(r"\$(\$|\{(\w+)\}|(\w+))", re.ASCII)
_FILTER_TERM = re.compile(r'^\s*(tags|status|id)\s*=\s*"([^"]*)"\s*$')
TERMINAL = frozenset({Status.SUCCESS, Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT,
                       Status.CANCELLED, Status.EXPIRED})
BUILT_INS = frozenset({"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME",
                       "COMMIT_SHA", "SHORT_SHA", "REVISION_ID", "REPO_NAME", "REPO_FULL_NAME",
                       "BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_BUILD_CONFIG_PATH",
                       "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"})


def validate(build: cloudbuild_v1.Build, location: str) -> None:
    """The checks Cloud Build makes before it accepts a build (INVALID_ARGUMENT otherwise)."""
    def invalid(message: str) -> None:
        raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"invalid build: {message}")

    if not build.steps:
        invalid("no build steps")
    for tag in build.tags:
        if not TAG_RULE.match(tag):
            invalid(f'invalid build tag "{tag}": must match format "^[\\w][\\w.-]{{0,127}}$"')
    seen: set[str] = set()
    for index, step in enumerate(build.steps):
        if not step.name:
            invalid(f"build step {index} must specify name")
        for dependency in step.wait_for:
            if dependency != "-" and dependency not in seen:
                invalid(f'build step {index} depends on "{dependency}", which is not a previous step')
        if step.id:
            if step.id in seen:
                invalid(f'duplicate build step id "{step.id}"')
            seen.add(step.id)
    which = build.source._pb.WhichOneof("source")
    if which == "git_source" and not build.source.git_source.url:
        invalid("git_source.url is required")
    if which == "connected_repository":
        repository = build.source.connected_repository.repository
        parts = repository.split("/")
        if len(parts) != 8 or parts[3] != location:
            invalid(f"connected repository {repository!r} must be in the build's region {location!r}")
    if build.service_account:
        if not re.fullmatch(r"projects/[^/]+/serviceAccounts/[^/]+", build.service_account):
            invalid("service_account must be of the form projects/{PROJECT_ID}/serviceAccounts/{ACCOUNT}")
        options = build.options
        if not (build.logs_bucket or options.logging in (LoggingMode.CLOUD_LOGGING_ONLY, LoggingMode.NONE)
                or options.default_logs_bucket_behavior
                == cloudbuild_v1.BuildOptions.DefaultLogsBucketBehavior.REGIONAL_USER_OWNED_BUCKET):
            invalid("if 'build.service_account' is specified, the build must either (a) specify "
                    "'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
                    "build.options.default_logs_bucket_behavior option, or (c) use either CLOUD_LOGGING_ONLY "
                    "/ NONE logging options")
    _check_substitutions(build, invalid)


def _check_substitutions(build: cloudbuild_v1.Build, invalid: Callable[[str], None]) -> None:
    loose = build.options.substitution_option == cloudbuild_v1.BuildOptions.SubstitutionOption.ALLOW_LOOSE
    for key in build.substitutions:
        if not _USER_KEY.match(key):
            invalid(f'invalid value for \'build.substitutions\': key "{key}" must begin with "_" and use '
                    "only uppercase letters, digits and underscores")
    templates: list[str] = []
    for step in build.steps:
        templates += [step.name, step.entrypoint, step.dir_, *step.args, *step.env]
    templates += list(build.images)
    used: set[str] = set()
    for text in templates:
        for match in _TEMPLATE_VAR.finditer(text):
            name = match.group(2) or match.group(3)
            if name is None:
                continue
            if name not in BUILT_INS and name not in build.substitutions and not loose:
                invalid(f"invalid value for 'build.substitutions': key in the template \"{name}\" is not a "
                        "valid built-in substitution")
            used.add(name)
    unused = sorted(set(build.substitutions) - used)
    if unused and not loose:
        invalid(f"key \"{unused[0]}\" in the substitution data is not matched in the template")


def expand(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        return values.get(match.group(2) or match.group(3), "")
    return _TEMPLATE_VAR.sub(replace, text)


def build_filter(text: str) -> Callable[[cloudbuild_v1.Build], bool]:
    """`tags="a" AND status="SUCCESS"`-style filters; anything else is INVALID_ARGUMENT."""
    if not text.strip():
        return lambda build: True
    checks = []
    for term in re.split(r"\s+AND\s+", text.strip()):
        match = _FILTER_TERM.match(term)
        if match is None:
            raise Rejection(grpc.StatusCode.INVALID_ARGUMENT, f"invalid filter {text!r}")
        key, value = match.groups()
        if key == "tags":
            checks.append(lambda b, v=value: v in b.tags)
        elif key == "status":
            checks.append(lambda b, v=value: Status(b.status).name == v)
        else:
            checks.append(lambda b, v=value: b.id == v)
    return lambda build: all(check(build) for check in checks)


def mark_failure(build: cloudbuild_v1.Build, status: Status, failing_step: str | None, detail: str | None) -> None:
    """Step statuses and failure info of a build ending `status`: the failing step (default: the
    first) carries it, the steps stopped because of it end CANCELLED."""
    failing_index = None
    if status in (Status.FAILURE, Status.TIMEOUT) and build.steps:
        ids = [s.id for s in build.steps]
        failing_index = ids.index(failing_step) if failing_step is not None else 0
    for index, step in enumerate(build.steps):
        step.status = status if index == failing_index else Status.CANCELLED
        if index == failing_index and status == Status.FAILURE:
            step.exit_code = 1
    if failing_index is not None:
        step = build.steps[failing_index]
        default = (f'Build step failure: build step {failing_index} "{step.name}" failed: '
                   f"step exited with non-zero status: 1" if status == Status.FAILURE else "Build timeout")
        build.failure_info = cloudbuild_v1.Build.FailureInfo(type_=FailureType.USER_BUILD_STEP,
                                                              detail=detail or default)
        build.status_detail = detail or default
    elif detail:
        build.status_detail = detail
