"""The top-level functions a Python source decorates with `@...pipeline`, read from its text.

A plan that affects every pipeline (a change to shared code) names each one's function, and a
monorepo's pipeline files are read for it: parsing each with `ast` builds a whole syntax tree to
look at a few decorator lines, and was a fifth of such a plan. `scan_pipeline_functions` reads
the text instead, exactly where that is easy to be exact about: string literals and comments are
masked first (so nothing inside a docstring counts), brackets are counted so that a decorator's
arguments may span lines, and decorators must be dotted names, optionally called (`@dsl.pipeline`,
`@kfp.dsl.pipeline(name="x")`). Anything else (an unterminated string, a line continuation, an
unbalanced bracket, an expression decorator such as `@pick()[0]`, a non-ASCII name) answers None,
and the caller parses the file with `ast`. Both read a valid file the same
(`tests/pipeline_registry/test_decorated.py` compares them on generated sources); for a file
Python cannot parse whose brackets balance, the scan still names the function the text declares.
"""

from __future__ import annotations

import re

_STRING_OR_COMMENT = re.compile(
    rb"#[^\n]*"
    rb"|(?:[rRbBuUfF]{1,2})?(?:\"\"\"(?:[^\\]|\\.)*?\"\"\"|'''(?:[^\\]|\\.)*?'''"
    rb"|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')",
    re.S)
_DOTTED_CALL = re.compile(rb"@[ \t]*([A-Za-z_]\w*(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*)[ \t]*(\(.*\))?[ \t\r]*", re.S)
_DEF = re.compile(rb"(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(")
_TOP_LINE = re.compile(rb"^(?:@|def[ \t]|async[ \t])", re.M)
_OPEN = (b"(", b"[", b"{")
_CLOSE = (b")", b"]", b"}")


def _depth(text: bytes, start: int = 0, end: int | None = None) -> int:
    """Brackets opened minus closed in `text[start:end]` (strings and comments masked)."""
    stop = len(text) if end is None else end
    return (sum(text.count(c, start, stop) for c in _OPEN)) - sum(text.count(c, start, stop) for c in _CLOSE)


def _names_pipeline(decorator: bytes) -> bool | None:
    """Whether a whole decorator (its lines joined) is `@<dotted name ending in pipeline>` or a
    call of one; None when it is no dotted name or single call of one."""
    match = _DOTTED_CALL.fullmatch(decorator)
    if match is None:
        return None
    call = match.group(2)
    if call is not None:
        depth = 0
        for index, char in enumerate(call):  # the call's own brackets must close at its very end
            depth += (char in b"([{") - (char in b")]}")
            if depth == 0 and index != len(call) - 1:
                return None
    name = match.group(1).replace(b" ", b"").replace(b"\t", b"")
    return name == b"pipeline" or name.endswith(b".pipeline")


def scan_pipeline_functions(text: bytes) -> tuple[str, ...] | None:
    """Names of the top-level functions `text` decorates with `@...pipeline`, in order; None when
    the text is not one the scan reads exactly (parse it instead)."""
    masked = _STRING_OR_COMMENT.sub(b"", text)  # what remains is code: brackets, names, newlines
    if b'"' in masked or b"'" in masked or b"\\" in masked or b"\f" in masked or _depth(masked) != 0:
        return None
    names: list[str] = []
    pending: list[bool] = []  # the decorators of the top-level statement that follows them
    after = 0  # where the last decorator ended: only blank lines may come before the next one
    for start in _TOP_LINE.finditer(masked):
        at = start.start()
        if _depth(masked, 0, at) != 0:
            continue  # a line inside brackets (a decorator's or a call's arguments), not a statement
        if pending and masked[after:at].strip():
            pending = []  # decorators of something else (a class): never a pipeline function
        if masked.startswith(b"@", at):
            end = at
            while True:  # a decorator ends with the first line that closes its brackets
                newline = masked.find(b"\n", end)
                end = len(masked) if newline < 0 else newline
                if _depth(masked, at, end) == 0 or newline < 0:
                    break
                end += 1
            says = _names_pipeline(masked[at:end].rstrip())
            if says is None:
                return None
            pending.append(says)
            after = end
            continue
        found = _DEF.match(masked, at)
        if found is None:
            return None  # a name the scan does not read (non-ASCII, say)
        if any(pending) and not masked[after:at].strip():
            names.append(found.group(1).decode())
        pending = []
    if pending and not masked[after:].strip():
        return None  # decorators of nothing: not Python
    return tuple(names)
