"""Evaluating Python string expressions statically, without running the file.

Pipeline files spell component paths as literals, module constants, `os.path.join(...)`,
`Path(...) / "x"`, f-strings or `+`; this module evaluates those to every string they can be,
or says it cannot (None), so callers can fall back to a conservative answer.
"""

from __future__ import annotations

import ast

_JOIN_FUNCS = {"join", "Path", "PurePath", "PurePosixPath", "joinpath"}
# Beyond this many combinations an expression is treated as unknown.
_MAX_VALUES = 256


def callee(func: ast.expr) -> str | None:
    """The called name: `f` for `f(...)` and `a.b.f(...)`."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


class StringEvaluator:
    """Evaluates string expressions of one file; names are looked up scope-insensitively.

    A name's value is the union of every value bound to it anywhere in the file (assignments,
    `for` targets over literal lists); one binding that cannot be evaluated (a parameter, a
    call result) makes the name unknown.
    """

    def __init__(self, text: bytes, tree: ast.AST | None = None) -> None:
        self._text = text
        self._tree = tree
        self._table: dict[str, list[ast.expr | None]] | None = None
        self._resolving: set[str] = set()

    @property
    def _nodes(self) -> dict[str, list[ast.expr | None]]:
        # Built on the first variable lookup: literal-only files are never parsed whole.
        if self._table is None:
            self._table = {}
            tree = self._tree
            if tree is None:
                try:
                    tree = ast.parse(self._text)
                except (SyntaxError, ValueError):
                    tree = ast.Module(body=[], type_ignores=[])
            for node in ast.walk(tree):
                self._visit(node)
        return self._table

    def _visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind(target, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            self._bind(node.target, None)
        elif isinstance(node, (ast.For, ast.comprehension)):
            self._bind(node.target, ast.Starred(value=node.iter))
        elif isinstance(node, ast.arguments):
            for arg in [*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg, node.kwarg]:
                if arg is not None:
                    self._bind(ast.Name(id=arg.arg), None)
        elif isinstance(node, ast.With):
            for item in node.items:
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, None)
        elif isinstance(node, ast.NamedExpr):
            self._bind(node.target, None)

    def _bind(self, target: ast.expr, value: ast.expr | None) -> None:
        assert self._table is not None
        if isinstance(target, ast.Name):
            self._table.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element, None)

    def values_of_list(self, node: ast.expr) -> list[str] | None:
        """Values of a list/tuple of path expressions (None when any element is unknown)."""
        if isinstance(node, ast.Name) and node.id in self._nodes and len(self._nodes[node.id]) == 1:
            bound = self._nodes[node.id][0]
            return None if bound is None else self.values_of_list(bound)
        if not isinstance(node, (ast.List, ast.Tuple)):
            return None
        found: list[str] = []
        for element in node.elts:
            values = self.values_of(element)
            if values is None:
                return None
            found.extend(values)
        return found

    def values_of(self, node: ast.expr) -> list[str] | None:
        """Every string the expression can evaluate to, or None when it cannot be known statically."""
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else None
        if isinstance(node, ast.JoinedStr):
            pieces = [self.values_of(v) if not isinstance(v, ast.FormattedValue) else self.values_of(v.value)
                      for v in node.values]
            return _product(pieces, "")
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            joiner = "" if isinstance(node.op, ast.Add) else "/"
            return _product([self.values_of(node.left), self.values_of(node.right)], joiner)
        if isinstance(node, ast.Call) and callee(node.func) in _JOIN_FUNCS and not node.keywords:
            args = list(node.args)
            if callee(node.func) == "joinpath" and isinstance(node.func, ast.Attribute):
                args.insert(0, node.func.value)
            return _product([self.values_of(a) for a in args], "/") if args else None
        if isinstance(node, ast.Name):
            return self._name(node.id)
        return None

    def _name(self, name: str) -> list[str] | None:
        bound = self._nodes.get(name)
        if not bound or name in self._resolving:
            return None
        self._resolving.add(name)
        try:
            found: list[str] = []
            for value in bound:
                if isinstance(value, ast.Starred):
                    values = self.values_of_list(value.value)
                else:
                    values = None if value is None else self.values_of(value)
                if values is None:
                    return None
                found.extend(values)
            return found
        finally:
            self._resolving.discard(name)


def _product(pieces: list[list[str] | None], joiner: str) -> list[str] | None:
    if any(p is None for p in pieces):
        return None
    combos = [""]
    for index, piece in enumerate(pieces):
        assert piece is not None
        sep = joiner if index else ""
        combos = [f"{c}{sep}{v}" if joiner != "/" or not v.startswith("/") else v for c in combos for v in piece]
        if len(combos) > _MAX_VALUES:
            return None
    return combos
