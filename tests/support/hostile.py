"""A corpus of hostile webhook bodies: GitHub's example payloads mutated the ways attackers and bugs do.

`hostile_corpus(bases)` takes well-formed payloads (event name → payload) and yields `HostileCase`s:

- every field the bot reads, replaced by each value of `HOSTILE_VALUES` (numbers past 64 bits, zero
  and negative ids, floats, lone surrogates escaped and UTF-8 encoded, NUL, 100 kB strings, option-
  like strings for git, path traversal, wrong JSON types);
- SHAs that look right but name no commit, clone URLs the bot must refuse, refs git refuses;
- the body itself broken: nested 100,000 deep, not closed, `NaN`, a BOM, not UTF-8, cut in half,
  a JSON array, duplicate keys, a number with 5,000 digits.

Bodies are bytes, because several of these cannot be produced by `json.dumps` (encoded
surrogates, duplicate keys, NaN). Each case is named, so a failure says which mutation it was.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Sentinel replaced in the serialised body by raw bytes json.dumps cannot write.
_RAW = "\u2063RAW\u2063"


@dataclass(frozen=True)
class HostileCase:
    """One request to send: the event header, the raw body and what was done to it."""

    name: str
    event: str
    body: bytes


HOSTILE_VALUES: dict[str, Any] = {
    "int64-overflow": 2**63,
    "uint64-overflow": 2**64 + 1,
    "zero": 0,
    "negative": -1,
    "float": 1.5,
    "huge-float": 1e308,
    "true": True,
    "null": None,
    "array": [1, [2]],
    "object": {"a": {"b": {}}},
    "empty": "",
    "lone-surrogate": "x\ud800y",
    "nul": "a\x00b",
    "long-text": "x" * 100_000,
    "git-option": "--upload-pack=touch /tmp/pwned",
    "traversal": "../../../etc/passwd",
    "control": "line\r\nX-Injected: 1",
    "emoji": "🚀 déploiement",
}

# What each event's bot-read fields are, with values that are well typed but wrong for the field.
READ_FIELDS: dict[str, tuple[str, ...]] = {
    "pull_request": ("action", "number", "pull_request.number", "pull_request.title", "pull_request.user.login",
                     "pull_request.html_url", "pull_request.head.sha", "pull_request.head.ref",
                     "pull_request.head.repo.full_name", "pull_request.head.repo.clone_url",
                     "pull_request.base.sha", "pull_request.base.ref", "pull_request.draft",
                     "pull_request.author_association", "repository.full_name", "repository.clone_url",
                     "repository.default_branch", "repository.private", "sender.login", "installation.id"),
    "issue_comment": ("action", "issue.number", "comment.id", "comment.body", "comment.user.login",
                      "comment.user.type", "repository.full_name", "repository.clone_url", "sender.login",
                      "installation.id"),
    "push": ("ref", "before", "after", "deleted", "pusher.name", "repository.full_name", "repository.clone_url",
             "repository.default_branch", "sender.login", "installation.id"),
    "check_run": ("action", "check_run.id", "check_run.name", "check_run.head_sha", "check_run.external_id",
                  "check_run.pull_requests", "repository.full_name", "repository.clone_url", "sender.login",
                  "installation.id"),
    "check_suite": ("action", "check_suite.id", "check_suite.head_sha", "check_suite.pull_requests",
                    "repository.full_name", "repository.clone_url", "sender.login", "installation.id"),
}

PLAUSIBLE: dict[str, tuple[tuple[str, Any], ...]] = {
    "pull_request": (("pull_request.head.sha", "f" * 40), ("pull_request.base.sha", "e" * 40),
                     ("repository.clone_url", "https://evil.example.com/repo.git"),
                     ("pull_request.head.repo.clone_url", "ssh://git@evil.example.com/x.git"),
                     ("pull_request.head.ref", "refs/heads/ok/but/-odd")),
    "issue_comment": (("comment.body", "/run " + "p" * 300 + " x=" + "1" * 5000),
                      ("comment.body", "/run \u202e-evil"), ("issue.number", 2**31 - 1)),
    "push": (("after", "d" * 40), ("before", "c" * 40), ("ref", "refs/heads/main.lock"),
             ("repository.clone_url", "file:///etc")),
    "check_run": (("check_run.head_sha", "b" * 40), ("check_run.external_id", "run-that-does-not-exist"),
                  ("check_run.pull_requests", [{"number": 2**31}]), ("check_run.pull_requests", [{"number": True}])),
    "check_suite": (("check_suite.head_sha", "a" * 40), ("check_suite.pull_requests", [{"number": 99}]),
                    ("check_suite.pull_requests", ["not an object"])),
}


def hostile_corpus(bases: Mapping[str, Mapping[str, Any]]) -> Iterator[HostileCase]:
    """Every mutation of every base payload (event name → a payload the bot accepts)."""
    for event, base in bases.items():
        for path in READ_FIELDS.get(event, ()):
            for label, value in HOSTILE_VALUES.items():
                yield HostileCase(f"{event}:{path}={label}", event, _with(base, path, value))
            for encoded_label, raw in (("encoded-surrogate", b'"\xed\xa0\x80"'), ("latin-1", b'"caf\xe9"')):
                yield HostileCase(f"{event}:{path}={encoded_label}", event, _with(base, path, _RAW, raw))
        for path, value in PLAUSIBLE.get(event, ()):
            yield HostileCase(f"{event}:{path}={str(value)[:30]}", event, _with(base, path, value))
        yield from _broken_bodies(event, base)


def _broken_bodies(event: str, base: Mapping[str, Any]) -> Iterator[HostileCase]:
    good = json.dumps(base).encode()
    yield HostileCase(f"{event}:deeply-nested", event,
                      good[:-1] + b', "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    yield HostileCase(f"{event}:never-closed", event, good[:-1] + b', "deep": ' + b"{\"a\":" * 100_000)
    yield HostileCase(f"{event}:nan", event, good[:-1] + b', "n": NaN}')
    yield HostileCase(f"{event}:infinity", event, good[:-1] + b', "n": -Infinity}')
    yield HostileCase(f"{event}:bom", event, b"\xef\xbb\xbf" + good)
    yield HostileCase(f"{event}:utf-16", event, json.dumps(base).encode("utf-16"))
    yield HostileCase(f"{event}:not-utf-8", event, good[:-1] + b', "x": "\xff\xfe"}')
    yield HostileCase(f"{event}:cut-in-half", event, good[:len(good) // 2])
    yield HostileCase(f"{event}:array", event, b"[" + good + b"]")
    yield HostileCase(f"{event}:empty", event, b"")
    yield HostileCase(f"{event}:duplicate-action", event, b'{"action": "opened", ' + good[1:])
    yield HostileCase(f"{event}:5000-digits", event, good[:-1] + b', "n": 1' + b"0" * 5000 + b"}")


def _with(base: Mapping[str, Any], dotted: str, value: Any, raw: bytes | None = None) -> bytes:
    """`base` serialised with the field at `dotted` set to `value` (or to the raw JSON bytes `raw`)."""
    payload = copy.deepcopy(dict(base))
    *parents, last = dotted.split(".")
    node: Any = payload
    for part in parents:
        node = node[part]  # every read field's parents exist in the bases: a typo fails loudly
    node[last] = value
    body = json.dumps(payload).encode()  # ASCII only: a lone surrogate is written escaped
    if raw is not None:
        body = body.replace(json.dumps(_RAW).encode(), raw)
    return body
