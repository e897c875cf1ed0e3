"""The limits every webhook value must fit before it reaches a handler, the store or git.

GitHub's payloads are trusted only once signed, and even then a value the bot cannot store or
hand to git would fail after the 202, where GitHub never sees it. So each field the bot reads
is checked here, and the sender gets a 400 naming the field instead:

- nesting depth of the JSON body, checked on the raw bytes BEFORE `json.loads` (deep nesting
  would otherwise exhaust Python's recursion limit inside the parser);
- ids (installation, comment) in 1..2**63-1: GitHub ids are signed 64-bit integers and the
  store keeps them in BIGINT columns; issue and pull request numbers in 1..2**31-1, the
  PostgreSQL `integer` the store keeps them in (GitHub numbers are far below it);
- text is valid Unicode (no lone surrogates, which no database or git accepts) without NUL
  (PostgreSQL text cannot hold it), and at most `MAX_TEXT` characters;
- commit SHAs are 40 (SHA-1) or 64 (SHA-256 repositories) lowercase hex digits;
- logins, repository names and branch names follow GitHub's and git's own rules.

Nothing here imports Flask or knows HTTP: `BoundsError` says which rule a value broke and the
caller names the field.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

from kfp_bot_errors import KfpBotError
from pipeline_registry.gitargs import is_sha, ref_problem

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays accepted; GitHub's payloads nest fewer than 10 levels."""
MAX_ID = 2**63 - 1
"""Largest id (installation, comment): GitHub ids are signed 64-bit integers."""
MAX_NUMBER = 2**31 - 1
"""Largest issue or pull request number: the store's `integer` column on PostgreSQL."""
MAX_TEXT = 1_000_000
"""Longest text field in characters (a comment body is at most 65,536 on GitHub)."""
MAX_NAME = 255
"""Longest login, repository or branch name in characters (git refs are bounded by path limits)."""

# GitHub logins: letters, digits and single hyphens; Enterprise managed users add `_shortcode`;
# GitHub App bots comment as `name[bot]`.
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?(?:\[bot\])?")
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# Every byte but brackets and quotes: what `check_depth` drops.
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'[]{}"')
# Opening brackets become 1, closing ones 255 (-1 as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class BoundsError(KfpBotError):
    """A value outside what the bot accepts; the message completes "field 'x' ..."."""


def check_depth(body: bytes | bytearray, limit: int = MAX_DEPTH) -> None:
    """Raise `BoundsError` when the JSON text `body` nests objects/arrays deeper than `limit`.

    Works on the raw bytes without parsing (the parser is what deep nesting breaks), every step
    in C: escaped backslashes and then escaped quotes are removed (JSON escapes pair up from the
    left, as `bytes.replace` scans; skipped when there is no backslash), every byte but brackets
    and quotes is dropped, what lies between quotes (string contents) is dropped, then each
    bracket becomes +1 (opening) or -1 (closing) and the deepest level is the largest running
    sum (about 40 µs for a 28 KB payload, 1 s for 25 MB of brackets). Brackets that do not
    match, and quotes that do not pair, are left for the parser to refuse.
    """
    data = bytes(body)
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Adjacent quotes (a string without brackets) go first: dropping two neighbours changes no
    # other quote's parity. Only strings that hold brackets are left to split out.
    kept = data.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    steps = kept.translate(_STEPS)
    if len(steps) <= limit:
        return
    deepest = max(accumulate(array("b", steps)))
    if deepest > limit:
        raise BoundsError(f"nests objects or arrays deeper than {limit} levels ({deepest})")


def check_int(value: int, low: int, high: int) -> int:
    """`value` when `low <= value <= high`."""
    if not low <= value <= high:
        raise BoundsError(f"must be between {low} and {high}, got {printable(str(value))}")
    return value


def check_text(value: str, *, limit: int = MAX_TEXT) -> str:
    """`value` when it is valid Unicode text without NUL, at most `limit` characters."""
    if len(value) > limit:
        raise BoundsError(f"is longer than {limit} characters ({len(value)})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BoundsError(f"is not valid Unicode text (lone surrogate at character {exc.start})") from None
    if "\x00" in value:
        raise BoundsError(f"contains a NUL character (at {value.index(chr(0))})")
    return value


def check_sha(value: str) -> str:
    """A full lowercase commit SHA (40 hex digits, or 64 in a SHA-256 repository)."""
    if not is_sha(value):
        raise BoundsError(f"is not a commit SHA (40 hexadecimal digits), got {printable(value)!r}")
    return value


def check_login(value: str) -> str:
    """A GitHub login (`octocat`, `my-app[bot]`)."""
    if len(value) > MAX_NAME or not _LOGIN.fullmatch(value):
        raise BoundsError(f"is not a GitHub login, got {printable(value)!r}")
    return value


def check_repo_name(value: str) -> str:
    """A repository's `owner/name`."""
    if len(value) > MAX_NAME or not _REPO.fullmatch(value) or any(p in (".", "..") for p in value.split("/")):
        raise BoundsError(f"is not a repository name (owner/name), got {printable(value)!r}")
    return value


def check_ref(value: str) -> str:
    """A branch or ref name git accepts (`git check-ref-format` rules, without the `@` alone case)."""
    check_text(value, limit=MAX_NAME)
    # The rules live with the other values bound for a git command line (a component starting
    # with '-' is refused too: it would be read as an option).
    if ref_problem(value):
        raise BoundsError(f"is not a valid git branch or ref name, got {printable(value)!r}")
    return value


def printable(text: str, limit: int = 80) -> str:
    """`text` for an error message: bounded, and printable even with lone surrogates."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[:limit] + "…"
