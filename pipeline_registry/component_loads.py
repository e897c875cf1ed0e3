"""What a pipeline file says about loading components, read from its source without running it.

Seed pipelines load components with `ComponentStore(local_search_paths=[...])` and
`store.load_component("training")`, or `load_component_from_file("components/x/component.yaml")`.
A change in a loaded folder must re-test the pipeline, so the arguments are evaluated statically:
string literals, module constants, `os.path.join`/`Path(...) / "x"`, `+`, and names bound by a
`for` over a literal list. A name that cannot be evaluated (a function parameter, say) makes the
load "dynamic": every component in the search paths then counts as loaded, which errs on the
side of testing too much rather than too little (`load_resolution` finds the folders). Pipeline
files are only parsed when their words could name a folder a change reaches (`tree_index.LoadIndex`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from pipeline_registry.cache import DigestCache
from pipeline_registry.static_strings import StringEvaluator, callee

# On disk as plain tuples: a warm plan of every pipeline decodes thousands of them.
_FACTS: DigestCache[LoadFacts] = DigestCache(
    "component_loads", encode=lambda f: (f.search_paths, f.unknown_search_paths, f.has_store, f.names, f.dynamic,
                                         tuple(sorted(f.words)), f.sites),
    decode=lambda row: LoadFacts(row[0], row[1], row[2], row[3], row[4], frozenset(row[5]), row[6]))
_CALLEES = ("ComponentStore", "load_component", "load_component_from_file")
_CALL = re.compile(rb"(?<!\w)(ComponentStore|load_component_from_file|load_component)\s*\(")
_QUOTES = (b"'", b'"')
_TRIPLE_QUOTES = (b"'" * 3, b'"' * 3)
_DYNAMIC_HINT = re.compile(rb"load_component\w*\(\s*(?![\"'\s)])")


@dataclass(frozen=True)
class LoadFacts:
    """What a Python file says about loading components."""

    search_paths: tuple[str, ...] = ()
    unknown_search_paths: bool = False
    has_store: bool = False
    names: tuple[str, ...] = ()
    dynamic: bool = False
    words: frozenset[str] = frozenset()
    # (call, value, line) of every evaluated search path and name: what a warning names.
    sites: tuple[tuple[str, str, int], ...] = ()

    @property
    def loads_anything(self) -> bool:
        """True when the file loads at least one component (or may, by a computed name)."""
        return bool(self.names) or self.dynamic


NO_LOADS = LoadFacts()


def may_load_dynamically(text: bytes) -> bool:
    """Cheap test: a `load_component*(...)` call whose argument is not a plain string literal."""
    return bool(_DYNAMIC_HINT.search(text))


def extract_loads(text: bytes) -> LoadFacts:
    """The component-loading facts of one Python file (no loads for unparsable files).

    Calls are found with a regular expression and only the call expressions are parsed; the
    whole file is parsed only when an argument names a variable that must be looked up.
    """
    if b"load_component" not in text and b"ComponentStore" not in text:
        return NO_LOADS
    calls: list[tuple[ast.Call, int]] = []
    for match in _CALL.finditer(text):
        line_start = text.rfind(b"\n", 0, match.start()) + 1
        if b"#" in text[line_start:match.start()]:
            continue  # commented out
        source = _call_source(text, match.start(1))
        try:
            node = ast.parse(source, mode="eval").body if source is not None else None
        except (SyntaxError, ValueError):
            node = None
        if not isinstance(node, ast.Call):
            return _extract_from_tree(text)
        calls.append((node, text.count(b"\n", 0, match.start()) + 1))
    return _facts(calls, StringEvaluator(text))


def _extract_from_tree(text: bytes) -> LoadFacts:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return NO_LOADS
    calls = [(n, n.lineno) for n in ast.walk(tree) if isinstance(n, ast.Call) and callee(n.func) in _CALLEES]
    return _facts(sorted(calls, key=lambda call: call[1]), StringEvaluator(text, tree))


def _call_source(text: bytes, start: int) -> bytes | None:
    """`name(...)` from `start` to its matching parenthesis, skipping string literals."""
    depth, index, end, quote = 0, text.index(b"(", start), len(text), b""
    while index < end:
        char = text[index:index + 1]
        if quote:
            if char == b"\\":
                index += 1
            elif text.startswith(quote, index):
                index += len(quote) - 1
                quote = b""
        elif char in _QUOTES:
            triple = text[index:index + 3]
            quote = triple if triple in _TRIPLE_QUOTES else char
            index += len(quote) - 1
        elif char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            if depth == 0:
                return text[start:index + 1]
        index += 1
    return None


def _facts(calls: list[tuple[ast.Call, int]], bindings: StringEvaluator) -> LoadFacts:
    search: list[str] = []
    unknown_search = has_store = dynamic = False
    names: list[str] = []
    sites: list[tuple[str, str, int]] = []
    for node, line in calls:
        call = callee(node.func) or ""
        if call == "ComponentStore":
            has_store = True
            arg = _argument(node, 0, "local_search_paths")
            if arg is None:
                continue
            values = bindings.values_of_list(arg)
            if values is None:
                unknown_search = True
            else:
                search.extend(values)
                sites.extend((call, value, line) for value in values)
            continue
        arg = _argument(node, 0, "name") or _argument(node, 0, "filename") or _argument(node, 0, "file_path")
        if arg is None:
            continue  # load_component(text=...) / (url=...): nothing local
        values = bindings.values_of(arg)
        if values is None:
            dynamic = True
        else:
            names.extend(values)
            sites.extend((call, value, line) for value in values)
    words = frozenset(part for value in (*search, *names) for part in value.replace("\\", "/").split("/") if part)
    return LoadFacts(tuple(dict.fromkeys(search)), unknown_search, has_store, tuple(dict.fromkeys(names)), dynamic,
                     words, tuple(dict.fromkeys(sites)))


def cached_loads(digest: str, text: bytes) -> LoadFacts:
    """`extract_loads` memoised on the file's blob id."""
    return _FACTS.get_or_compute(digest, lambda: extract_loads(text))


def known_loads(digest: str) -> LoadFacts | None:
    """The facts of a file already analysed (None when it has not been)."""
    return _FACTS.get(digest)


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if keyword in ("filename", "file_path"):
        return None
    return call.args[position] if len(call.args) > position else None


_WORDS = re.compile(rb"[A-Za-z0-9_.\-]+")
_WORDS_TEXT = re.compile(_WORDS.pattern.decode())


@dataclass(frozen=True)
class Mentions:
    """What a pipeline file spells out, to decide cheaply whether it could load a folder."""

    words: frozenset[str]
    calls_load: bool
    dynamic: bool


# On disk as plain tuples (a cold plan writes one per pipeline file).
_MENTIONS: DigestCache[Mentions] = DigestCache(
    "component_mentions", encode=lambda m: (tuple(m.words), m.calls_load, m.dynamic),
    decode=lambda row: Mentions(frozenset(row[0]), row[1], row[2]))


def remember_mentions(digest: str, text: bytes) -> Mentions:
    """The words a file mentions, for a blob `known_mentions` just said was never seen: computed
    and kept by its blob id."""
    return _MENTIONS.put(digest, _mentions_of(text))


def _mentions_of(text: bytes) -> Mentions:
    try:  # the same words, found in the decoded text: one decode instead of one per word
        words = frozenset(_WORDS_TEXT.findall(text.decode()))
    except UnicodeDecodeError:
        words = frozenset(w.decode() for w in _WORDS.findall(text))
    return Mentions(words, b"load_component" in text, may_load_dynamically(text))


def known_mentions(digest: str) -> Mentions | None:
    """The mentions of a file seen before (None when it has not been)."""
    return _MENTIONS.get(digest)
