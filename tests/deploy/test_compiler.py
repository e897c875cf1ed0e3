"""Compiling real pipeline files with real kfp SDKs, in the sandbox, with images substituted.

No `from __future__ import annotations` here: kfp reads the annotations of the component below.
"""

import hashlib
from pathlib import Path

import kfp
import pytest
from kfp import compiler, dsl

from deploy.compiler import CompiledPipeline, PackageFormat, compile_pipeline
from deploy.errors import CompileError
from pipeline_registry.compile_env import CompileEnvironment
from pipeline_registry.models import ParameterType, PipelineInput
from pipeline_registry.repo_config import CompileConfig, RepoConfig, load_repo_config
from tests.deploy.conftest import (
    KFP2_PIPELINE,
    KFP18,
    NEW_NOTIFY_IMAGE,
    NEW_TRAIN_IMAGE,
    NOTIFY_SPEC,
    OLD_NOTIFY_IMAGE,
    OLD_TRAIN_IMAGE,
    TRAIN_SPEC,
    pipeline_model,
)
from tests.support.gitrepo import GitRepo

IMAGES = {"pipelines/demo/train": NEW_TRAIN_IMAGE, "components/notify": NEW_NOTIFY_IMAGE}
DEMO_FILE = "pipelines/demo/demo.py"


def compile_demo(repo: GitRepo, tmp_path: Path, *, config: RepoConfig | None = None,
                 images: dict[str, str] | None = None, file: str = DEMO_FILE,
                 cache_dir: Path | None = None) -> CompiledPipeline:
    return compile_pipeline(repo.root, pipeline_model("demo", file), config=config or RepoConfig(),
                            images=IMAGES if images is None else images, out_dir=tmp_path / "out",
                            cache_dir=cache_dir or tmp_path / "cache")


def tree_digest(root: Path) -> dict[str, str]:
    """Every file of a working tree (except .git) with the hash of its contents."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts}


def with_pipeline(repo: GitRepo, source: str) -> GitRepo:
    repo.write(DEMO_FILE, source)
    repo.commit("edit pipeline file")
    return repo


def compile_error(repo: GitRepo, tmp_path: Path, **kwargs) -> CompileError:
    with pytest.raises(CompileError) as caught:
        compile_demo(repo, tmp_path, **kwargs)
    return caught.value


# --- kfp 2 (the bot's own SDK) -------------------------------------------------------------


def test_kfp2_pipeline_compiles_with_built_images_and_typed_inputs(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    before = tree_digest(kfp2_repo.root)

    compiled = compile_demo(kfp2_repo, tmp_path)

    assert compiled.format is PackageFormat.IR_YAML
    assert compiled.pipeline == "demo" and compiled.name == "demo-pipeline"
    assert compiled.package_path == tmp_path / "out" / "demo.yaml"
    assert compiled.images == tuple(sorted((NEW_NOTIFY_IMAGE, NEW_TRAIN_IMAGE, "python:3.11-slim")))
    assert OLD_TRAIN_IMAGE not in compiled.read_text() and NEW_TRAIN_IMAGE in compiled.read_text()
    assert compiled.sdk_version.startswith("2.")
    assert {i.name: i for i in compiled.inputs} == {
        "run_label": PipelineInput("run_label", ParameterType.STRING, False, None),
        "epochs": PipelineInput("epochs", ParameterType.INTEGER, True, 3),
        "learning_rate": PipelineInput("learning_rate", ParameterType.DOUBLE, True, 0.01),
        "dry_run": PipelineInput("dry_run", ParameterType.BOOLEAN, True, False),
        "tags": PipelineInput("tags", ParameterType.LIST, True, ["nightly"]),
        "options": PipelineInput("options", ParameterType.STRUCT, True, {"depth": 2}),
    }
    assert isinstance(compiled.input("epochs").default, int)
    # The user's working tree is untouched: same files, same bytes, nothing new, git clean.
    assert tree_digest(kfp2_repo.root) == before
    assert kfp2_repo.git("status", "--porcelain") == ""


def test_without_images_the_specs_own_images_are_kept(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    compiled = compile_demo(kfp2_repo, tmp_path, images={})

    assert compiled.images == tuple(sorted((OLD_NOTIFY_IMAGE, OLD_TRAIN_IMAGE, "python:3.11-slim")))


def test_script_mode_runs_the_main_block_and_finds_the_written_package(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    source = KFP2_PIPELINE + (
        "\n\nif __name__ == '__main__':\n"
        "    from kfp import compiler\n"
        "    print('compiling demo')\n"
        "    compiler.Compiler().compile(pipeline_func=demo, package_path='demo.yaml')\n")
    with_pipeline(kfp2_repo, source)

    compiled = compile_demo(kfp2_repo, tmp_path)

    assert compiled.format is PackageFormat.IR_YAML
    assert NEW_TRAIN_IMAGE in compiled.images
    assert not (kfp2_repo.root / "demo.yaml").exists()
    assert kfp2_repo.git("status", "--porcelain") == ""


def test_pipeline_modules_resolve_from_the_pipeline_folder_and_the_root(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    kfp2_repo.write("pipelines/demo/defaults.py", "EPOCHS = 11\n")
    source = KFP2_PIPELINE.replace("epochs: int = 3", "epochs: int = EPOCHS")
    with_pipeline(kfp2_repo, source.replace("from utils.naming import PREFIX",
                                            "from utils.naming import PREFIX\nfrom defaults import EPOCHS"))

    compiled = compile_demo(kfp2_repo, tmp_path)

    assert compiled.input("epochs") == PipelineInput("epochs", ParameterType.INTEGER, True, 11)


def test_repository_code_sees_none_of_the_bots_environment(kfp2_repo: GitRepo, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_BOT_GITHUB_PRIVATE_KEY", "secret-value")
    with_pipeline(kfp2_repo, "import os\nassert 'KFP_BOT_GITHUB_PRIVATE_KEY' not in os.environ, 'leaked'\n"
                  + KFP2_PIPELINE)

    assert compile_demo(kfp2_repo, tmp_path).name == "demo-pipeline"


@dsl.container_component
def shout(text: str):
    return dsl.ContainerSpec(image="gcr.io/old-project/shout:1", command=["echo"], args=[text])


def test_image_of_a_compiled_component_spec_is_substituted(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    (kfp2_repo.root / "components/shout").mkdir()
    compiler.Compiler().compile(shout, str(kfp2_repo.root / "components/shout/component.yaml"))
    with_pipeline(kfp2_repo, KFP2_PIPELINE.replace(
        'notify_op = load_component_from_file("components/notify/component.yaml")',
        'notify_op = load_component_from_file("components/notify/component.yaml")\n'
        'shout_op = load_component_from_file("components/shout/component.yaml")') + "    shout_op(text='done')\n")

    compiled = compile_demo(kfp2_repo, tmp_path, images={**IMAGES, "components/shout": "reg/shout:2"})

    assert "reg/shout:2" in compiled.images and "gcr.io/old-project/shout:1" not in compiled.images


def test_linked_component_spec_outside_the_repository_is_not_modified(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    outside = tmp_path / "specs" / "train.yaml"
    outside.parent.mkdir()
    outside.write_text(TRAIN_SPEC)
    spec = kfp2_repo.root / "pipelines/demo/train/component.yaml"
    spec.unlink()
    spec.symlink_to(outside)
    kfp2_repo.commit("spec is a link")

    compiled = compile_demo(kfp2_repo, tmp_path)

    assert NEW_TRAIN_IMAGE in compiled.images
    assert outside.read_text() == TRAIN_SPEC
    assert spec.is_symlink()


# --- what goes wrong, and what the user is told ----------------------------------------------


def test_exception_at_import_names_file_line_and_error(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "import json\n\nconfig = json.loads('{broken')\n" + KFP2_PIPELINE)

    error = compile_error(kfp2_repo, tmp_path)

    assert str(error).startswith(f"{DEMO_FILE}: line 3: failed while being imported: "
                                 "json.decoder.JSONDecodeError: Expecting property name")
    assert error.file == DEMO_FILE
    assert error.output.startswith("Traceback (most recent call last):\n  File \"pipelines/demo/demo.py\", line 3")
    assert "kfp-bot-compile" not in error.output


def test_exception_in_the_pipeline_body_names_its_line(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, KFP2_PIPELINE + "    raise ValueError('no such dataset: ' + 'x')\n")

    error = compile_error(kfp2_repo, tmp_path)

    # kfp 2 builds the pipeline graph when @dsl.pipeline is applied, i.e. on import.
    line = len(KFP2_PIPELINE.splitlines()) + 1
    assert error.message == f"{DEMO_FILE}: line {line}: failed while being imported: ValueError: no such dataset: x"


def test_endless_loop_is_stopped_at_the_time_limit(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "while True:\n    pass\n")
    config = RepoConfig(compile=CompileConfig(timeout_seconds=5))

    error = compile_error(kfp2_repo, tmp_path, config=config)

    assert str(error).startswith(f"{DEMO_FILE}: did not finish within 5 s")
    assert "compile.timeout_seconds" in error.hint


def test_memory_hog_hits_the_memory_limit(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "cache = bytearray(3 * 1024 ** 3)\n" + KFP2_PIPELINE)
    config = RepoConfig(compile=CompileConfig(memory_mb=1024))

    error = compile_error(kfp2_repo, tmp_path, config=config)

    assert error.message == f"{DEMO_FILE}: ran out of memory (limit 1024 MB)"
    assert "compile.memory_mb" in error.hint


def test_file_without_pipeline_function(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "from kfp import dsl\n\n\n@dsl.component\ndef add(a: int) -> int:\n    return a\n")

    error = compile_error(kfp2_repo, tmp_path)

    assert error.message == f"{DEMO_FILE}: defines no pipeline function (compiled with kfp {kfp.__version__})"
    assert "@dsl.pipeline" in error.hint


def test_several_pipeline_functions_are_listed(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, KFP2_PIPELINE + "\n\n@dsl.pipeline(name='other')\ndef other_pipeline():\n"
                  "    notify_op(message='hi')\n")

    error = compile_error(kfp2_repo, tmp_path)

    assert error.message == f"{DEMO_FILE}: defines 2 pipeline functions: demo, other_pipeline"


def test_syntax_error_names_the_line(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "from kfp import dsl\n\ndef broken(:\n    pass\n")

    error = compile_error(kfp2_repo, tmp_path)

    assert str(error).startswith(f"{DEMO_FILE}: line 3: invalid syntax")
    assert error.hint == "fix the Python syntax error"


def test_syntax_error_in_an_imported_module_names_that_module(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    kfp2_repo.write("utils/naming.py", "PREFIX = 'demo-'\nif True\n    pass\n")
    kfp2_repo.commit("broken helper")

    error = compile_error(kfp2_repo, tmp_path)

    assert error.file == DEMO_FILE
    assert error.message == f"{DEMO_FILE}: utils/naming.py, line 2: invalid syntax: expected ':'"


def test_missing_module_names_it_and_suggests_declaring_it(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "import pandas_not_installed_here\n" + KFP2_PIPELINE)

    error = compile_error(kfp2_repo, tmp_path)

    assert error.message == (f"{DEMO_FILE}: line 1: import failed: ModuleNotFoundError: "
                             "No module named 'pandas_not_installed_here'")
    assert "compile.requirements" in error.hint and "pandas_not_installed_here" in error.hint


def test_kfp1_only_module_under_kfp2_suggests_declaring_the_sdk(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "from kfp import gcp\n" + KFP2_PIPELINE)

    error = compile_error(kfp2_repo, tmp_path)

    assert "import failed" in error.message and "gcp" in error.message
    assert "kfp 1.x API" in error.hint and KFP18 in error.hint


def test_kfp1_seed_file_under_kfp2_suggests_declaring_the_sdk(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, SEED_PIPELINE.format(name="demo"))

    error = compile_error(kfp2_repo, tmp_path)

    assert "ComponentStore" in error.message
    assert "kfp 1.x API" in error.hint


def test_script_that_writes_no_package(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, KFP2_PIPELINE + "\nif __name__ == '__main__':\n"
                  "    import os\n"
                  "    from kfp import compiler\n"
                  "    compiler.Compiler().compile(demo, os.path.join(os.environ['HOME'], 'demo.yaml'))\n")

    error = compile_error(kfp2_repo, tmp_path)

    assert error.message == f"{DEMO_FILE}: ran as a script but wrote no pipeline package"
    assert "package_path" in error.hint


def test_script_exit_status_is_reported(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with_pipeline(kfp2_repo, "import sys\nif __name__ == '__main__':\n    print('no compiler here')\n"
                  "    sys.exit(3)\n    Compiler().compile()\n")

    error = compile_error(kfp2_repo, tmp_path)

    assert error.message == f"{DEMO_FILE}: exited with status 3"


def test_pipeline_without_a_file(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        compile_pipeline(kfp2_repo.root, pipeline_model("demo", None), config=RepoConfig(), images={},
                         out_dir=tmp_path / "out", cache_dir=tmp_path / "cache")

    assert str(caught.value).startswith("pipelines/demo: no pipeline file to compile for pipeline 'demo'")
    assert "pipelines.demo.pipeline_file" in caught.value.hint


def test_pipeline_file_override_from_repo_config(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    kfp2_repo.rename(DEMO_FILE, "pipelines/demo/flow.py")
    kfp2_repo.commit("rename")
    config = load_repo_config("pipelines:\n  demo:\n    pipeline_file: flow.py\n")

    compiled = compile_demo(kfp2_repo, tmp_path, config=config, file=None)  # type: ignore[arg-type]

    assert compiled.name == "demo-pipeline"


def test_built_image_for_a_component_without_spec(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    kfp2_repo.write("pipelines/demo/prep/Dockerfile", "FROM alpine\n")
    kfp2_repo.commit("component without spec")

    error = compile_error(kfp2_repo, tmp_path, images={**IMAGES, "pipelines/demo/prep": "reg/demo-prep:1"})

    assert str(error).startswith("pipelines/demo/prep/component.yaml: does not exist")


def test_an_unused_component_folder_is_fine_when_the_used_images_are_in(kfp2_repo: GitRepo,
                                                                         tmp_path: Path) -> None:
    kfp2_repo.write("components/unused/component.yaml", NOTIFY_SPEC.replace(OLD_NOTIFY_IMAGE, "old/unused:1"))
    kfp2_repo.commit("unused component")

    compiled = compile_demo(kfp2_repo, tmp_path, images={**IMAGES, "components/unused": "reg/unused:2"})

    assert "reg/unused:2" not in compiled.images
    assert set(IMAGES.values()) <= set(compiled.images)


def test_no_built_image_reaching_the_package_is_an_error(kfp2_repo: GitRepo, tmp_path: Path) -> None:
    kfp2_repo.write("components/unused/component.yaml", NOTIFY_SPEC.replace(OLD_NOTIFY_IMAGE, "old/unused:1"))
    kfp2_repo.commit("unused component")
    error = compile_error(kfp2_repo, tmp_path, images={"components/unused": "reg/unused:2"})

    assert error.message == (f"{DEMO_FILE}: the compiled pipeline does not use the built image(s) "
                             "reg/unused:2 (components/unused)")


# --- kfp 1.8, the seed's SDK, in its own cached virtual environment --------------------------

SEED_PIPELINE = """\
import kfp
from kfp.v2 import dsl
from kfp.v2 import compiler

component_store = kfp.components.ComponentStore(
    local_search_paths=["pipelines/{name}", "components"])
training_op = component_store.load_component("train")
notify_op = kfp.components.load_component_from_file("components/notify/component.yaml")


@dsl.pipeline(name="{name}", pipeline_root="gs://bucket/root")
def pipeline(epochs: int = 5, learning_rate: float = 0.001, owner: str = "ml-team"):
    trained = training_op(epochs=epochs, learning_rate=learning_rate)
    notify_op(message=trained.outputs["model"])


if __name__ == "__main__":
    compiler.Compiler().compile(pipeline_func=pipeline, package_path="{name}.json")
"""

V1_PIPELINE = """\
import kfp
from kfp import dsl

component_store = kfp.components.ComponentStore(local_search_paths=["pipelines/{name}", "components"])
training_op = component_store.load_component("train")
notify_op = component_store.load_component("notify")


@dsl.pipeline(name="{name}-v1", description="v1 pipeline")
def train_pipeline(epochs: int = 2, learning_rate: float = 0.5, debug: bool = True, note: str = None):
    trained = training_op(epochs=epochs, learning_rate=learning_rate)
    notify_op(message=trained.outputs["model"])


if __name__ == "__main__":
    kfp.compiler.Compiler().compile(train_pipeline, "{package}")
"""


def seed_repo(repo: GitRepo, pipeline_source: str, *, pyproject: str | None = None,
              kfp_bot_yaml: str | None = None) -> GitRepo:
    """A kfp 1.8 repository in the seed's layout (compiled by running the pipeline file)."""
    repo.write("pipelines/demo/demo.py", pipeline_source)
    repo.write("pipelines/demo/train/component.yaml", TRAIN_SPEC)
    repo.write("pipelines/demo/train/Dockerfile", "FROM python:3.7\nCOPY pipelines/demo/train/* ./\n")
    repo.write("components/notify/component.yaml", NOTIFY_SPEC)
    if pyproject:
        repo.write("pyproject.toml", pyproject)
    if kfp_bot_yaml:
        repo.write(".kfp-bot.yaml", kfp_bot_yaml)
    repo.commit("seed repository")
    return repo


def compile_with_config(repo: GitRepo, tmp_path: Path, cache: Path) -> CompiledPipeline:
    text = (repo.root / ".kfp-bot.yaml").read_text() if (repo.root / ".kfp-bot.yaml").exists() else None
    return compile_demo(repo, tmp_path, config=load_repo_config(text), cache_dir=cache)


@pytest.mark.slow
def test_seed_repository_compiles_with_the_pinned_kfp_1_8(git_repo: GitRepo, tmp_path: Path,
                                                         kfp18_env: CompileEnvironment, compile_cache: Path) -> None:
    # An exact Poetry pin: "^1.8.22" resolves to kfp 1.8.24 today, which has no kfp.v2 package.
    pyproject = ('[tool.poetry]\nname = "seed"\nversion = "0.1.0"\n\n'
                 '[tool.poetry.dependencies]\npython = "^3.11"\nkfp = "1.8.22"\ntensorflow = "^2.15"\n')
    repo = seed_repo(git_repo, SEED_PIPELINE.format(name="demo"), pyproject=pyproject)
    before = tree_digest(repo.root)

    compiled = compile_with_config(repo, tmp_path, compile_cache)

    assert compiled.format is PackageFormat.JOB_JSON
    assert compiled.package_path == tmp_path / "out" / "demo.json"
    assert compiled.name == "demo"
    assert compiled.sdk_version == "1.8.22"
    assert compiled.images == tuple(sorted((NEW_NOTIFY_IMAGE, NEW_TRAIN_IMAGE)))
    assert compiled.inputs == (
        PipelineInput("epochs", ParameterType.INTEGER, True, 5),
        PipelineInput("learning_rate", ParameterType.DOUBLE, True, 0.001),
        PipelineInput("owner", ParameterType.STRING, True, "ml-team"),
    )
    assert tree_digest(repo.root) == before
    assert not (repo.root / "demo.json").exists()


@pytest.mark.slow
def test_v1_compiler_script_writes_argo_yaml(git_repo: GitRepo, tmp_path: Path,
                                            kfp18_env: CompileEnvironment, compile_cache: Path) -> None:
    repo = seed_repo(git_repo, V1_PIPELINE.format(name="demo", package="demo.yaml"),
                     kfp_bot_yaml=f"compile:\n  requirements: [\"{KFP18}\"]\n")

    compiled = compile_with_config(repo, tmp_path, compile_cache)

    assert compiled.format is PackageFormat.ARGO_YAML
    assert compiled.name == "demo-v1"
    assert compiled.sdk_version == "1.8.22"
    assert compiled.images == tuple(sorted((NEW_NOTIFY_IMAGE, NEW_TRAIN_IMAGE)))
    assert compiled.inputs == (
        PipelineInput("epochs", ParameterType.INTEGER, True, 2),
        PipelineInput("learning_rate", ParameterType.DOUBLE, True, 0.5),
        PipelineInput("debug", ParameterType.BOOLEAN, True, True),
        PipelineInput("note", ParameterType.STRING, True, None),
    )


@pytest.mark.slow
def test_dsl_compile_style_archive_is_extracted(git_repo: GitRepo, tmp_path: Path,
                                                kfp18_env: CompileEnvironment, compile_cache: Path) -> None:
    repo = seed_repo(git_repo, V1_PIPELINE.format(name="demo", package="demo.tar.gz"),
                     kfp_bot_yaml=f"compile:\n  requirements: [\"{KFP18}\"]\n")

    compiled = compile_with_config(repo, tmp_path, compile_cache)

    assert compiled.format is PackageFormat.ARGO_YAML
    assert compiled.package_path == tmp_path / "out" / "demo.yaml"
    assert (tmp_path / "out" / "demo.tar.gz").is_file()
    assert NEW_TRAIN_IMAGE in compiled.read_text()


@pytest.mark.slow
@pytest.mark.parametrize(("source", "fmt"), [
    (SEED_PIPELINE.format(name="demo"), PackageFormat.JOB_JSON),
    (V1_PIPELINE.format(name="demo", package="unused.yaml"), PackageFormat.ARGO_YAML),
])
def test_import_mode_under_kfp_1_8_picks_the_compiler_the_file_uses(
        git_repo: GitRepo, tmp_path: Path, kfp18_env: CompileEnvironment, compile_cache: Path,
        source: str, fmt: PackageFormat) -> None:
    repo = seed_repo(git_repo, source,
                     kfp_bot_yaml=f"compile:\n  mode: import\n  requirements: [\"{KFP18}\"]\n")

    compiled = compile_with_config(repo, tmp_path, compile_cache)

    assert compiled.format is fmt
    assert compiled.images == tuple(sorted((NEW_NOTIFY_IMAGE, NEW_TRAIN_IMAGE)))
    assert compiled.sdk_version == "1.8.22"


@pytest.mark.slow
def test_kfp_1_8_file_without_pipeline(git_repo: GitRepo, tmp_path: Path, kfp18_env: CompileEnvironment,
                                       compile_cache: Path) -> None:
    repo = seed_repo(git_repo, "import kfp\n\ndef helper():\n    return 1\n",
                     kfp_bot_yaml=f"compile:\n  requirements: [\"{KFP18}\"]\n")

    with pytest.raises(CompileError) as caught:
        compile_with_config(repo, tmp_path, compile_cache)

    assert caught.value.message == f"{DEMO_FILE}: defines no pipeline function (compiled with kfp 1.8.22)"
    assert "`<name>_pipeline`" in caught.value.hint


@pytest.mark.slow
def test_kfp_1_8_pipeline_body_failing_in_the_compiler(git_repo: GitRepo, tmp_path: Path,
                                                      kfp18_env: CompileEnvironment, compile_cache: Path) -> None:
    source = SEED_PIPELINE.format(name="demo").replace(
        "    notify_op(message=trained.outputs[\"model\"])",
        "    notify_op(message=trained.outputs[\"model\"])\n    raise RuntimeError(\"bucket not configured\")")
    repo = seed_repo(git_repo, source,
                     kfp_bot_yaml=f"compile:\n  mode: import\n  requirements: [\"{KFP18}\"]\n")

    with pytest.raises(CompileError) as caught:
        compile_with_config(repo, tmp_path, compile_cache)

    # kfp 1.8 calls the pipeline function only when compiling.
    assert caught.value.message == (f"{DEMO_FILE}: line 15: the kfp compiler failed: "
                                    "RuntimeError: bucket not configured")


def inline_images_repo(repo: GitRepo) -> GitRepo:
    """Shape 4 of the layouts (flat pipeline files naming their images inline), on the bot's kfp 2."""
    from tests.pipeline_registry.layouts.components import FILES

    for path, text in FILES.items():
        repo.write(path, text)
    repo.append(".kfp-bot.yaml", "compile: {use_project_files: false}\n")  # the bot's own kfp 2
    repo.commit("shape 4")
    return repo


def test_images_named_inline_are_replaced_by_the_built_ones(git_repo: GitRepo, compile_cache: Path,
                                                            tmp_path: Path) -> None:
    from deploy.pipelines import RepositoryCompiler
    from pipeline_registry.repository import Repository
    from tests.pipeline_registry.layouts.components import REGISTRY

    images = Repository.open(inline_images_repo(git_repo).root).component_images("training")
    assert sorted(images) == [f"image:{REGISTRY}/data-quality", f"image:{REGISTRY}/trainer"]

    compiled = RepositoryCompiler(compile_cache).compile(git_repo.root, "training", None, tmp_path / "out")

    assert sorted(compiled.images) == sorted(images.values())
    assert all(":content-" in ref for ref in compiled.images)
    assert "data-quality:latest" in (git_repo.root / "pipelines/images.py").read_text()  # the checkout is untouched


def test_compile_env_reaches_the_pipeline_file_at_import(git_repo: GitRepo, compile_cache: Path,
                                                          tmp_path: Path) -> None:
    from deploy.pipelines import RepositoryCompiler

    git_repo.write(".kfp-bot.yaml", "pipeline_files: ['flows/*.py']\ncompile:\n  env: {PROJECT_ID: acme-ml}\n")
    git_repo.write("flows/env.py", "import os\nfrom kfp import dsl\n\n\n@dsl.component\ndef say(t: str):\n"
                                   "    print(t)\n\n\n@dsl.pipeline(name=os.environ['PROJECT_ID'])\n"
                                   "def env_pipeline():\n    say(t='x')\n")
    git_repo.commit("reads PROJECT_ID at import")

    compiled = RepositoryCompiler(compile_cache).compile(git_repo.root, "env", None, tmp_path / "out")

    assert compiled.name == "acme-ml"


@pytest.mark.parametrize("imports, hint", [
    ("from bs4 import BeautifulSoup", "add 'beautifulsoup4' to compile.requirements"),
    ("from google.cloud import bigquery_storage", "add 'google-cloud-bigquery-storage'"),
    ("from kfp import kubernetes", "comes from kfp-kubernetes, a kfp 2 extension installed on its own"),
    ("from tabular_ops.ops import train", "'tabular_ops' is a package of this repository "
                                          "(components/tabular_ops/src/tabular_ops): add the folder"),
])
def test_a_missing_import_gets_the_right_hint(git_repo: GitRepo, compile_cache: Path, tmp_path: Path,
                                              imports: str, hint: str) -> None:
    from deploy.pipelines import RepositoryCompiler

    git_repo.write(".kfp-bot.yaml", "pipeline_files: ['flows/*.py']\n")
    git_repo.write("components/tabular_ops/src/tabular_ops/__init__.py", "")
    git_repo.write("flows/p.py", f"{imports}\nfrom kfp import dsl\n\n\n@dsl.pipeline\ndef p():\n    pass\n")
    git_repo.commit("an import the compile environment lacks")

    with pytest.raises(CompileError) as caught:
        RepositoryCompiler(compile_cache).compile(git_repo.root, "p", None, tmp_path / "out")

    assert "import failed" in str(caught.value) and hint in str(caught.value)
    assert "kfp 1.x" not in str(caught.value)


def test_import_names_map_to_their_pypi_distributions() -> None:
    from deploy.compiler.failures import pypi_name

    assert [pypi_name(m) for m in ("dotenv", "yaml.constructor", "google.cloud.storage", "numpy")] == [
        "python-dotenv", "PyYAML", "google-cloud-storage", "numpy"]
