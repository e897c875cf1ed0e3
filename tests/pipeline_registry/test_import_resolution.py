"""Which repository files one import statement resolves to."""

from __future__ import annotations

import pytest

from pipeline_registry.import_resolution import package_dirs, resolve_import
from pipeline_registry.import_statements import ImportStmt

PATHS = frozenset({
    "utils/__init__.py", "utils/io.py", "utils/deep/__init__.py", "utils/deep/x.py",
    "ns/mod.py",  # a namespace package: no __init__.py
    "top.py",
    "pipelines/p/p.py", "pipelines/p/helpers.py", "pipelines/p/train/main.py", "pipelines/p/train/model.py",
    "pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/leaf.py", "pkg/sub/other.py", "pkg/util.py",
})
DIRS = package_dirs(PATHS)


@pytest.mark.parametrize("stmt, importer, expected", [
    (ImportStmt(0, "utils.io"), "x.py", {"utils/__init__.py", "utils/io.py"}),
    (ImportStmt(0, "utils.deep.x"), "x.py", {"utils/__init__.py", "utils/deep/__init__.py", "utils/deep/x.py"}),
    (ImportStmt(0, "utils", ("io", "missing_name")), "x.py", {"utils/__init__.py", "utils/io.py"}),
    (ImportStmt(0, "utils.io", ("read",)), "x.py", {"utils/__init__.py", "utils/io.py"}),
    (ImportStmt(0, "ns.mod"), "x.py", {"ns/mod.py"}),
    (ImportStmt(0, "top"), "pipelines/p/p.py", {"top.py"}),
    (ImportStmt(0, "helpers"), "pipelines/p/p.py", {"pipelines/p/helpers.py"}),
    (ImportStmt(0, "model", ("fit",)), "pipelines/p/train/main.py", {"pipelines/p/train/model.py"}),
    (ImportStmt(1, "", ("other",)), "pkg/sub/leaf.py", {"pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/other.py"}),
    (ImportStmt(2, "util", ("f",)), "pkg/sub/leaf.py", {"pkg/__init__.py", "pkg/util.py"}),
    (ImportStmt(0, "numpy"), "pipelines/p/p.py", set()),
    (ImportStmt(0, "os.path"), "x.py", set()),
])
def test_resolution_to_repository_files(stmt: ImportStmt, importer: str, expected: set[str]) -> None:
    assert resolve_import(stmt, importer, PATHS, DIRS) == expected
