"""A pull request's runs compiled in one batch: the first run's compile compiles its siblings too
(`RepositoryCompiler.compile(..., along=...)`), their own compiles take the result."""

from pathlib import Path

import pytest

from deploy.errors import CompileError
from deploy.pipelines import RepositoryCompiler
from tests.deploy.conftest import KFP2_PIPELINE
from tests.deploy.test_compile_batch import CountingSandbox, add_pipeline
from tests.support.gitrepo import GitRepo


def test_siblings_compiled_along_are_taken_by_their_own_compile(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    add_pipeline(kfp2_repo, "other", KFP2_PIPELINE.replace('name="demo-pipeline"', 'name="other-pipeline"'))
    add_pipeline(kfp2_repo, "broken", "import os\nos.environ['BUCKET']\n" + KFP2_PIPELINE)
    sandbox = CountingSandbox()
    compiler = RepositoryCompiler(tmp_path / "cache", sandbox=sandbox)

    demo = compiler.compile(kfp2_repo.root, "demo", None, tmp_path / "runs" / "1",
                            along=["other", "broken", "demo", "renamed-away"])
    other = compiler.compile(kfp2_repo.root, "other", None, tmp_path / "runs" / "2", along=["broken"])
    with pytest.raises(CompileError) as broken:
        compiler.compile(kfp2_repo.root, "broken", None, tmp_path / "runs" / "3")

    assert len(sandbox.started) == 1
    assert demo.name == "demo-pipeline" and demo.package_path == tmp_path / "runs" / "1" / "demo.yaml"
    assert other.name == "other-pipeline" and other.package_path == tmp_path / "runs" / "2" / "other.yaml"
    assert other.package_path.read_text() != demo.package_path.read_text()
    assert broken.value.message == "pipelines/broken/broken.py: line 2: failed while being imported: KeyError: 'BUCKET'"
    # Taken once: a later compile of the same pipeline compiles again.
    compiler.compile(kfp2_repo.root, "other", None, tmp_path / "runs" / "4")
    assert len(sandbox.started) == 2


def test_a_sibling_compiled_along_with_other_images_is_compiled_again(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    add_pipeline(kfp2_repo, "other", KFP2_PIPELINE)
    sandbox = CountingSandbox()
    compiler = RepositoryCompiler(tmp_path / "cache", sandbox=sandbox)

    compiler.compile(kfp2_repo.root, "demo", None, tmp_path / "1", along=["other"])
    retagged = {"pipelines/demo/train": "reg/train:v2", "components/notify": "reg/notify:v2"}
    other = compiler.compile(kfp2_repo.root, "other", retagged, tmp_path / "2")

    assert len(sandbox.started) == 2
    assert "reg/train:v2" in other.images


def test_a_batch_folder_is_kept_while_its_batch_runs_even_with_no_sibling_claimed() -> None:
    """Two runs' compiles at once, each alone in its batch: the second's claim removed the first's
    folder while the first compiled into it (the package was gone when it was copied out)."""
    from deploy.compiler.ahead import CompiledAhead

    ahead = CompiledAhead()
    folder = ahead.batch_folder()
    ahead.claim([])  # another compile starting: folders no entry uses are removed
    assert folder.is_dir()

    ahead.release(folder)
    ahead.claim([])
    assert not folder.exists()
