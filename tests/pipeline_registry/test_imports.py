"""Who imports a changed module, and what a file imports transitively, on a real repository."""

from __future__ import annotations

from pipeline_registry.imports import ImportGraph
from pipeline_registry.snapshot import open_snapshot
from tests.pipeline_registry.conftest import write_files
from tests.support.gitrepo import GitRepo


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
