"""Re-create the vendored webhook payloads from the `@octokit/webhooks-examples` npm package.

The tests never run this: they read the JSON files next to it, so they need no network. Run it only
to check or refresh the vendored copies:

    python tests/data/webhooks/fetch.py                     # npm pack the pinned version
    python tests/data/webhooks/fetch.py --tarball FILE.tgz  # use a tarball fetched earlier

The tarball's sha512 is checked against the one recorded here, so a changed package cannot slip in
unnoticed. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@octokit/webhooks-examples"
VERSION = "7.6.1"
# npm's "integrity" of the published tarball (`npm view @octokit/webhooks-examples@7.6.1 dist.integrity`).
INTEGRITY = "sha512-De6U3XB6O3DtCa7bKgCMzTHdeopqqZ6SNivMYJnK65ierKL1AnNIA0tkRYCRS7lwGT792d+Ps1WbfHlso6MynQ=="
INDEX_MEMBER = "package/api.github.com/index.json"
HERE = Path(__file__).resolve().parent

# file stem -> (event name, position in that event's `examples` list, expected `action` or None).
# Where the package has several examples of one action, the one carrying `installation` is chosen:
# the bot is a GitHub App, and App deliveries carry it.
SELECTED: dict[str, tuple[str, int, str | None]] = {
    "pull_request.opened": ("pull_request", 12, "opened"),
    "pull_request.synchronize": ("pull_request", 22, "synchronize"),
    "pull_request.reopened": ("pull_request", 18, "reopened"),
    "pull_request.closed": ("pull_request", 3, "closed"),
    "pull_request.ready_for_review": ("pull_request", 16, "ready_for_review"),
    "pull_request.labeled": ("pull_request", 8, "labeled"),
    "issue_comment.created.issue": ("issue_comment", 3, "created"),
    "issue_comment.edited": ("issue_comment", 8, "edited"),
    "ping": ("ping", 2, None),
    "push": ("push", 4, None),
    "check_run.rerequested": ("check_run", 8, "rerequested"),
    "check_run.requested_action": ("check_run", 6, "requested_action"),
    "check_suite.rerequested": ("check_suite", 8, "rerequested"),
}


def derive_pull_request_comment(issue_comment: dict[str, Any]) -> dict[str, Any]:
    """An `issue_comment.created` delivery for a comment on a pull request.

    The package has no such example: every `issue_comment` example comments on a plain issue. GitHub
    marks a pull request's issue with an `issue.pull_request` object and links it under /pull/; those
    are the only fields changed (see README.md).
    """
    payload = copy.deepcopy(issue_comment)
    issue = payload["issue"]
    api_pull = issue["url"].replace("/issues/", "/pulls/")
    html_pull = issue["html_url"].replace("/issues/", "/pull/")
    issue["html_url"] = html_pull
    issue["pull_request"] = {
        "url": api_pull,
        "html_url": html_pull,
        "diff_url": f"{html_pull}.diff",
        "patch_url": f"{html_pull}.patch",
        "merged_at": None,
    }
    comment = payload["comment"]
    comment["html_url"] = comment["html_url"].replace("/issues/", "/pull/")
    return payload


def npm_pack(destination: Path) -> Path:
    """Download the pinned package tarball with `npm pack` into `destination`."""
    result = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],
        cwd=destination, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        sys.exit(f"npm pack {PACKAGE}@{VERSION} failed:\n{result.stderr}")
    return destination / result.stdout.strip().splitlines()[-1]


def check_integrity(tarball: Path) -> None:
    """Stop unless `tarball` is byte for byte the published package."""
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != INTEGRITY:
        sys.exit(f"{tarball}: sha512-{digest} is not the published {PACKAGE}@{VERSION} ({INTEGRITY})")


def read_examples(tarball: Path) -> dict[str, list[dict[str, Any]]]:
    """The package's api.github.com examples, keyed by event name."""
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.extractfile(INDEX_MEMBER)
        if member is None:
            sys.exit(f"{tarball} has no {INDEX_MEMBER}")
        index = json.load(member)
    return {event["name"]: event["examples"] for event in index}


def build(examples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Every vendored payload, keyed by file stem."""
    payloads: dict[str, dict[str, Any]] = {}
    for stem, (event, position, action) in SELECTED.items():
        payload = examples[event][position]
        if payload.get("action") != action:
            sys.exit(f"{event} example {position} has action {payload.get('action')!r}, expected {action!r}")
        payloads[stem] = payload
    payloads["issue_comment.created"] = derive_pull_request_comment(payloads["issue_comment.created.issue"])
    return payloads


def write(payloads: dict[str, dict[str, Any]], target: Path) -> None:
    """Write one pretty-printed JSON file per payload."""
    for stem, payload in sorted(payloads.items()):
        path = target / f"{stem}.json"
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(target.parent.parent.parent)}")


def main(argv: list[str] | None = None) -> None:
    """Fetch (or take) the tarball, check it, and rewrite the vendored payloads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="an already downloaded package tarball")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tarball = args.tarball or npm_pack(Path(scratch))
        check_integrity(tarball)
        write(build(read_examples(tarball)), HERE)


if __name__ == "__main__":
    main()
