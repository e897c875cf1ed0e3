"""`kfp-bot plan` starts fast: it imports only what planning needs (issue #14).

Each test runs the real command in a fresh interpreter and looks at `sys.modules` when it is done:
no settings library, no service, no compiler, no client of a remote service. Timing is left to
`benchmarks/plan_scaling.py` (start-up line); these tests say which imports are gone for good.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.gitrepo import GitRepo

# Never needed to plan: the service (Flask, SQLAlchemy, gunicorn), remote clients, kfp and the
# compiler, the message templates, the full settings (pydantic-settings imports asyncio and ssl).
NEVER = ("flask", "werkzeug", "sqlalchemy", "gunicorn", "google", "slack_sdk", "github", "requests", "kfp",
         "jinja2", "deploy", "handlers", "bot.config.settings", "pydantic_settings", "dotenv", "asyncio", "ssl")

# `sys.modules` of a bare interpreter (its `.pth` files create namespace packages such as `google`),
# then of the command once it is done.
BARE = "import json, sys; print(json.dumps(sorted(sys.modules)))"
COMMAND = """
import json, sys
from bot.cli import main
status = main(sys.argv[1:])
with open({out!r}, "w") as out:
    json.dump({{"status": status, "modules": sorted(sys.modules)}}, out)
"""


def command_modules(tmp_path: Path, *args: str) -> set[str]:
    """The modules `kfp-bot ARGS` loaded beyond a bare interpreter's, once it is done (it must succeed)."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KFP_BOT_")}
    env["KFP_BOT_DATA_DIR"] = str(tmp_path / "data")
    bare = subprocess.run([sys.executable, "-c", BARE], env=env, capture_output=True, text=True, check=True)
    result = subprocess.run([sys.executable, "-c", COMMAND.format(out=str(out)), *args], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(out.read_text())
    assert loaded["status"] == 0, result.stderr
    return set(loaded["modules"]) - set(json.loads(bare.stdout))


def imported(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of `packages` (a package or any of its submodules) among `modules`."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_plan_imports_no_service_no_client_no_kfp_and_not_the_full_settings(example_repo: GitRepo,
                                                                            tmp_path: Path) -> None:
    example_repo.append("utils/naming.py", "# tuned\n")
    example_repo.commit("tune")
    modules = command_modules(tmp_path, "plan", "--repo", str(example_repo.root), "--base", "HEAD~1",
                              "--head", "HEAD", "--json")
    assert "pipeline_registry.planner" in modules  # it did plan
    assert imported(modules, NEVER) == []


def test_the_look_at_the_modules_sees_what_another_command_imports(git_repo: GitRepo, tmp_path: Path) -> None:
    # `init` validates every setting and the configuration it writes: the same look sees them.
    git_repo.write("flows/one.py", "from kfp import dsl\n\n\n@dsl.pipeline(name='one')\ndef one():\n    pass\n")
    git_repo.commit("a flow")
    modules = command_modules(tmp_path, "init", "--repo", str(git_repo.root))
    assert {"bot.config.settings", "pydantic_settings", "asyncio"} <= set(imported(modules, NEVER))


# Validating `.kfp-bot.yaml` needs a YAML parser and pydantic; a plan that knows the file needs neither.
VALIDATION = ("pydantic", "pydantic_core", "yaml", "pipeline_registry.yamlfile")


def test_a_repository_without_configuration_imports_no_validation(example_repo: GitRepo, tmp_path: Path) -> None:
    example_repo.append("utils/naming.py", "# tuned\n")
    example_repo.commit("tune")
    modules = command_modules(tmp_path, "plan", "--repo", str(example_repo.root), "--base", "HEAD~1", "--json")
    assert imported(modules, VALIDATION) == []


def test_a_configuration_is_validated_once_then_read_from_the_data_folder(example_repo: GitRepo,
                                                                         tmp_path: Path) -> None:
    example_repo.write(".kfp-bot.yaml", "image_registry: europe-docker.pkg.dev/proj/repo\nautorun: false\n")
    example_repo.commit("configure")
    example_repo.append("utils/naming.py", "# tuned\n")
    example_repo.commit("tune")
    args = ("plan", "--repo", str(example_repo.root), "--base", "HEAD~1", "--head", "HEAD", "--json")
    first = command_modules(tmp_path, *args)
    assert "pydantic" in first and "yaml" in first  # validated
    again = command_modules(tmp_path, *args)
    assert imported(again, VALIDATION + NEVER) == []  # the validated file, by its blob id


def test_an_invalid_configuration_is_named_on_every_plan(example_repo: GitRepo, tmp_path: Path) -> None:
    example_repo.write(".kfp-bot.yaml", "image_registry: europe-docker.pkg.dev/proj/repo\n"
                                        "compile:\n  timeout_seconds: 2\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KFP_BOT_")}
    env["KFP_BOT_DATA_DIR"] = str(tmp_path / "data")
    for _ in range(2):  # a failure is never cached: the second plan names the file and field again
        result = subprocess.run([sys.executable, "-m", "bot", "plan", "--repo", str(example_repo.root),
                                 "--base", "HEAD"], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert ".kfp-bot.yaml:3: compile.timeout_seconds: Input should be greater than or equal to 5" in result.stderr
