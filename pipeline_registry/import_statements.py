"""The import statements of one Python file, read without running it.

A regular expression finds where import statements start and only those are parsed (ordinary
ones by a strict pattern, anything else with `ast`; the whole file goes to `ast` only when an
import hides behind `;` or `if x: import y`), so a large file costs little. Statements are
memoised by blob id, on disk as plain tuples. Which files they load is `imports`' business.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import NamedTuple

from pipeline_registry.cache import DigestCache
from pipeline_registry.snapshot import Snapshot, parse_many

_START = re.compile(rb"^[ \t]*(from[ \t]+\.*[\w.]*[ \t]+import\b|import[ \t]+[A-Za-z_])", re.M)
_START_LINE = re.compile(_START.pattern[1:])  # the same, matched at the start of one line
# A whole one-line statement of ASCII names (what nearly every file holds), to its comment.
_NAME = rb"[A-Za-z_][A-Za-z0-9_]*"
_AS = rf"(?:[ \t]+as[ \t]+{_NAME.decode()})?".encode()
_MODULE = rb"%s(?:\.%s)*" % (_NAME, _NAME)
_LINE = re.compile(
    rb"[ \t]*(import[ \t]+(?P<modules>%(m)s%(a)s(?:[ \t]*,[ \t]*%(m)s%(a)s)*)"
    rb"|from[ \t]+(?P<dots>\.*)(?P<module>%(m)s)?[ \t]+import[ \t]+(?P<names>\*|%(n)s%(a)s(?:[ \t]*,[ \t]*%(n)s%(a)s)*))"
    rb"[ \t]*(?:#[^\r\n]*)?\r?" % {b"m": _MODULE, b"a": _AS, b"n": _NAME})
_INLINE = re.compile(rb"[;:][ \t]*(?:from[ \t]+\.*[\w.]*[ \t]+import\b|import[ \t]+[A-Za-z_])")

_COMMENT = re.compile(r"#[^\n]*")
_IDENT = r"[^\W\d]\w*"
_DOTTED = rf"{_IDENT}(?: ?\. ?{_IDENT})*"
_ALIAS = re.compile(rf"({_DOTTED})(?: as {_IDENT})?")
_IMPORT = re.compile(r"import (.+)")
_FROM = re.compile(rf"from ((?:\. ?)*)((?:{_DOTTED})?) import (.+)")



class ImportStmt(NamedTuple):
    """`import a.b` is (0, "a.b", ()); `from ..x import y, z` is (2, "x", ("y", "z")).

    An immutable named tuple rather than a frozen dataclass: a plan of a large monorepo makes
    tens of thousands, and a tuple is made, hashed and compared in C.
    """

    level: int
    module: str
    names: tuple[str, ...] = ()

    @property
    def tokens(self) -> set[str]:
        """Every identifier the statement names (to find who may import a given module)."""
        return {part for part in self.module.split(".") if part} | {n for n in self.names if n != "*"}


# On disk as plain tuples (ten times faster to load than pickled dataclasses).
_STATEMENTS: DigestCache[tuple[ImportStmt, ...]] = DigestCache(
    "import_statements", encode=lambda stmts: tuple((s.level, s.module, s.names) for s in stmts),
    decode=lambda rows: tuple(ImportStmt(*row) for row in rows))


def statements_of(snapshot: Snapshot, paths: Iterable[str]) -> dict[str, tuple[ImportStmt, ...]]:
    """The import statements of several files of `snapshot`, reading only blobs never parsed before."""
    return parse_many(snapshot, paths, _STATEMENTS, extract_imports)


def extract_imports(text: bytes) -> tuple[ImportStmt, ...]:
    """The import statements of a Python source, in order (duplicates removed)."""
    found: list[ImportStmt] | None = []
    if _INLINE.search(text):
        try:
            found = _from_tree(ast.parse(text))
        except (SyntaxError, ValueError):
            found = []
    if not found:
        found = _one_line_statements(text)
    return tuple(dict.fromkeys(found if found is not None else _scan(text)))


def _one_line_statements(text: bytes) -> list[ImportStmt] | None:
    """The statements when every one is a plain one-line `import a.b as c, d` or `from .a import b`
    (ASCII names, no parentheses or continuations), read line by line: only lines that contain
    `import` are matched, never every position of the file. None: parse them one by one."""
    found: list[ImportStmt] = []
    at = text.find(b"import")
    while at != -1:  # each line that contains `import`, once: what `_START` finds starts one
        start = text.rfind(b"\n", 0, at) + 1
        end = text.find(b"\n", at)
        end = len(text) if end == -1 else end
        at = text.find(b"import", end)
        text_line = text[start:end]
        known = _LINES.get(text_line, _UNSEEN)
        if known is _UNSEEN:
            if len(_LINES) >= _MAX_LINES:
                _LINES.clear()
            known = _LINES[text_line] = _line_statements(text_line)
        if known is None:
            return None
        found.extend(known)  # type: ignore[arg-type]  # a tuple of statements here
    return found


_UNSEEN = object()  # what `_LINES.get` gives for a line never seen
# Statements by line: monorepos repeat their import lines (`from utils.io import read`) in
# thousands of files. Bounded; a lost entry is only matched again.
_LINES: dict[bytes, tuple[ImportStmt, ...] | None] = {}
_MAX_LINES = 50_000


def _line_statements(text_line: bytes) -> tuple[ImportStmt, ...] | None:
    """The statements of one line (none when `_START` finds none there), None when it is no plain
    one-line statement."""
    if _START_LINE.match(text_line) is None:
        return ()
    line = _LINE.fullmatch(text_line)
    if line is None:
        return None
    plain = line.group("modules")
    if plain is not None:
        return tuple(ImportStmt(0, item.split()[0].decode()) for item in plain.split(b","))
    names = tuple(item.split()[0].decode() for item in line.group("names").split(b","))
    return (ImportStmt(len(line.group("dots")), (line.group("module") or b"").decode(), names),)


def _scan(text: bytes) -> list[ImportStmt]:
    """Each statement `_START` finds, parsed by hand when ordinary, else by `ast`."""
    found: list[ImportStmt] = []
    for match in _START.finditer(text):
        snippet = _statement(text, match.start(1))
        simple = _simple(snippet)
        if simple is not None:
            found.extend(simple)
            continue
        try:
            found.extend(_from_tree(ast.parse(snippet)))
        except (SyntaxError, ValueError):
            continue  # an import-looking line inside a string
    return found


def _statement(text: bytes, start: int) -> bytes:
    """The source of the statement starting at `start`: to the end of its line, its `)`, or past `\\`."""
    end = text.find(b"\n", start)
    end = len(text) if end == -1 else end
    line = text[start:end].split(b"#", 1)[0]
    if b"(" in line and b")" not in line:
        close = text.find(b")", start)
        return text[start:] if close == -1 else text[start:close + 1]
    while line.rstrip().endswith(b"\\") and end < len(text):
        following = text.find(b"\n", end + 1)
        end = len(text) if following == -1 else following
        line = text[start:end]
    return text[start:end]


def _simple(snippet: bytes) -> list[ImportStmt] | None:
    """Parse an ordinary import statement by hand; None sends anything unusual to `ast`."""
    try:
        source = snippet.decode("utf-8")
    except UnicodeDecodeError:
        return None
    source = _COMMENT.sub("", source).replace("\\\n", " ").replace("\\\r\n", " ")
    source = " ".join(source.replace("(", " ").replace(")", " ").split())
    plain = _IMPORT.fullmatch(source)
    if plain:
        modules = [_ALIAS.fullmatch(item.strip()) for item in plain.group(1).split(",")]
        if not all(modules):
            return None
        return [ImportStmt(0, m.group(1).replace(" ", "")) for m in modules if m]
    relative = _FROM.fullmatch(source)
    if relative is None:
        return None
    items = [item.strip() for item in relative.group(3).split(",")]
    if items and not items[-1]:
        items.pop()
    if items == ["*"]:
        names = ["*"]
    else:
        matches = [_ALIAS.fullmatch(item) for item in items]
        if not items or not all(m and "." not in m.group(1) for m in matches):
            return None
        names = [m.group(1) for m in matches if m]
    dots = relative.group(1).replace(" ", "")
    return [ImportStmt(len(dots), relative.group(2).replace(" ", ""), tuple(names))]


def _from_tree(tree: ast.AST) -> list[ImportStmt]:
    found: list[ImportStmt] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(ImportStmt(0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append(ImportStmt(node.level or 0, node.module or "", tuple(a.name for a in node.names)))
    return found
