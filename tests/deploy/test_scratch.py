"""The scratch copy a check's compiles share: whatever a compile changes is undone before the next."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.compiler.scratch import ScratchTree


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): (os.readlink(p) if p.is_symlink() else p.read_text())
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def test_reset_undoes_edits_deletions_new_files_and_folders(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pipelines/a").mkdir(parents=True)
    (repo / "pipelines/a/a.py").write_text("print('a')\n")
    (repo / "components/x").mkdir(parents=True)
    (repo / "components/x/component.yaml").write_text("image: old\n")
    (repo / "link.py").symlink_to("pipelines/a/a.py")
    (repo / ".git").mkdir()
    (repo / ".git/HEAD").write_text("ref\n")
    expected = {k: v for k, v in _tree(repo).items() if not k.startswith(".git/")}

    with ScratchTree(repo) as scratch:
        root = scratch.root
        assert _tree(root) == expected
        (root / "components/x/component.yaml").write_text("image: new-and-longer\n")
        (root / "pipelines/a/a.py").unlink()
        (root / "pipelines/a/a.yaml").write_text("compiled\n")
        (root / "out/deep").mkdir(parents=True)
        (root / "out/deep/x.json").write_text("{}")
        (root / "link.py").unlink()
        scratch.reset()
        assert _tree(root) == expected and not (root / "out").exists()
        (root / "components/x/component.yaml").write_text("image: again\n")
        scratch.reset()
        assert _tree(root) == expected
    assert not root.exists()
