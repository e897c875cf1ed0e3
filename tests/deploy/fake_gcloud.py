#!/usr/bin/env python3
"""A stand-in for the `gcloud` command line, for the tests of deploy/gcp/ scripts.

Installed as `gcloud` first on PATH. Every invocation is appended (argv as a JSON list) to
$FAKE_GCLOUD_LOG. Resources live in $FAKE_GCLOUD_STATE (JSON), so they behave like a project's:
`describe` succeeds only for what an earlier `create` made (or the test seeded), `create` of an
existing resource fails with ALREADY_EXISTS, an IAM binding on a missing resource fails with
NOT_FOUND. Secrets keep their values (read from `--data-file`, a path or `-` for stdin), as
Secret Manager would; a scheduler job made with `--flags-file` keeps the flags read from it.
A command the fake does not know fails loudly, so a script cannot call something untested.

Only the `--flag=value` form is understood: the scripts under test always write it so.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PROJECT_NUMBER = "123456789012"
VERBS = ("describe", "create", "add-iam-policy-binding", "enable", "access", "deploy")
# Resources keyed by what identifies them: the gcloud group, the name, and the location if any.
LOCATED = ("artifacts repositories", "scheduler jobs")


def main(argv: list[str]) -> int:
    log = Path(os.environ["FAKE_GCLOUD_LOG"])
    state_path = Path(os.environ["FAKE_GCLOUD_STATE"])
    with log.open("a") as out:
        out.write(json.dumps(argv) + "\n")
    state = json.loads(state_path.read_text()) if state_path.exists() else {"resources": {}, "secrets": {}}
    positional = [a for a in argv if not a.startswith("-")]
    flags = dict(_flag(a) for a in argv if a.startswith("--"))
    verb_at = next((i for i, word in enumerate(positional) if word in VERBS), None)
    if verb_at is None:
        return _fail(f"fake gcloud does not know: {' '.join(argv)}", 2)
    group, verb, rest = " ".join(positional[:verb_at]), positional[verb_at], positional[verb_at + 1:]
    code = _run(state, group, verb, rest, flags)
    state_path.write_text(json.dumps(state, indent=1, sort_keys=True))
    return code


def _flag(arg: str) -> tuple[str, Any]:
    name, has_value, value = arg[2:].partition("=")
    return name, value if has_value else True


def _key(group: str, name: str, flags: dict[str, Any]) -> str:
    if group == "iam service-accounts" and "@" not in name:
        name = f"{name}@{flags.get('project')}.iam.gserviceaccount.com"
    location = f"@{flags.get('location')}" if group in LOCATED else ""
    return f"{group}/{name}{location}"


def _run(state: dict[str, Any], group: str, verb: str, rest: list[str], flags: dict[str, Any]) -> int:
    resources, secrets = state["resources"], state["secrets"]
    if group == "services" and verb == "enable":
        return 0
    if group == "projects" and verb == "describe":
        print(PROJECT_NUMBER if "projectNumber" in str(flags.get("format")) else rest[0])
        return 0
    if group == "projects" and verb == "add-iam-policy-binding":
        state.setdefault("bindings", []).append([f"projects/{rest[0]}", flags["member"], flags["role"]])
        return 0
    if group == "secrets versions" and verb == "access":
        value = secrets.get(flags.get("secret"))
        if value is None:
            return _fail(f"NOT_FOUND: Secret [{flags.get('secret')}] not found")
        sys.stdout.write(value)
        return 0
    if group == "app" and verb == "deploy":
        state.setdefault("deploys", []).append(_deployment(rest[0], flags))
        return 0
    if group == "scheduler jobs" and verb == "create" and rest and rest[0] == "http":
        rest = rest[1:]
    if not rest:
        return _fail(f"fake gcloud: {group} {verb} needs a name", 2)
    key = _key(group, rest[0], flags)
    if verb == "describe":
        if group == "secrets" and rest[0] in secrets:
            print(rest[0])
            return 0
        if key not in resources:
            return _fail(f"NOT_FOUND: {key}")
        fmt = str(flags.get("format", ""))
        print(resources[key]["writerIdentity"] if "writerIdentity" in fmt else rest[0])
        return 0
    if verb == "create":
        if key in resources:
            return _fail(f"ALREADY_EXISTS: {key}")
        record = {name: value for name, value in flags.items() if name not in ("project", "quiet")}
        if group == "secrets":
            secrets[rest[0]] = _read_data(str(flags["data-file"]))
            record.pop("data-file")
        if "flags-file" in record:
            record.update(_read_flags_file(str(record.pop("flags-file"))))
        if group == "logging sinks":
            record["writerIdentity"] = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
        resources[key] = record
        return 0
    if verb == "add-iam-policy-binding":
        if key not in resources:
            return _fail(f"NOT_FOUND: cannot bind a role on {key}: it does not exist")
        state.setdefault("bindings", []).append([key, flags["member"], flags["role"]])
        return 0
    return _fail(f"fake gcloud does not know: {group} {verb}", 2)


def _read_data(source: str) -> str:
    return sys.stdin.read() if source == "-" else Path(source).read_text()


def _read_flags_file(path: str) -> dict[str, Any]:
    """gcloud's --flags-file: a YAML mapping of flags; these scripts write `--name: 'value'` lines."""
    flags = {}
    for line in Path(path).read_text().splitlines():
        name, _, value = line.partition(": ")
        value = value.strip()
        if value.startswith("'") and value.endswith("'"):
            value = value[1:-1].replace("''", "'")
        flags[name.removeprefix("--")] = value
    return flags


def _deployment(config: str, flags: dict[str, Any]) -> dict[str, Any]:
    """What `app deploy` uploads as the service's configuration (App Engine keeps it, secrets included),
    and the ignore file it was given."""
    ignore = flags.get("ignore-file")
    return {"config": config, "config_text": Path(config).read_text(),
            "ignore": Path(str(ignore)).read_text() if ignore else None,
            "flags": {k: v for k, v in flags.items() if k not in ("project", "quiet", "ignore-file")}}


def _fail(message: str, code: int = 1) -> int:
    print(f"ERROR: (gcloud) {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
