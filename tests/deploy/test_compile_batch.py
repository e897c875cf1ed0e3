"""Compiling several pipelines with one sandboxed interpreter per compile environment (`compile_pipelines`)."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.compiler import CompiledPipeline, PackageFormat, compile_pipeline
from deploy.compiler.batch import compile_pipelines
from deploy.errors import CompileError
from deploy.sandbox import Isolation, Sandbox, SandboxResult
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.models import ParameterType, PipelineInput
from pipeline_registry.repo_config import RepoConfig, load_repo_config
from tests.deploy.conftest import (
    KFP2_PIPELINE,
    KFP18,
    NEW_NOTIFY_IMAGE,
    NEW_TRAIN_IMAGE,
    pipeline_model,
)
from tests.deploy.test_compiler import SEED_PIPELINE, V1_PIPELINE, inline_images_repo, seed_repo, tree_digest
from tests.support.gitrepo import GitRepo

IMAGES = {"pipelines/demo/train": NEW_TRAIN_IMAGE, "components/notify": NEW_NOTIFY_IMAGE}
SCRIPT_TAIL = ("\n\nif __name__ == '__main__':\n    from kfp import compiler\n"
               "    compiler.Compiler().compile(pipeline_func=demo, package_path='{name}.yaml')\n")


@dataclass(frozen=True)
class CountingSandbox(Sandbox):
    """The strict sandbox, counting the sandboxed processes it starts (one per driver)."""

    started: list = field(default_factory=list, compare=False)

    def run(self, argv, **options) -> SandboxResult:
        self.started.append(list(argv))
        return super().run(argv, **options)


def add_pipeline(repo: GitRepo, name: str, source: str) -> str:
    repo.write(f"pipelines/{name}/{name}.py", source)
    repo.commit(f"add {name}")
    return f"pipelines/{name}/{name}.py"


def compile_batch(repo: GitRepo, tmp_path: Path, names: list[str], *, images: dict | None = None,
                  config: RepoConfig | None = None, sandbox: Sandbox | None = None, cache_dir: Path | None = None):
    pipelines = [pipeline_model(name, f"pipelines/{name}/{name}.py") for name in names]
    return compile_pipelines(repo.root, pipelines, config=config or RepoConfig(),
                             images=images if images is not None else {name: IMAGES for name in names},
                             out_dir=tmp_path / "out", cache_dir=cache_dir or tmp_path / "cache",
                             sandbox=sandbox)


def test_every_pipeline_compiles_in_one_driver_with_its_images(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    add_pipeline(kfp2_repo, "scripted", KFP2_PIPELINE + SCRIPT_TAIL.format(name="scripted"))
    add_pipeline(kfp2_repo, "other", KFP2_PIPELINE.replace('name="demo-pipeline"', 'name="other-pipeline"'))
    before = tree_digest(kfp2_repo.root)
    sandbox = CountingSandbox()

    outcomes = compile_batch(kfp2_repo, tmp_path, ["demo", "scripted", "other"], sandbox=sandbox)

    assert list(outcomes) == ["demo", "scripted", "other"]
    assert all(isinstance(o, CompiledPipeline) for o in outcomes.values()), outcomes
    assert [o.package_path for o in outcomes.values()] == [tmp_path / "out" / f"{n}.yaml"
                                                          for n in ("demo", "scripted", "other")]
    assert [o.name for o in outcomes.values()] == ["demo-pipeline", "demo-pipeline", "other-pipeline"]
    for compiled in outcomes.values():
        assert compiled.format is PackageFormat.IR_YAML
        assert {NEW_TRAIN_IMAGE, NEW_NOTIFY_IMAGE} <= set(compiled.images)
        assert compiled.input("epochs") == PipelineInput("epochs", ParameterType.INTEGER, True, 3)
    assert len(sandbox.started) == 1
    assert tree_digest(kfp2_repo.root) == before and kfp2_repo.git("status", "--porcelain") == ""


def test_a_failing_pipeline_fails_alone_with_the_message_of_a_single_compile(kfp2_repo: GitRepo,
                                                                              tmp_path: Path) -> None:
    bad = add_pipeline(kfp2_repo, "bad", "import os\n\nBUCKET = os.environ['BUCKET']\n" + KFP2_PIPELINE)

    outcomes = compile_batch(kfp2_repo, tmp_path, ["bad", "demo"])

    with pytest.raises(CompileError) as single:
        compile_pipeline(kfp2_repo.root, pipeline_model("bad", bad), config=RepoConfig(), images=IMAGES,
                         out_dir=tmp_path / "single", cache_dir=tmp_path / "cache")
    assert isinstance(outcomes["bad"], CompileError)
    assert outcomes["bad"].message == single.value.message == (
        f"{bad}: line 3: failed while being imported: KeyError: 'BUCKET'")
    assert outcomes["bad"].hint == single.value.hint
    assert isinstance(outcomes["demo"], CompiledPipeline)


def test_what_a_pipeline_does_to_the_interpreter_does_not_reach_the_next(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    add_pipeline(kfp2_repo, "patcher", "import sys\nfrom kfp import compiler\n\n"
                 "def broken(*args, **kwargs):\n    raise RuntimeError('patched by the previous pipeline')\n\n"
                 "compiler.Compiler.compile = broken\nsys.modules['utils'] = None\n"
                 "sys.path.insert(0, '/nowhere')\n" + KFP2_PIPELINE.replace("from utils.naming import PREFIX",
                                                                           "PREFIX = 'p-'"))

    outcomes = compile_batch(kfp2_repo, tmp_path, ["patcher", "demo"])

    assert isinstance(outcomes["patcher"], CompileError)
    assert "the kfp compiler failed: RuntimeError: patched by the previous pipeline" in outcomes["patcher"].message
    assert isinstance(outcomes["demo"], CompiledPipeline)


def test_pipelines_wanting_different_images_in_one_component_get_separate_drivers(kfp2_repo: GitRepo,
                                                                                    tmp_path: Path) -> None:
    add_pipeline(kfp2_repo, "other", KFP2_PIPELINE)
    other_images = {**IMAGES, "components/notify": "europe-docker.pkg.dev/proj/repo/notify:other"}
    sandbox = CountingSandbox()

    outcomes = compile_batch(kfp2_repo, tmp_path, ["demo", "other"], sandbox=sandbox,
                             images={"demo": IMAGES, "other": other_images})

    assert NEW_NOTIFY_IMAGE in outcomes["demo"].images
    assert "europe-docker.pkg.dev/proj/repo/notify:other" in outcomes["other"].images
    assert NEW_NOTIFY_IMAGE not in outcomes["other"].images
    assert len(sandbox.started) == 2


def test_problems_found_before_compiling_are_that_pipelines_alone(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    add_pipeline(kfp2_repo, "broken", "def broken(:\n")
    pipelines = [pipeline_model("missing", None), pipeline_model("broken", "pipelines/broken/broken.py"),
                 pipeline_model("demo", "pipelines/demo/demo.py")]

    outcomes = compile_pipelines(kfp2_repo.root, pipelines, config=RepoConfig(), images={"demo": IMAGES},
                                 out_dir=tmp_path / "out", cache_dir=tmp_path / "cache")

    assert outcomes["missing"].message == "pipelines/missing: no pipeline file to compile for pipeline 'missing'"
    assert outcomes["broken"].message == "pipelines/broken/broken.py: line 1: invalid syntax: invalid syntax"
    assert isinstance(outcomes["demo"], CompiledPipeline)


@pytest.mark.slow
def test_kfp_1_8_pipelines_of_both_modes_compile_in_one_driver(git_repo: GitRepo, tmp_path: Path,
                                                               kfp18_env: CompileEnvironment,
                                                               compile_cache: Path) -> None:
    repo = seed_repo(git_repo, SEED_PIPELINE.format(name="demo"),
                     kfp_bot_yaml=f"compile:\n  requirements: [\"{KFP18}\"]\n")
    add_pipeline(repo, "argo", V1_PIPELINE.format(name="demo", package="argo.yaml"))
    sandbox = CountingSandbox()

    outcomes = compile_batch(repo, tmp_path, ["demo", "argo"], sandbox=sandbox, cache_dir=compile_cache,
                             config=load_repo_config((repo.root / ".kfp-bot.yaml").read_text()))

    assert outcomes["demo"].format is PackageFormat.JOB_JSON, outcomes["demo"]
    assert outcomes["argo"].format is PackageFormat.ARGO_YAML, outcomes["argo"]
    assert {o.sdk_version for o in outcomes.values()} == {"1.8.22"}
    for compiled in outcomes.values():
        assert compiled.images == tuple(sorted((NEW_NOTIFY_IMAGE, NEW_TRAIN_IMAGE)))
    assert len(sandbox.started) == 1


def test_images_named_inline_reach_every_pipeline_of_the_batch(git_repo: GitRepo, compile_cache: Path,
                                                               tmp_path: Path) -> None:
    from deploy.pipelines import RepositoryCompiler
    from pipeline_registry.repository import Repository

    repository = Repository.open(inline_images_repo(git_repo).root)
    names = sorted(repository.pipelines())

    outcomes = RepositoryCompiler(compile_cache).compile_many(git_repo.root, names, tmp_path / "out")

    assert names == ["data_quality", "training"]
    for name in names:
        assert sorted(outcomes[name].images) == sorted(repository.component_images(name).values())
        assert all(":content-" in ref for ref in outcomes[name].images)


def test_without_isolation_where_it_is_waived_the_batch_still_compiles_each_alone(
        kfp2_repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kfp-bot check` on one's own repository where bubblewrap is missing: no PID namespace, so
    the driver ends only each pipeline's own process group, and a pipeline that exits still fails alone."""
    monkeypatch.setattr("deploy.sandbox.isolation", lambda: Isolation(False, "no bubblewrap here"))
    add_pipeline(kfp2_repo, "quits", "import os\nos._exit(4)\n")

    outcomes = compile_batch(kfp2_repo, tmp_path, ["quits", "demo"], sandbox=Sandbox(allow_unsandboxed=True))

    assert outcomes["quits"].message == ("pipelines/quits/quits.py: the compiler process ended without a result "
                                         "(exit status 4)")
    assert isinstance(outcomes["demo"], CompiledPipeline)
