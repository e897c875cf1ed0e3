"""Values that reach a git command line, validated before they get there.

A webhook payload is signed by GitHub, but its values are chosen by whoever controls the
repository, the fork or the branch: a clone URL of `--upload-pack=touch /tmp/x`, a ref of
`-x` or `a..b`, a SHA with a newline. Every such value is checked here against an allowlist
(SHAs are 40 or 64 hex digits; refs follow `git check-ref-format`; clone URLs are https, ssh or
file URLs or absolute paths, never starting with `-`), and callers still pass them after `--`
where git accepts it. The error names the field, so the event ends in a state that says which
value was refused.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from kfp_bot_errors import KfpBotError

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# `git check-ref-format`: no control characters, space, ~ ^ : ? * [ or backslash anywhere
# (https://git-scm.com/docs/git-check-ref-format).
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# http is read (GitHub Enterprise examples use it) but never fetched: the clone policy allows
# https and ssh only, and git's protocol.allow leaves http out (deploy/checkout.py).
URL_SCHEMES = ("https", "http", "ssh", "file")


class GitArgumentError(KfpBotError):
    """A value bound for a git command line is not acceptable; `field` names where it came from."""

    def __init__(self, field: str, problem: str, *, hint: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field} {problem}", hint=hint)


def is_sha(value: str) -> bool:
    """A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits."""
    return isinstance(value, str) and _SHA.fullmatch(value) is not None


def check_sha(value: str, field: str) -> str:
    """`value` when it is a full commit id, else `GitArgumentError` naming `field`."""
    if not is_sha(value):
        raise GitArgumentError(field, f"is not a full commit SHA (40 or 64 hex digits): {_shown(value)}")
    return value


def ref_problem(name: str) -> str | None:
    """Why `name` is not a valid ref or branch name under `git check-ref-format`, or None."""
    if not name:
        return "is empty"
    if name.startswith("-"):
        return "starts with '-'"
    if _REF_FORBIDDEN.search(name):
        return "contains a control character, a space or one of ~ ^ : ? * [ \\"
    if ".." in name or "@{" in name or name == "@":
        return "contains '..' or '@{'"
    if name.startswith("/") or name.endswith("/") or "//" in name or name.endswith("."):
        return "has an empty path component or ends with '/' or '.'"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "has a component starting with '.' or ending with '.lock'"
        if part.startswith("-"):
            # Stricter than git (which only refuses it for branch names): a branch taken from
            # `refs/heads/-x` would be an option.
            return "has a component starting with '-'"
    return None


def check_ref(value: str, field: str) -> str:
    """`value` when it is a valid ref or branch name, else `GitArgumentError` naming `field`."""
    problem = ref_problem(value)
    if problem:
        raise GitArgumentError(field, f"is not a valid git ref name: {problem} ({_shown(value)})",
                               hint="see git check-ref-format")
    return value


def check_url(value: str, field: str) -> str:
    """`value` when it can only be read by git as a repository location: an http(s), ssh or file
    URL or an absolute path, with no leading '-' and no control characters."""
    if not value:
        raise GitArgumentError(field, "is empty")
    if value.startswith("-"):
        raise GitArgumentError(field, f"starts with '-' (it would be read as a git option): {_shown(value)}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise GitArgumentError(field, f"contains control characters: {_shown(value)}")
    scheme = urlparse(value).scheme
    if scheme in URL_SCHEMES or (not scheme and value.startswith("/")):
        return value
    raise GitArgumentError(field, f"is not an http(s), ssh or file URL or an absolute path: {_shown(value)}",
                           hint="transports such as ext:: and relative paths are never used")


def _shown(value: object) -> str:
    """A refused value for an error message: quoted, control characters escaped, bounded."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
