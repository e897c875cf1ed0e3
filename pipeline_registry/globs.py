"""Path globs as `.kfp-bot.yaml` (`ignore`, `global_files`) and `.dockerignore` write them.

One matcher for all three, so a pattern means the same thing everywhere: patterns are anchored at
the repository (or build context) root, `*` and `?` stay within one path segment, a `**` segment
matches any number of segments (`**/*.md` matches `README.md` and `a/b/c.md`), and a pattern that
matches a folder matches everything inside it (`docs` ignores `docs/guide/intro.rst`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import lru_cache


def clean_pattern(pattern: str) -> str:
    """Normalise a pattern the way docker does: no leading `/` or `./`, no `a/../b`."""
    text = pattern.strip().replace("\\/", "/")
    if text and text[0] not in "./" and text[-1] != "/" and "//" not in text and "/." not in text:
        return text  # already clean (`utils`, `pipelines/a/train/*`): normpath would return it as it is
    while text.startswith("./"):
        text = text[2:]
    text = text.lstrip("/")
    if not text:
        return ""
    cleaned = posixpath.normpath(text)
    return "" if cleaned == "." else cleaned


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compiled regex matching a path the pattern names, or any path inside a folder it names."""
    parts = pattern.split("/")
    out: list[str] = []
    for index, segment in enumerate(parts):
        last = index == len(parts) - 1
        if segment == "**":
            if last:
                if out and out[-1] == "/":
                    out.pop()
                    out.append("(?:/.*)?")
                else:
                    out.append(".*")
            else:
                out.append("(?:.*/)?")
            continue
        out.append(_segment(segment))
        if not last:
            out.append("/")
    return re.compile("^(?:" + "".join(out) + ")(?:/.*)?$", re.DOTALL)


def _segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif ch == "[":
            end = segment.find("]", i + 2 if segment[i + 1:i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = segment[i + 1:end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@lru_cache(maxsize=16384)
def literal_prefix(pattern: str) -> str:
    """The folder part of `pattern` before its first wildcard (`a/b/*.py` -> `a/b/`)."""
    cut = len(pattern)
    for wildcard in "*?[\\":
        found = pattern.find(wildcard)
        if found != -1:
            cut = min(cut, found)
    if cut == len(pattern):
        return pattern
    head = pattern[:cut]
    return head[: head.rfind("/") + 1]


def rest_regex(pattern: str) -> tuple[str, re.Pattern[str]]:
    """(literal folder prefix, regex for what follows it): `pipelines/a/train/*.py` is
    (`pipelines/a/train/`, the regex of `*.py`).

    A path matches the pattern when it starts with the prefix and the rest matches the regex.
    Thousands of component patterns differ only in their prefix, so they share a handful of
    compiled regexes (compiling one per pattern overflowed `glob_regex`'s cache at 3,000 pipelines).
    """
    prefix = literal_prefix(pattern)
    return prefix, glob_regex(pattern[len(prefix):])


def glob_match(pattern: str, path: str) -> bool:
    """True when `pattern` names `path` or a folder containing it (same meaning as `glob_regex`)."""
    prefix, regex = rest_regex(pattern)
    if pattern.startswith("**", len(prefix)):
        return glob_regex(pattern).match(path) is not None  # `a/**` also names the file `a` itself
    return path.startswith(prefix) and regex.match(path[len(prefix):]) is not None


@lru_cache(maxsize=16384)
def has_wildcard(pattern: str) -> bool:
    """True when the pattern contains glob syntax."""
    return any(ch in pattern for ch in "*?[\\")


class GlobSet:
    """A list of patterns; `match` returns the first one that matches a path."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p for p in (clean_pattern(p) for p in patterns) if p)
        self._compiled = tuple((p, glob_regex(p)) for p in self.patterns)
        # One regex for "does any pattern match": most paths match none, found in one call.
        self._any = re.compile("|".join(f"(?:{regex.pattern})" for _, regex in self._compiled), re.DOTALL) \
            if self._compiled else None

    def match(self, path: str) -> str | None:
        """The first pattern matching `path` (or a folder containing it), else None."""
        if self._any is None or self._any.match(path) is None:
            return None
        for pattern, regex in self._compiled:
            if regex.match(path):
                return pattern
        return None

    def __bool__(self) -> bool:
        return bool(self.patterns)


class IgnoreRules:
    """`.dockerignore` semantics: ordered patterns, `!` re-includes, the last match wins."""

    def __init__(self, text: str) -> None:
        rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = clean_pattern(line[1:] if include else line)
            if pattern:
                rules.append((include, glob_regex(pattern)))
        self._rules = tuple(rules)

    def excluded(self, path: str) -> bool:
        """True when `path` (relative to the build context) is left out of the context."""
        excluded = False
        for include, regex in self._rules:
            if regex.match(path):
                excluded = not include
        return excluded
