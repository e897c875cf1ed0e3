"""Which repository files import statements resolve to, and who imports a changed module."""

from __future__ import annotations

import pytest

from pipeline_registry.import_statements import ImportStmt
from pipeline_registry.imports import ImportGraph, package_dirs, resolve_import
from pipeline_registry.snapshot import open_snapshot
from tests.pipeline_registry.conftest import write_files
from tests.support.gitrepo import GitRepo

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


def test_closure_and_importers_on_a_real_repository(git_repo: GitRepo) -> None:
    write_files(git_repo, {
        "utils/__init__.py": "",
        "utils/a.py": "from utils import b\n",
        "utils/b.py": "from .c import thing\n",
        "utils/c.py": "thing = 1\n",
        "utils/cycle.py": "import utils.a\n",
        "pipelines/p/p.py": "import utils.a\nimport kfp\n",
        "pipelines/q/q.py": "import utils.c\n",
        "other.py": "import json\n",
    })
    git_repo.commit()
    with open_snapshot(git_repo.root, "HEAD") as snapshot:
        graph = ImportGraph(snapshot)
        assert graph.closure(["pipelines/p/p.py"]) == {
            "utils/__init__.py": "pipelines/p/p.py", "utils/a.py": "pipelines/p/p.py",
            "utils/b.py": "utils/a.py", "utils/c.py": "utils/b.py"}
        reach = graph.importers(["utils/c.py"])
        assert set(reach) == {"utils/c.py", "utils/b.py", "utils/a.py", "utils/cycle.py",
                              "pipelines/p/p.py", "pipelines/q/q.py"}
        assert reach["pipelines/p/p.py"] == {"utils/c.py": "utils/a.py"}
        assert reach["pipelines/q/q.py"] == {"utils/c.py": "utils/c.py"}
        assert set(graph.importers(["utils/__init__.py"])) >= {"pipelines/p/p.py", "pipelines/q/q.py",
                                                               "utils/b.py"}
        assert "other.py" not in graph.importers(["utils/__init__.py"])
