"""The `kfp-bot` command line, run as a user runs it (`python -m bot ...` in a subprocess)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__, cli
from tests.support.gitrepo import GitRepo

HELLO_SETTINGS = "pipelines/hello-pipeline/settings.yaml"


def kfp_bot(*args: str, cwd: Path | None = None, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_BOT_")}
    if data_dir is not None:
        env["KFP_BOT_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def assert_clean_failure(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in result.stderr


def test_version_and_help() -> None:
    assert kfp_bot("--version").stdout.strip() == f"kfp-bot {__version__}"
    usage = kfp_bot("--help").stdout
    for command in ("plan", "check", "compile", "run", "serve"):
        assert command in usage


def test_plan_of_the_working_tree_and_of_a_revision_as_json(example_repo: GitRepo) -> None:
    base = example_repo.head()
    example_repo.append("utils/naming.py", "\n# a comment that changes the file\n")
    working = json.loads(kfp_bot("plan", "--repo", str(example_repo.root), "--base", base, "--json").stdout)
    assert working["base"] == base and working["head"] is None
    names = [p["name"] for p in working["pipelines"]]
    assert names == sorted(names) and "hello-pipeline" in names

    head = example_repo.commit("touch naming")
    committed = json.loads(kfp_bot("plan", "--repo", str(example_repo.root), "--base", base, "--head", head,
                                   "--json").stdout)
    assert committed["head"] == head
    assert [p["name"] for p in committed["pipelines"]] == names
    [reason] = [r for p in committed["pipelines"] if p["name"] == "hello-pipeline" for r in p["reasons"]]
    assert reason["path"] == "utils/naming.py" and reason["rule"] == "python-import"
    [hello] = [p for p in committed["pipelines"] if p["name"] == "hello-pipeline"]
    assert (hello["file"], hello["function"]) == ("pipelines/hello-pipeline/hello-pipeline.py", "hello_pipeline")


def test_plan_as_a_table(example_repo: GitRepo) -> None:
    base = example_repo.head()
    example_repo.append("pipelines/training-pipeline/train/main.py", "\n# tweak\n")
    table = kfp_bot("plan", "--repo", str(example_repo.root), "--base", base).stdout
    assert "training-pipeline" in table and "build" in table and "train" in table


def test_plan_called_in_process_leaves_garbage_collection_on(example_repo: GitRepo,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Only a `kfp-bot plan` process of its own, which ends with its answer, turns the collector off.
    base = example_repo.head()
    example_repo.append("utils/naming.py", "\n# changed\n")
    assert gc.isenabled()
    assert cli.main(["plan", "--repo", str(example_repo.root), "--base", base, "--json"]) == 0
    assert "hello-pipeline" in json.dumps(json.loads(capsys.readouterr().out))
    assert gc.isenabled()


def test_plan_with_a_revision_that_does_not_exist(example_repo: GitRepo) -> None:
    result = kfp_bot("plan", "--repo", str(example_repo.root), "--base", "no-such-branch")
    assert_clean_failure(result, "no-such-branch")


def test_plan_outside_a_git_repository(tmp_path: Path) -> None:
    assert_clean_failure(kfp_bot("plan", "--repo", str(tmp_path), "--base", "main"), "error:")


def test_check_passes_on_the_example(example_repo: GitRepo, tmp_path: Path) -> None:
    result = kfp_bot("check", "--repo", str(example_repo.root), data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == 3


@pytest.mark.parametrize("settings,message", [
    ("arguments:\n  name: x\n  repeat: [3\n", f"{HELLO_SETTINGS}:3"),
    ("arguments:\n  - name\n", "section must be a mapping"),
    ("arguments:\n  repeats: 3\n", "did you mean 'repeat'"),
    ("arguments:\n  repeat: three\n", "repeat"),
])
def test_check_reports_bad_settings_naming_the_file(example_repo: GitRepo, tmp_path: Path, settings: str,
                                                    message: str) -> None:
    example_repo.write(HELLO_SETTINGS, settings)
    result = kfp_bot("check", "--repo", str(example_repo.root), "hello-pipeline", data_dir=tmp_path / "data")
    assert_clean_failure(result, message)


@pytest.mark.parametrize("source,message,timeout", [
    ("raise RuntimeError('boom at import')\n", "boom at import", 60),
    ("def broken(:\n", "line 1", 60),
    ("x = 1\n", "no pipeline", 60),
    ("while True:\n    pass\n", "within", 5),  # the smallest limit .kfp-bot.yaml allows: the test waits for it
])
def test_check_reports_pipeline_files_that_fail(example_repo: GitRepo, tmp_path: Path, source: str,
                                                message: str, timeout: int) -> None:
    example_repo.write(".kfp-bot.yaml", f"compile:\n  timeout_seconds: {timeout}\n")
    example_repo.write("pipelines/hello-pipeline/hello-pipeline.py", source)
    result = kfp_bot("check", "--repo", str(example_repo.root), "hello-pipeline", data_dir=tmp_path / "data")
    assert_clean_failure(result, "pipelines/hello-pipeline/hello-pipeline.py", message)


def test_check_refuses_an_experiment_on_vertex_ai_instead_of_ignoring_it(example_repo: GitRepo,
                                                                        tmp_path: Path) -> None:
    example_repo.write(HELLO_SETTINGS, "arguments:\n  name: x\nrun:\n  target: vertex\n  experiment: debug\n")
    result = kfp_bot("check", "--repo", str(example_repo.root), "hello-pipeline", data_dir=tmp_path / "data")
    assert_clean_failure(result, "hello-pipeline: 'hello-pipeline' sets run.experiment ('debug')", "target: kfp")

    example_repo.write(HELLO_SETTINGS, "arguments:\n  name: x\nrun:\n  target: kfp\n  experiment: debug\n")
    result = kfp_bot("check", "--repo", str(example_repo.root), "hello-pipeline", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr


def test_check_of_an_unknown_pipeline_lists_the_known_ones(example_repo: GitRepo, tmp_path: Path) -> None:
    result = kfp_bot("check", "--repo", str(example_repo.root), "nope", data_dir=tmp_path / "data")
    assert_clean_failure(result, "unknown pipeline 'nope'", "hello-pipeline")


def test_check_reports_an_invalid_repository_config(example_repo: GitRepo, tmp_path: Path) -> None:
    example_repo.write(".kfp-bot.yaml", "pipeline_dir: pipelines\n")
    result = kfp_bot("check", "--repo", str(example_repo.root), data_dir=tmp_path / "data")
    assert_clean_failure(result, ".kfp-bot.yaml:1", "did you mean 'pipelines_dir'")


def test_compile_substitutes_the_images_the_bot_builds(example_repo: GitRepo, tmp_path: Path) -> None:
    out = tmp_path / "training.yaml"
    result = kfp_bot("compile", "training-pipeline", "--repo", str(example_repo.root), "--out", str(out),
                     "--image-tag", "abc123", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "gcr.io/my-project/training-pipeline-train:abc123" in text
    assert "gcr.io/my-project/notify:abc123" in text


def test_run_locally_with_overrides(example_repo: GitRepo, tmp_path: Path) -> None:
    result = kfp_bot("run", "hello-pipeline", "--repo", str(example_repo.root), "-p", "repeat=2",
                     "-p", "name=Ada", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "succeeded: hello-pipeline" in result.stdout
    assert "greeting = 'Hello, Ada!'" in result.stdout
    # "Hello, Ada!" has two words, counted twice, scaled by the settings' factor 0.5
    assert "score = 2.0" in result.stdout


def test_run_prints_the_metrics_the_pipeline_logged(example_repo: GitRepo, tmp_path: Path) -> None:
    from tests.handlers.test_results_end_to_end import CODE, PIPELINE

    example_repo.write(f"pipelines/{PIPELINE}/{PIPELINE}.py", CODE)
    result = kfp_bot("run", PIPELINE, "--repo", str(example_repo.root), "-p", "accuracy=0.93",
                     data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "  metric accuracy = 0.93\n  metric loss = 0.2\n" in result.stdout


def test_run_with_a_mistyped_parameter(example_repo: GitRepo, tmp_path: Path) -> None:
    result = kfp_bot("run", "hello-pipeline", "--repo", str(example_repo.root), "-p", "repeat=many",
                     data_dir=tmp_path / "data")
    assert_clean_failure(result, "repeat: expected an integer, got 'many'")


def test_run_of_a_container_pipeline_without_an_engine_says_why(example_repo: GitRepo, tmp_path: Path) -> None:
    from deploy.runners.local import container_engine

    if container_engine() is not None:
        pytest.skip("a container engine answers on this machine")
    result = kfp_bot("run", "training-pipeline", "--repo", str(example_repo.root), data_dir=tmp_path / "data")
    assert_clean_failure(result, "container engine")


def test_plan_compares_with_where_the_branch_left_the_base(example_repo: GitRepo) -> None:
    example_repo.branch("feature")
    example_repo.append("pipelines/hello-pipeline/hello-pipeline.py", "\n# feature work\n")
    head = example_repo.commit("feature")
    example_repo.checkout("main")
    example_repo.append("pipelines/training-pipeline/train/main.py", "\n# main moves on\n")
    example_repo.commit("main moves on")
    plan = json.loads(kfp_bot("plan", "--repo", str(example_repo.root), "--base", "main", "--head", head,
                              "--json").stdout)
    assert [p["name"] for p in plan["pipelines"]] == ["hello-pipeline"]


FLAT_TWO = '''from kfp import dsl


@dsl.component
def say(text: str) -> str:
    return text


@dsl.pipeline(name="first")
def first(text: str):
    say(text=text)


@dsl.pipeline(name="second")
def second(times: int = 1):
    say(text=str(times))
'''


def test_declared_pipelines_are_planned_and_checked_function_by_function(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write(".kfp-bot.yaml", 'pipeline_files: ["flows/*.py"]\nexclude: ["*_test.py"]\n')
    git_repo.write("flows/pair.py", FLAT_TWO)
    git_repo.write("flows/pair_test.py", "def test_nothing():\n    pass\n")
    base = git_repo.commit("flat pipelines")
    git_repo.append("flows/pair.py", "\n# touched\n")
    planned = json.loads(kfp_bot("plan", "--repo", str(git_repo.root), "--base", base, "--json").stdout)
    assert [(p["name"], p["file"], p["function"]) for p in planned["pipelines"]] == [
        ("pair-first", "flows/pair.py", "first"), ("pair-second", "flows/pair.py", "second")]

    result = kfp_bot("check", "--repo", str(git_repo.root), data_dir=tmp_path / "data")
    assert result.returncode == 1, result.stderr
    assert "ok  pair-second: 0 parameter(s), 1 input(s)" in result.stdout
    assert "pair-first: missing required parameter 'text' (string): set it in flows/pair.first.settings.yaml" \
        in result.stderr
    git_repo.write("flows/pair.first.settings.yaml", "arguments:\n  text: hi\n")


def test_plan_and_check_fail_when_the_configuration_finds_nothing(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write(".kfp-bot.yaml", 'pipeline_files:\n  - "pipeline/*.py"\n')
    git_repo.write("pipelines/a.py", FLAT_TWO)
    base = git_repo.commit("a typo in the glob")
    git_repo.append("pipelines/a.py", "\n# touched\n")
    for args in (("plan", "--base", base), ("check",)):
        result = kfp_bot(*args, "--repo", str(git_repo.root), data_dir=tmp_path / "data")
        assert_clean_failure(result, ".kfp-bot.yaml:2: pipeline_files.0.glob: 'pipeline/*.py' matches no Python file")
    git_repo.remove(".kfp-bot.yaml")
    result = kfp_bot("check", "--repo", str(git_repo.root), data_dir=tmp_path / "data")
    assert_clean_failure(result, "no pipeline found", "kfp-bot init")


def test_init_writes_a_configuration_that_finds_the_pipelines(git_repo: GitRepo, tmp_path: Path) -> None:
    from tests.pipeline_registry.layouts.samples import FILES

    for path, text in FILES.items():
        if path != ".kfp-bot.yaml":
            git_repo.write(path, text)
    git_repo.commit("samples without configuration")

    result = kfp_bot("init", "--repo", str(git_repo.root), data_dir=tmp_path / "data")

    assert result.returncode == 0, result.stderr
    assert "found: 4 pipeline file(s): samples/caching/caching_sample.py" in result.stdout
    assert "found: compile pins: kfp==2.7.0 (from requirements.txt)" in result.stdout
    assert "with it kfp-bot finds 5 pipeline(s)" in result.stdout
    written = (git_repo.root / ".kfp-bot.yaml").read_text()
    again = kfp_bot("init", "--repo", str(git_repo.root), data_dir=tmp_path / "data")
    assert_clean_failure(again, ".kfp-bot.yaml exists", "--force")
    assert (git_repo.root / ".kfp-bot.yaml").read_text() == written


def test_a_component_load_that_resolves_nowhere_warns_in_plan_and_fails_check(example_repo: GitRepo,
                                                                               tmp_path: Path) -> None:
    base = example_repo.head()
    example_repo.git("mv", "components", "shared")  # the search path the pipelines name is renamed
    head = example_repo.commit("rename components/ to shared/")
    training = "pipelines/training-pipeline/training-pipeline.py"
    notify = (f"{training}:19: load_component(\"notify\") resolves nowhere: the search path 'components' "
              "(line 15) does not exist")
    dataset = ('pipelines/dataset-pipeline/dataset-pipeline.py:7: load_component_from_file('
               '"components/notify/component.yaml") resolves nowhere: no file components/notify/component.yaml '
               'from the repository root or pipelines/dataset-pipeline')

    planned = kfp_bot("plan", "--repo", str(example_repo.root), "--base", base, "--head", head, "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["warnings"] == [dataset, notify]
    table = kfp_bot("plan", "--repo", str(example_repo.root), "--base", base, "--head", head).stdout
    assert f"warning: {notify}" in table

    result = kfp_bot("check", "--repo", str(example_repo.root), data_dir=tmp_path / "data")
    assert_clean_failure(result, f"training-pipeline: {notify}", f"dataset-pipeline: {dataset}",
                         "2 of 3 pipeline(s) have problems")
    assert "ok  hello-pipeline" in result.stdout


def test_gits_own_warnings_do_not_reach_the_user(example_repo: GitRepo) -> None:
    for number in range(3):
        example_repo.write(f"docs/part{number}.md", "".join(f"line {n} of part {number}\n" for n in range(100)))
    base = example_repo.commit("docs")
    for number in range(3):
        example_repo.git("mv", f"docs/part{number}.md", f"docs/chapter{number}.md")
        example_repo.append(f"docs/chapter{number}.md", "one more line\n")
    head = example_repo.commit("renamed and edited: inexact renames")
    example_repo.git("config", "diff.renameLimit", "1")  # git now warns that it skipped rename detection

    for extra in ((), ("--json",)):
        result = kfp_bot("plan", "--repo", str(example_repo.root), "--base", base, "--head", head, *extra)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert "rename" not in result.stdout


def test_an_override_naming_an_unknown_pipeline_fails_plan_and_check_naming_the_key(example_repo: GitRepo,
                                                                                    tmp_path: Path) -> None:
    base = example_repo.head()
    example_repo.write(".kfp-bot.yaml", "pipelines:\n  helo-pipeline:\n    autorun: false\n")
    example_repo.commit("a typo in an override")
    # The second plan reads the validated file from the data folder: its key lines come with it.
    for args in (("plan", "--base", base), ("plan", "--base", base), ("check",)):
        result = kfp_bot(*args, "--repo", str(example_repo.root), data_dir=tmp_path / "data")
        assert_clean_failure(result, ".kfp-bot.yaml:2: pipelines.helo-pipeline: no pipeline is named "
                                     "'helo-pipeline'", "hello-pipeline")
