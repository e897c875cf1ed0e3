"""Which repository files go into a component's image: the `COPY`/`ADD` sources of its Dockerfile.

A component must be rebuilt when, and only when, something that goes into its image changes; the
seed's Dockerfiles copy from the repository root (`COPY utils ./utils`), so an edit far from the
component can change its image. Sources are read the way docker reads them: line continuations,
the JSON-array form, flags (`--chown`, `--chmod`, `--link`), no stage copies (`--from=`), no
URLs, globs, `.` for the whole context, `ARG`/`ENV` defaults in `$VARS`, heredocs skipped, and
the build context's `.dockerignore` (or `<Dockerfile>.dockerignore`) applied.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pipeline_registry.cache import DigestCache
from pipeline_registry.globs import IgnoreRules, clean_pattern, glob_match, has_wildcard, rest_regex
from pipeline_registry.models import Component
from pipeline_registry.repo_config import BuildContext, RepoConfig

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<-?([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+]([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git@)")
# An unresolved variable may stand for any path, folders included.
_ANY = "**"



@dataclass(frozen=True)
class CopySource:
    """One source of a `COPY`/`ADD`: a pattern relative to the build context ("" = all of it)."""

    instruction: str
    line: int
    source: str


# On disk as plain tuples: a warm plan decodes one tuple per component instead of unpickling objects.
_PARSED: DigestCache[tuple[CopySource, ...]] = DigestCache(
    "copy_sources", encode=lambda sources: tuple((s.instruction, s.line, s.source) for s in sources),
    decode=lambda rows: tuple(CopySource(*row) for row in rows))


def parse_copy_sources(text: str) -> tuple[CopySource, ...]:
    """Every build-context source the Dockerfile copies, in file order."""
    variables: dict[str, str] = {}
    found: list[CopySource] = []
    for line, logical in (_logical_lines(text) if "\\" in text or "`" in text or "<<" in text else _plain_lines(text)):
        word, _, rest = logical.strip().replace("\t", " ").partition(" ")
        instruction = word.upper()
        if instruction in ("ARG", "ENV"):
            _remember(instruction, rest.strip(), variables)
            continue
        if instruction not in ("COPY", "ADD"):
            continue
        for source in _sources(instruction, rest.strip(), variables):
            found.append(CopySource(instruction, line, source))
    return tuple(found)


def cached_copy_sources(digest: str, text: bytes) -> tuple[CopySource, ...]:
    """`parse_copy_sources` memoised on the Dockerfile's blob id."""
    return _PARSED.get_or_compute(digest, lambda: parse_copy_sources(text.decode("utf-8", errors="replace")))


def parse_into_cache(digest: str, text: bytes) -> None:
    """Parse a Dockerfile known not to be parsed yet (`is_parsed` said so) and keep its sources."""
    _PARSED.put(digest, parse_copy_sources(text.decode("utf-8", errors="replace")))


def is_parsed(digest: str) -> bool:
    """True when the Dockerfile with this blob id was parsed before (no need to read it)."""
    return _PARSED.get(digest) is not None


def _plain_lines(text: str) -> Iterator[tuple[int, str]]:
    """`_logical_lines` of a Dockerfile without escape characters or heredocs: each line is one."""
    for number, raw in enumerate(text.splitlines(), 1):
        logical = raw.strip()
        if logical and logical[0] != "#":
            yield number, logical


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    lines = text.splitlines()
    escape = "\\"
    index = 0
    while index < len(lines):
        directive = _DIRECTIVE.match(lines[index].strip())
        if not directive:
            break
        if directive.group(1).lower() == "escape" and directive.group(2) in ("\\", "`"):
            escape = directive.group(2)
        index += 1
    while index < len(lines):
        start, current = index + 1, lines[index].rstrip()
        index += 1
        if not current.strip() or current.lstrip().startswith("#"):
            continue
        parts: list[str] = []
        while current.endswith(escape):
            parts.append(current[:-1].strip())
            while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith("#")):
                index += 1
            if index >= len(lines):
                current = ""
                break
            current, index = lines[index].rstrip(), index + 1
        parts.append(current.strip())
        logical = " ".join(p for p in parts if p)
        for _, delimiter in _HEREDOC.findall(logical):
            end = next((i for i in range(index, len(lines)) if lines[i].strip() == delimiter), None)
            if end is not None:
                index = end + 1
        yield start, logical


def _remember(instruction: str, rest: str, variables: dict[str, str]) -> None:
    if instruction == "ENV" and "=" not in rest.split(" ", 1)[0]:
        name, _, value = rest.partition(" ")
        variables[name] = _substitute(value.strip().strip("\"'"), variables)
        return
    for item in rest.split():
        name, eq, value = item.partition("=")
        if eq:
            variables[name] = _substitute(value.strip("\"'"), variables)
        else:
            variables.pop(name, None)


def _substitute(text: str, variables: dict[str, str]) -> str:
    if "$" not in text:
        return text
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in variables:
            return variables[name]
        return match.group(2) if match.group(2) is not None else _ANY
    return _VARIABLE.sub(value, text)


def _sources(instruction: str, args: str, variables: dict[str, str]) -> list[str]:
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        if flag.lower().startswith("--from"):
            return []
        args = args.lstrip()
    words: list[str] | None = None
    if args.startswith("["):
        try:
            parsed = json.loads(args)
            words = [str(w) for w in parsed] if isinstance(parsed, list) else None
        except ValueError:
            words = None
    if words is None:
        words = [w.strip("\"'") for w in args.split()]
    if len(words) < 2:
        return []
    sources = []
    for word in words[:-1]:
        if word.startswith("<<") or (instruction == "ADD" and _URL.match(word)):
            continue
        pattern = clean_pattern(_substitute(word, variables))
        if pattern == ".." or pattern.startswith("../"):
            continue  # docker refuses paths outside the context
        sources.append(pattern)
    return sources


def context_dir(component: Component, config: RepoConfig) -> str:
    """The build context folder of a component, repository-relative ("" = the repository root)."""
    if component.build_context is not None:
        return component.build_context
    return "" if config.build_context is BuildContext.REPOSITORY else component.path


def under(sorted_paths: Sequence[str], prefix: str) -> Iterator[str]:
    """Paths of a sorted sequence that start with `prefix` (all of them for "")."""
    start = bisect.bisect_left(sorted_paths, prefix)
    for index in range(start, len(sorted_paths)):
        path = sorted_paths[index]
        if not path.startswith(prefix):
            break
        yield path


def select(sorted_paths: Sequence[str], context: str, pattern: str) -> list[str]:
    """Paths of a sorted sequence that the source `pattern` (relative to `context`) copies."""
    base = f"{context}/" if context else ""
    if not pattern:
        return list(under(sorted_paths, base))
    if not has_wildcard(pattern):
        exact = base + pattern
        index = bisect.bisect_left(sorted_paths, exact)
        hit = [exact] if index < len(sorted_paths) and sorted_paths[index] == exact else []
        return hit + list(under(sorted_paths, exact + "/"))
    # Only paths under the pattern's literal folder can match, and only the rest of the pattern
    # is a regex: thousands of component patterns share a few compiled ones.
    prefix, regex = rest_regex(pattern)
    start = len(base) + len(prefix)
    return [p for p in under(sorted_paths, base + prefix) if regex.match(p[start:])]


@dataclass(frozen=True)
class ImageContext:
    """What `docker build` of one component sees: its Dockerfile, context and `COPY` sources."""

    component: Component
    dockerfile: str
    context: str
    sources: tuple[CopySource, ...]
    dockerignore_file: str | None = None
    dockerignore: IgnoreRules | None = None

    def relative(self, path: str) -> str | None:
        """`path` relative to the build context, or None when it lies outside."""
        if not self.context:
            return path
        return path[len(self.context) + 1:] if path.startswith(self.context + "/") else None

    def excluded(self, path: str) -> bool:
        """True when `.dockerignore` keeps `path` out of the build context."""
        relative = self.relative(path)
        return relative is None or (self.dockerignore is not None and self.dockerignore.excluded(relative))

    def copied_by(self, path: str) -> CopySource | None:
        """The first instruction that copies `path` into the image, or None."""
        if self.excluded(path):
            return None
        relative = self.relative(path) or ""
        for source in self.sources:
            if not source.source or glob_match(source.source, relative):
                return source
        return None

    def inputs(self, sorted_paths: Sequence[str],
               memo: dict[tuple[str, str], list[str]] | None = None) -> frozenset[str]:
        """Every file of `sorted_paths` that goes into the image, the Dockerfile included.

        `memo` keeps what each (context, source) selects: thousands of images copy `utils/`.
        """
        found = {self.dockerfile}
        if self.dockerignore_file:
            found.add(self.dockerignore_file)
        for source in self.sources:
            key = (self.context, source.source)
            selected = memo.get(key) if memo is not None else None
            if selected is None:
                selected = select(sorted_paths, self.context, source.source)
                if memo is not None:
                    memo[key] = selected
            found.update(selected if self.dockerignore is None and not self.context else
                         (p for p in selected if not self.excluded(p)))
        return frozenset(found)


def dockerignore_path(dockerfile: str, context: str, paths: frozenset[str]) -> str | None:
    """The ignore file docker uses: `<Dockerfile>.dockerignore`, else `<context>/.dockerignore`."""
    beside = f"{dockerfile}.dockerignore"
    if beside in paths:
        return beside
    root = f"{context}/.dockerignore" if context else ".dockerignore"
    return root if root in paths else None
