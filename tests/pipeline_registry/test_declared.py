"""Pipelines declared in `.kfp-bot.yaml` (`pipeline_files`): globs, naming, functions, errors."""

from __future__ import annotations

import pytest

from pipeline_registry.declared import pipeline_functions
from pipeline_registry.errors import ConfigError
from pipeline_registry.planner import plan_change
from pipeline_registry.repository import Repository
from tests.pipeline_registry.conftest import write_files
from tests.support.gitrepo import GitRepo

ONE = 'from kfp import dsl\n\n\n@dsl.pipeline(name="one")\ndef {fn}(x: int = 1):\n    pass\n'
TWO = ('import kfp\nfrom kfp.dsl import pipeline\n\n\n@kfp.dsl.pipeline\ndef first():\n    pass\n\n\n'
       '@pipeline(name="second")\ndef second():\n    pass\n\n\ndef helper():\n    pass\n')


def _open(repo: GitRepo, config: str, files: dict[str, str]) -> Repository:
    write_files(repo, {".kfp-bot.yaml": config, **files})
    repo.commit()
    return Repository.open(repo.root, "HEAD")


def _error(repo: GitRepo, config: str, files: dict[str, str]) -> ConfigError:
    with _open(repo, config, files) as repository, pytest.raises(ConfigError) as caught:
        repository.pipelines()
    return caught.value


def test_pipeline_functions_are_found_by_their_decorator() -> None:
    assert pipeline_functions(TWO.encode()) == ("first", "second")
    assert pipeline_functions(b"def pipeline():\n    pass\n") == ()
    assert pipeline_functions(b"def broken(:\n  @dsl.pipeline\n") == ()


def test_flat_files_by_glob_named_by_stem_with_excludes(git_repo: GitRepo) -> None:
    config = 'pipeline_files: ["pipelines/*.py"]\nexclude: ["*_test.py"]\n'
    files = {"pipelines/01_ingest.py": ONE.format(fn="ingest"), "pipelines/02_train.py": ONE.format(fn="train"),
             "pipelines/common.py": "def helper():\n    pass\n",
             "pipelines/ingest_test.py": ONE.format(fn="test_ingest")}
    with _open(git_repo, config, files) as repository:
        pipelines = repository.pipelines()
    assert list(pipelines) == ["01_ingest", "02_train"]
    ingest = pipelines["01_ingest"]
    assert (ingest.pipeline_file, ingest.function, ingest.path, ingest.owns_folder) == (
        "pipelines/01_ingest.py", "ingest", "pipelines", False)


def test_several_roots_folder_naming_and_several_functions_per_file(git_repo: GitRepo) -> None:
    config = ("pipeline_files:\n"
              "  - {glob: 'samples/*/*.py', name: folder}\n"
              "  - {glob: 'pipelines/src/pipelines/*/*/pipeline.py', name: '{folder}'}\n")
    files = {"samples/caching/run_twice.py": TWO, "samples/hello/hello_world.py": ONE.format(fn="hello"),
             "pipelines/src/pipelines/training/xgboost/pipeline.py": ONE.format(fn="xgb")}
    with _open(git_repo, config, files) as repository:
        pipelines = repository.pipelines()
    assert list(pipelines) == ["caching-first", "caching-second", "hello", "xgboost"]
    assert pipelines["caching-second"].function == "second"


def test_an_explicit_entry_chooses_one_function_and_names_it(git_repo: GitRepo) -> None:
    config = ("pipeline_files:\n"
              "  - {file: samples/caching/run_twice.py, function: second, name: cached}\n")
    with _open(git_repo, config, {"samples/caching/run_twice.py": TWO}) as repository:
        [(name, pipeline)] = repository.pipelines().items()
    assert (name, pipeline.function) == ("cached", "second")


def test_settings_are_optional_and_found_beside_the_file(git_repo: GitRepo) -> None:
    config = 'pipeline_files: ["pipelines/*.py"]\n'
    files = {"pipelines/a.py": ONE.format(fn="a"), "pipelines/a.settings.yaml": "arguments:\n  x: 2\n",
             "pipelines/b.py": ONE.format(fn="b")}
    with _open(git_repo, config, files) as repository:
        assert repository.settings("a").parameters == {"x": 2}
        b = repository.settings("b")
        assert (b.parameters, b.file) == ({}, "pipelines/b.settings.yaml")


@pytest.mark.parametrize("config, files, fragments", [
    ('pipeline_files: ["pipelines/*.py"]\n', {"src/x.py": ONE.format(fn="x")},
     [".kfp-bot.yaml:1", "pipeline_files.0.glob", "'pipelines/*.py' matches no Python file",
      "no folder 'pipelines'"]),
    ('version: 1\npipeline_files:\n  - pipelines/*.py\n', {"pipelines/helpers.py": "x = 1\n"},
     [".kfp-bot.yaml:3", "pipeline_files.0.glob", "matches 1 file(s) but none defines a @dsl.pipeline"]),
    ("pipeline_files:\n  - file: a.py\n    function: nope\n", {"a.py": TWO},
     [".kfp-bot.yaml:3", "pipeline_files.0.function", "a.py defines no @dsl.pipeline function 'nope'",
      "first, second"]),
    ("pipeline_files:\n  - {file: missing.py}\n", {"a.py": TWO},
     [".kfp-bot.yaml:2", "pipeline_files.0.file", "'missing.py' does not exist"]),
    ('pipeline_files: ["*/run.py"]\nname: x\n', {"a/run.py": ONE.format(fn="a")},
     [".kfp-bot.yaml:2", "name: unknown key"]),
    ("pipeline_files: ['*/run.py']\n", {"a/run.py": ONE.format(fn="a"), "b/run.py": ONE.format(fn="b")},
     ["pipeline_files.0.name", "two pipelines are named 'run'", "a/run.py (a) and b/run.py (b)"]),
    ("pipeline_files: ['*.py']\npipelines:\n  tyop: {autorun: false}\n", {"good.py": ONE.format(fn="g")},
     [".kfp-bot.yaml:3", "pipelines.tyop", "no pipeline is named 'tyop'", "pipelines found: good"]),
    ("pipeline_files:\n  - {glob: '*.py', name: '{stemm}'}\n", {"good.py": ONE.format(fn="g")},
     [".kfp-bot.yaml:2", "pipeline_files.0.name", "must be 'stem', 'folder', 'function', a pattern"]),
])
def test_a_declaration_that_finds_nothing_is_an_error_naming_the_key(
        git_repo: GitRepo, config: str, files: dict[str, str], fragments: list[str]) -> None:
    write_files(git_repo, {".kfp-bot.yaml": config, **files})
    git_repo.commit()
    with pytest.raises(ConfigError) as caught:
        with Repository.open(git_repo.root, "HEAD") as repository:
            repository.pipelines()
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_an_override_naming_no_template_pipeline_is_an_error(seed: GitRepo) -> None:
    error = _error(seed, "pipelines:\n  alpah:\n    autorun: false\n", {})
    assert "pipelines.alpah: no pipeline is named 'alpah'" in str(error)
    assert "alpha, beta, gamma" in str(error)


def test_a_repository_with_no_pipeline_fails_the_plan(git_repo: GitRepo) -> None:
    write_files(git_repo, {"pipelines/01_flat.py": ONE.format(fn="flat")})
    base = git_repo.commit()
    git_repo.append("pipelines/01_flat.py", "# edit\n")
    head = git_repo.commit()
    with pytest.raises(ConfigError) as caught:
        plan_change(git_repo.root, base, head)
    assert str(caught.value).startswith("pipelines/: no pipeline found") and "pipeline_files" in str(caught.value)


def test_plans_reach_declared_pipelines_by_file_import_and_settings(git_repo: GitRepo) -> None:
    write_files(git_repo, {
        ".kfp-bot.yaml": 'pipeline_files: ["pipelines/*.py"]\n',
        "pipelines/common.py": "def helper():\n    return 1\n",
        "pipelines/a.py": "from common import helper\n" + ONE.format(fn="a"),
        "pipelines/b.py": ONE.format(fn="b"),
        "pipelines/b.settings.yaml": "arguments:\n  x: 1\n",
        "samples/two.py": TWO,
    })
    base = git_repo.commit()

    def plan_after(files: dict[str, str]) -> dict[str, dict]:
        nonlocal base
        write_files(git_repo, files)
        head = git_repo.commit()
        result = plan_change(git_repo.root, base, head)
        base = head
        return {p.name: p.to_json() for p in result.pipelines}

    touched = plan_after({"pipelines/common.py": "def helper():\n    return 2\n"})
    assert list(touched) == ["a"]
    assert touched["a"]["reasons"][0]["rule"] == "python-import"
    assert (touched["a"]["file"], touched["a"]["function"]) == ("pipelines/a.py", "a")
    assert list(plan_after({"pipelines/b.settings.yaml": "arguments:\n  x: 2\n"})) == ["b"]
    assert list(plan_after({"pipelines/NOTES.txt": "only notes\n"})) == []
    both = plan_after({".kfp-bot.yaml": 'pipeline_files: ["pipelines/*.py", "samples/*.py"]\n'})
    assert set(both) == {"a", "b", "two-first", "two-second"}
    assert both["two-first"]["change"] == "added"
    assert list(plan_after({"samples/two.py": TWO + "\n# edit\n"})) == ["two-first", "two-second"]
