"""Which kfp SDK a repository compiles with, from the files it declares it in."""

from __future__ import annotations

import pytest

from pipeline_registry.compile_env import CompileEnvironment, compile_environment, poetry_constraint
from pipeline_registry.errors import ConfigError
from pipeline_registry.repo_config import load_repo_config

POETRY = b'[tool.poetry.dependencies]\npython = "^3.9"\nkfp = "^1.8.22"\ntensorflow = "^2.7"\n'
LOCK = b'[[package]]\nname = "kfp"\nversion = "1.8.22"\n\n[[package]]\nname = "tensorflow"\nversion = "2.7.0"\n'


def env(files: dict[str, bytes], config: bytes | None = None):
    return compile_environment(files.get, load_repo_config(config))


def test_nothing_declared_uses_the_bots_own_kfp() -> None:
    found = env({"requirements.txt": b"numpy==1.26\n"})
    assert found.is_default and found.source_files == ()


def test_poetry_pin_is_taken_from_the_lock_file_and_only_the_sdk_is_installed() -> None:
    found = env({"pyproject.toml": POETRY, "poetry.lock": LOCK})
    assert found.requirements == ("kfp==1.8.22",)
    assert found.source_files == ("pyproject.toml", "poetry.lock")


def test_poetry_caret_without_a_lock_becomes_a_pip_range() -> None:
    assert env({"pyproject.toml": POETRY}).requirements == ("kfp>=1.8.22,<2",)


def test_pep621_and_requirements_txt() -> None:
    pep621 = b'[project]\nname = "x"\ndependencies = ["kfp>=2.7,<3", "pandas"]\n'
    assert env({"pyproject.toml": pep621}).requirements == ("kfp>=2.7,<3",)
    requirements = b"pandas\nkfp==1.8.22  # the SDK\ngoogle-cloud-pipeline-components==1.0.0\n"
    found = env({"requirements.txt": requirements})
    assert found.requirements == ("kfp==1.8.22", "google-cloud-pipeline-components==1.0.0")
    assert found.source_files == ("requirements.txt",)


def test_kfp_bot_yaml_wins_and_its_key_depends_only_on_the_requirements() -> None:
    config = b"compile:\n  requirements: ['kfp==1.8.22']\n"
    declared = env({"pyproject.toml": POETRY}, config)
    assert declared.requirements == ("kfp==1.8.22",) and declared.source_files == (".kfp-bot.yaml",)
    assert declared.key == env({"poetry.lock": LOCK, "pyproject.toml": POETRY}).key


def test_a_requirements_file_named_in_the_config_must_exist() -> None:
    with pytest.raises(ConfigError, match="compile.requirements_file: file 'compile.txt' does not exist"):
        env({}, b"compile:\n  requirements_file: compile.txt\n")


def test_project_files_can_be_ignored() -> None:
    assert env({"pyproject.toml": POETRY}, b"compile:\n  use_project_files: false\n").is_default


def test_broken_toml_names_the_file() -> None:
    with pytest.raises(ConfigError, match="pyproject.toml: invalid TOML"):
        env({"pyproject.toml": b"[tool.poetry\n"})


@pytest.mark.parametrize("spec,expected", [
    ("^1.8.0", ">=1.8.0,<2"), ("^0.2.3", ">=0.2.3,<0.3"), ("~1.8", ">=1.8,<1.9"), ("1.8.*", "==1.8.*"),
    (">=1,<2", ">=1,<2"), ("*", ""),
])
def test_poetry_constraints(spec: str, expected: str) -> None:
    assert poetry_constraint(spec) == expected


def test_a_declared_pipeline_uses_its_nearest_sub_project_that_pins_the_sdk() -> None:
    from pipeline_registry.compile_env import pipeline_environment
    from pipeline_registry.models import Pipeline

    files = {"requirements.txt": b"kfp==2.7.0\n",
             "pipelines/Pipfile": b'[packages]\nkfp = "==1.8.22"\nkfp-kubernetes = "*"\nrequests = "*"\n',
             "pipelines/Pipfile.lock": b'{"default": {"kfp": {"version": "==1.8.22"}, '
                                       b'"kfp-kubernetes": {"version": "==1.0.0"}}}',
             "pipelines/src/pipelines/x/pipeline.py": b"",
             "samples/pyproject.toml": b'[project]\nname = "s"\ndependencies = ["numpy"]\n'}
    config = load_repo_config(b"pipeline_files: ['**/pipeline.py']\n")
    nested = Pipeline("x", "pipelines/src/pipelines/x", "pipelines/src/pipelines/x/pipeline.py", None, owns_folder=False)
    assert pipeline_environment(files.get, config, nested) == compile_environment(files.get, config, "pipelines") \
        and pipeline_environment(files.get, config, nested).requirements == ("kfp==1.8.22", "kfp-kubernetes==1.0.0")
    assert pipeline_environment(files.get, config, nested).source_files == ("pipelines/Pipfile", "pipelines/Pipfile.lock")
    sample = Pipeline("s", "samples", "samples/s.py", None, owns_folder=False)
    assert pipeline_environment(files.get, config, sample).requirements == ("kfp==2.7.0",)
    template = Pipeline("t", "pipelines/t", "pipelines/t/t.py", None)
    assert pipeline_environment(files.get, config, template).source_files == ("pipelines/Pipfile", "pipelines/Pipfile.lock")


def test_a_template_pipeline_folder_that_pins_the_sdk_keeps_it() -> None:
    from pipeline_registry.compile_env import pipeline_environment
    from pipeline_registry.models import Pipeline

    files = {"pyproject.toml": b'[tool.poetry.dependencies]\nkfp = "1.8.22"\n',
             "pipelines/new/requirements.txt": b"kfp==2.7.0\nkfp-kubernetes==1.2.0\npandas==2.2.2\n",
             "pipelines/new/new.py": b"", "pipelines/old/old.py": b""}
    config = load_repo_config(None)
    new = Pipeline("new", "pipelines/new", "pipelines/new/new.py", None)
    old = Pipeline("old", "pipelines/old", "pipelines/old/old.py", None)
    settings_only = Pipeline("s", "pipelines/s", None, "pipelines/s/settings.yaml")
    assert pipeline_environment(files.get, config, new) == CompileEnvironment(
        ("kfp==2.7.0", "kfp-kubernetes==1.2.0"), ("pipelines/new/requirements.txt",))
    assert pipeline_environment(files.get, config, old).requirements == ("kfp==1.8.22",)
    assert pipeline_environment(files.get, config, settings_only).source_files == ("pyproject.toml",)


@pytest.mark.parametrize("variables, problem", [
    ("{PATH: /tmp}", "'PATH' is set by the bot's sandbox"),
    ("{KFP_BOT_WEBHOOK_SECRET: x}", "'KFP_BOT_WEBHOOK_SECRET' is set by the bot's sandbox"),
    ("{'1X': y}", "'1X' is not an environment variable name"),
])
def test_compile_env_names_ordinary_variables_only(variables: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_repo_config(f"compile:\n  env: {variables}\n")
    assert ".kfp-bot.yaml:2: compile.env" in str(caught.value) and problem in str(caught.value)
