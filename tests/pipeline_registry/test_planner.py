"""plan_change: every dependency rule reaches exactly the pipelines it should, on real git repos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline_registry.errors import ConfigError, RepositoryError
from pipeline_registry.models import PipelineChange, ReasonKind
from pipeline_registry.planner import plan_change
from tests.pipeline_registry.conftest import names, write_files
from tests.support.gitrepo import GitRepo


def _plan_after(seed: GitRepo, files: dict[str, str]):
    base = seed.head()
    write_files(seed, files)
    head = seed.commit("change")
    return plan_change(seed.root, base, head)


def _kinds(plan, pipeline: str, path: str) -> set[ReasonKind]:
    found = plan.get(pipeline)
    assert found is not None, f"{pipeline} not in plan {names(plan)}"
    return {r.kind for r in found.reasons if r.path == path}


# -- rule 1: the pipeline's own folder -----------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("pipelines/alpha/settings.yaml", ["alpha"]),
    ("pipelines/alpha/train/main.py", ["alpha"]),
    ("pipelines/beta/beta-pipeline.py", ["beta"]),
    ("pipelines/gamma/notes.txt", ["gamma"]),
])
def test_a_file_in_a_pipeline_folder_affects_only_that_pipeline(seed: GitRepo, path: str, expected: list[str]) -> None:
    plan = _plan_after(seed, {path: "# edited\n"})
    assert names(plan) == expected
    assert ReasonKind.PIPELINE_FOLDER in _kinds(plan, expected[0], path)


@pytest.mark.parametrize("path", ["README.md", "pipelines/alpha/README.md", "docs/guide.md",
                                  "components/notify/README.md", "utils/NOTES.md", "LICENSE"])
def test_documentation_affects_nothing_anywhere(seed: GitRepo, path: str) -> None:
    assert names(_plan_after(seed, {path: "more words\n"})) == []


def test_ignore_globs_come_from_the_configuration(seed: GitRepo) -> None:
    write_files(seed, {".kfp-bot.yaml": "ignore: ['**/*.txt']\n"})
    seed.commit("config")
    plan = _plan_after(seed, {"pipelines/gamma/notes.txt": "x\n", "pipelines/alpha/README.md": "y\n"})
    assert names(plan) == ["alpha"]


def test_the_pipeline_reason_names_the_file_and_what_it_is(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"pipelines/alpha/settings.yaml": "arguments:\n  epochs: 2\n"})
    [reason] = plan.pipelines[0].reasons
    assert reason.text == "pipelines/alpha/settings.yaml: settings of pipeline 'alpha'"


# -- rule 2: shared components the pipeline loads -----------------------------------------------

def test_a_shared_component_change_reaches_the_pipelines_that_load_it(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"components/notify/component.yaml": "name: notify\ndescription: x\n"})
    assert names(plan) == ["alpha", "gamma"]
    alpha = plan.get("alpha").reasons
    assert [r.kind for r in alpha] == [ReasonKind.SHARED_COMPONENT]
    assert "shared component 'notify'" in alpha[0].detail
    assert 'load_component("notify")' in alpha[0].detail
    assert "pipelines/gamma/pipeline.py" in plan.get("gamma").reasons[0].detail


def test_a_component_loaded_by_file_path_reaches_its_loader_only(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"components/validate/component.yaml": "name: validate\ninputs: []\n"})
    assert names(plan) == ["beta"]


def test_a_component_nobody_loads_affects_nothing(seed: GitRepo) -> None:
    assert names(_plan_after(seed, {"components/unused/Dockerfile": "FROM python:3.12\n"})) == []


def test_search_paths_decide_where_a_name_is_found(seed: GitRepo) -> None:
    # alpha now searches components/ only and loads validate there, no longer notify.
    write_files(seed, {"pipelines/alpha/alpha.py": (
        "import kfp\nstore = kfp.components.ComponentStore(local_search_paths=['components'])\n"
        "op = store.load_component('validate')\n")})
    seed.commit("alpha uses validate")
    plan = _plan_after(seed, {"components/validate/component.yaml": "name: validate\n# v2\n",
                              "components/notify/notify.py": "print('v2')\n"})
    assert names(plan) == ["alpha", "beta", "gamma"]
    assert _kinds(plan, "alpha", "components/validate/component.yaml") == {ReasonKind.SHARED_COMPONENT}
    assert _kinds(plan, "alpha", "components/notify/notify.py") == set()


def test_a_computed_component_name_counts_every_component_it_could_load(seed: GitRepo) -> None:
    write_files(seed, {"pipelines/gamma/pipeline.py": (
        "import kfp\nstore = kfp.components.ComponentStore(local_search_paths=['components'])\n"
        "def op(name):\n    return store.load_component(name)\n")})
    seed.commit("dynamic")
    plan = _plan_after(seed, {"components/unused/component.yaml": "name: unused\n# v2\n"})
    assert names(plan) == ["gamma"]


# -- rule 3: files copied into a component's image -------------------------------------------

def test_a_file_copied_into_an_own_image_reaches_that_pipeline(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"utils/settings.json": '{"a": 1}\n'})
    assert names(plan) == ["alpha"]
    [reason] = plan.get("alpha").reasons
    assert reason.kind is ReasonKind.IMAGE_INPUT
    assert reason.detail == "copied into image of component 'train' by pipelines/alpha/train/Dockerfile:3"


def test_a_file_copied_into_a_shared_image_reaches_its_loaders(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"utils/notify_template.txt": "Run {name} done\n"})
    assert names(plan) == ["alpha", "gamma"]
    gamma = plan.get("gamma").reasons
    assert [(r.kind, r.detail) for r in gamma] == [
        (ReasonKind.IMAGE_INPUT, "copied into image of component 'notify' by components/notify/Dockerfile:3")]


def test_a_dockerfile_change_is_an_image_input(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"pipelines/alpha/evaluate/Dockerfile": "FROM python:3.12-slim\n"})
    assert names(plan) == ["alpha"]
    assert _kinds(plan, "alpha", "pipelines/alpha/evaluate/Dockerfile") == {
        ReasonKind.PIPELINE_FOLDER, ReasonKind.IMAGE_INPUT}


def test_a_new_copy_source_is_read_from_the_head_dockerfile(seed: GitRepo) -> None:
    write_files(seed, {"pipelines/beta/prep/Dockerfile": "FROM python:3.11\nCOPY lib/ /app/lib/\n"})
    seed.commit("prep copies lib")
    plan = _plan_after(seed, {"lib/messages.py": "GREETING = 'hey'\n"})
    # beta copies lib/; alpha and gamma load notify, whose code imports lib.messages.
    assert names(plan) == ["alpha", "beta", "gamma"]
    assert _kinds(plan, "beta", "lib/messages.py") == {ReasonKind.IMAGE_INPUT}


def test_with_component_build_context_only_the_component_folder_is_copied(seed: GitRepo) -> None:
    write_files(seed, {".kfp-bot.yaml": "build_context: component\n",
                       "pipelines/alpha/train/Dockerfile": "FROM python:3.11\nCOPY . /app\n"})
    seed.commit("component context")
    assert names(_plan_after(seed, {"utils/settings.json": "[]\n"})) == []
    plan = _plan_after(seed, {"pipelines/alpha/train/extra.cfg": "x\n"})
    assert _kinds(plan, "alpha", "pipelines/alpha/train/extra.cfg") == {
        ReasonKind.PIPELINE_FOLDER, ReasonKind.IMAGE_INPUT}


def test_dockerignore_keeps_files_out_of_images(seed: GitRepo) -> None:
    write_files(seed, {".dockerignore": "utils/*.json\n"})
    seed.commit("dockerignore")
    assert names(_plan_after(seed, {"utils/settings.json": "[1]\n"})) == []
    assert names(_plan_after(seed, {"utils/new.cfg": "y\n"})) == ["alpha"]


# -- rule 4: python imports ------------------------------------------------------------------

def test_a_module_imported_by_a_pipeline_file_transitively(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"common/text.py": "def slug(x):\n    return x.upper()\n"})
    assert names(plan) == ["beta"]
    [reason] = plan.get("beta").reasons
    assert reason.kind is ReasonKind.PYTHON_IMPORT
    assert reason.detail == "imported by pipelines/beta/beta-pipeline.py via common/naming.py"


def test_a_parent_package_init_is_imported_too(seed: GitRepo) -> None:
    assert names(_plan_after(seed, {"common/__init__.py": "VERSION = 2\n"})) == ["beta"]


def test_a_module_imported_by_component_code(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"lib/scoring.py": "def score(x):\n    return 2 * x\n"})
    assert names(plan) == ["alpha"]
    [reason] = plan.get("alpha").reasons
    assert reason.detail == "imported by pipelines/alpha/evaluate/evaluate.py"


def test_a_module_imported_by_shared_component_code_reaches_its_loaders(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"lib/messages.py": "GREETING = 'hey'\n"})
    assert names(plan) == ["alpha", "gamma"]
    assert _kinds(plan, "gamma", "lib/messages.py") == {ReasonKind.PYTHON_IMPORT}


def test_an_unimported_python_file_affects_nothing(seed: GitRepo) -> None:
    assert names(_plan_after(seed, {"scripts/cleanup.py": "import os\n"})) == []


def test_a_deleted_module_still_reaches_its_former_importers(seed: GitRepo) -> None:
    base = seed.head()
    seed.remove("common/text.py")
    plan = plan_change(seed.root, base, seed.commit("drop text"))
    assert names(plan) == ["beta"]


# -- rule 5: global files --------------------------------------------------------------------

def test_global_files_affect_every_pipeline(seed: GitRepo) -> None:
    write_files(seed, {".kfp-bot.yaml": "global_files: ['requirements*.txt', 'ci/**']\n"})
    seed.commit("config")
    plan = _plan_after(seed, {"requirements-dev.txt": "pytest\n"})
    assert names(plan) == ["alpha", "beta", "gamma"]
    assert all(p.reasons[0].detail == "global file (matches global_files pattern 'requirements*.txt')"
               for p in plan.pipelines)
    assert names(_plan_after(seed, {"ci/deep/check.sh": "true\n"})) == ["alpha", "beta", "gamma"]
    assert names(_plan_after(seed, {"other.txt": "x\n"})) == []


def test_the_configuration_file_itself_is_global(seed: GitRepo) -> None:
    plan = _plan_after(seed, {".kfp-bot.yaml": "autorun: false\n"})
    assert names(plan) == ["alpha", "beta", "gamma"]
    assert plan.get("beta").reasons[0].detail == "global file (kfp-bot configuration)"


def test_the_file_declaring_the_compile_environment_is_global(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["kfp==1.8.22"]\n'})
    assert names(plan) == ["alpha", "beta", "gamma"]
    assert names(_plan_after(seed, {"setup.cfg": "[metadata]\nname = x\n"})) == []


def test_a_project_file_above_template_pipelines_reaches_only_those_below_it(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"pipelines/pyproject.toml": '[tool.poetry.dependencies]\nkfp = "2.7.0"\n'})
    assert names(plan) == ["alpha", "beta", "gamma"]
    assert names(_plan_after(seed, {"components/requirements.txt": "kfp==2.7.0\n"})) == []


def test_a_pyproject_without_kfp_is_not_global(seed: GitRepo) -> None:
    assert names(_plan_after(seed, {"pyproject.toml": '[project]\nname = "x"\ndependencies = ["numpy"]\n'})) == []


# -- pipelines appearing, disappearing, renames ----------------------------------------------------

def test_a_deleted_pipeline_is_reported_deleted_without_components(seed: GitRepo) -> None:
    base = seed.head()
    seed.remove("pipelines/beta")
    plan = plan_change(seed.root, base, seed.commit("drop beta"))
    [beta] = plan.pipelines
    assert (beta.name, beta.change, beta.components) == ("beta", PipelineChange.DELETED, ())
    assert [(r.path, r.kind) for r in beta.reasons] == [("pipelines/beta", ReasonKind.DELETED)]


def test_a_new_pipeline_is_added_and_all_its_images_are_built(seed: GitRepo) -> None:
    plan = _plan_after(seed, {"pipelines/delta/delta.py": "import kfp\n",
                              "pipelines/delta/fit/Dockerfile": "FROM python:3.11\nCOPY utils ./utils\n"})
    assert names(plan) == ["delta"]
    [delta] = plan.pipelines
    assert delta.change is PipelineChange.ADDED
    assert [(c.component.name, c.rebuild) for c in delta.components] == [("fit", True)]


def test_renaming_a_pipeline_deletes_the_old_and_adds_the_new(seed: GitRepo) -> None:
    base = seed.head()
    seed.rename("pipelines/gamma", "pipelines/delta")
    plan = plan_change(seed.root, base, seed.commit("rename"))
    assert [(p.name, p.change) for p in plan.pipelines] == [
        ("delta", PipelineChange.ADDED), ("gamma", PipelineChange.DELETED)]


def test_a_file_moved_between_pipelines_affects_both(seed: GitRepo) -> None:
    write_files(seed, {"pipelines/alpha/query.sql": "select 1\n"})
    base = seed.commit("query")
    seed.rename("pipelines/alpha/query.sql", "pipelines/beta/query.sql")
    plan = plan_change(seed.root, base, seed.commit("move"))
    assert names(plan) == ["alpha", "beta"]


def test_renaming_a_shared_component_reaches_the_pipelines_that_loaded_it(seed: GitRepo) -> None:
    base = seed.head()
    seed.rename("components/notify", "components/notifier")
    plan = plan_change(seed.root, base, seed.commit("rename notify"))
    assert names(plan) == ["alpha", "gamma"]


# -- revisions, branches and the working tree ---------------------------------------------------

def test_plans_between_branches_by_name_with_resolved_shas(seed: GitRepo) -> None:
    base = seed.head()
    seed.branch("feature")
    write_files(seed, {"pipelines/alpha/settings.yaml": "arguments:\n  epochs: 5\n"})
    head = seed.commit("more epochs")
    plan = plan_change(seed.root, "main", "feature")
    assert (plan.base, plan.head, names(plan)) == (base, head, ["alpha"])


def test_the_working_tree_counts_uncommitted_and_untracked_files(seed: GitRepo) -> None:
    seed.append("pipelines/alpha/settings.yaml", "# uncommitted\n")
    write_files(seed, {"pipelines/beta/notes.txt": "untracked\n",
                       "pipelines/gamma/build/output.txt": "ignored by .gitignore\n"})
    plan = plan_change(seed.root, "HEAD")
    assert plan.head is None
    assert names(plan) == ["alpha", "beta"]


def test_the_working_tree_counts_files_deleted_from_disk(seed: GitRepo) -> None:
    (seed.root / "common/text.py").unlink()
    assert names(plan_change(seed.root, "main")) == ["beta"]


def test_no_change_gives_an_empty_plan(seed: GitRepo) -> None:
    plan = plan_change(seed.root, "main", "main")
    assert plan.pipelines == () and plan.base == plan.head == seed.head()


def test_plan_json_is_what_the_cli_prints(seed: GitRepo) -> None:
    data = _plan_after(seed, {"utils/settings.json": "[]\n"}).to_json()
    [alpha] = data["pipelines"]
    assert alpha["change"] == "modified"
    assert alpha["reasons"][0]["rule"] == "image-input"
    assert [c["name"] for c in alpha["components"]] == ["evaluate", "train", "notify"]


# -- errors ---------------------------------------------------------------------------------------

def test_an_unknown_revision_is_a_clear_repository_error(seed: GitRepo) -> None:
    with pytest.raises(RepositoryError, match="unknown revision 'no-such-branch'"):
        plan_change(seed.root, "no-such-branch")


def test_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="is not a git repository"):
        plan_change(tmp_path, "main")
    with pytest.raises(RepositoryError, match="does not exist"):
        plan_change(tmp_path / "missing", "main")


def test_a_subfolder_of_a_repository_names_the_root(seed: GitRepo) -> None:
    with pytest.raises(RepositoryError, match="is not its root") as error:
        plan_change(seed.root / "pipelines", "main")
    assert str(seed.root.resolve()) in str(error.value)


def test_a_malformed_configuration_at_head_is_a_config_error(seed: GitRepo) -> None:
    base = seed.head()
    write_files(seed, {".kfp-bot.yaml": "pipelines_dir: pipelines\nimage_regsitry: gcr.io/x\n"})
    head = seed.commit("typo")
    with pytest.raises(ConfigError) as error:
        plan_change(seed.root, base, head)
    assert (error.value.file, error.value.line) == (".kfp-bot.yaml", 2)
    assert "did you mean 'image_registry'" in str(error.value)


def test_a_malformed_configuration_at_base_does_not_block_its_fix(seed: GitRepo) -> None:
    write_files(seed, {".kfp-bot.yaml": "ignore: [unclosed\n"})
    base = seed.commit("broken")
    write_files(seed, {".kfp-bot.yaml": "ignore: []\n"})
    plan = plan_change(seed.root, base, seed.commit("fixed"))
    assert names(plan) == ["alpha", "beta", "gamma"]


def test_planning_leaves_garbage_collection_as_it_found_it(seed: GitRepo) -> None:
    # Collection pauses while plans run (in threads too) and resumes after the last one, never
    # when it was off before.
    import gc
    from concurrent.futures import ThreadPoolExecutor

    base = seed.head()
    seed.append("utils/metrics.py", "# tuned\n")
    head = seed.commit("tuned")
    assert gc.isenabled()
    with ThreadPoolExecutor(4) as pool:
        plans = list(pool.map(lambda _: plan_change(seed.root, base, head), range(8)))
    assert gc.isenabled() and len({p.pipelines for p in plans}) == 1 and plans[0].pipelines
    gc.disable()
    try:
        plan_change(seed.root, base, head)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _replace(path: str, old: str, new: str) -> Callable[[GitRepo], None]:
    def edit(repo: GitRepo) -> None:
        text = repo.root.joinpath(path).read_text()
        assert old in text
        repo.write(path, text.replace(old, new))
    return edit


def _append(path: str, text: str) -> Callable[[GitRepo], None]:
    return lambda repo: repo.append(path, text)


# Changes that only edit files; those with two edits reach a pipeline at base only (a copy, an
# import or a load the change removes), which a plan must still name.
_EDITS: dict[str, tuple[Callable[[GitRepo], None], ...]] = {
    "a module every image copies": (_append("utils/metrics.py", "\n# tuned\n"),),
    "a module whose imports change": (_append("lib/scoring.py", "\nfrom lib.messages import GREETING\n"),),
    "component code": (_append("pipelines/alpha/evaluate/evaluate.py", "\nimport common.naming\n"),),
    "settings": (_append("pipelines/beta/settings.yaml", "# more\n"),),
    "a module no longer imported": (_replace("utils/metrics.py", "from utils.io_helpers import read\n", ""),
                                    _append("utils/io_helpers.py", "# tuned\n")),
    "a file no longer copied": (_replace("components/notify/Dockerfile", "COPY utils/notify_template.txt /app/\n", ""),
                                _append("utils/notify_template.txt", "more\n")),
    "a component no longer loaded": (_replace("pipelines/gamma/pipeline.py", "notify_op = ", "# notify_op = "),
                                     _append("components/notify/notify.py", "# tuned\n")),
}


@pytest.mark.parametrize("edit", sorted(_EDITS))
def test_a_plan_sharing_one_side_equals_a_plan_of_two_separate_sides(seed: GitRepo, edit: str) -> None:
    # plan_change shares the layout (and, when no rule reads an edited file, the impact) between
    # the sides of a change that only edits files; two graphs analysed apart must agree with it.
    from pipeline_registry.graph import RepoGraph, load_config
    from pipeline_registry.planner import plan_pipelines
    from pipeline_registry.snapshot import changed_files, open_snapshot

    base = seed.head()
    for step in _EDITS[edit]:
        step(seed)
    head = seed.commit(edit)
    with open_snapshot(seed.root, base) as before, open_snapshot(seed.root, head) as after:
        apart = plan_pipelines(RepoGraph(before, load_config(before)), RepoGraph(after, load_config(after)),
                               changed_files(seed.root, base, head))
    shared = plan_change(seed.root, base, head).pipelines
    assert shared == apart and shared


def test_plans_that_keep_overlapping_still_let_collection_run(seed: GitRepo, monkeypatch) -> None:
    # A busy service may always have a plan running: past MAX_PAUSE_SECONDS a plan that ends
    # collects the garbage of all of them.
    import gc
    import threading

    from pipeline_registry import planner

    monkeypatch.setattr(planner, "MAX_PAUSE_SECONDS", 0.0)
    base = seed.head()
    seed.append("utils/metrics.py", "# tuned\n")
    head = seed.commit("tuned")
    collected: list[int] = []
    release, started = threading.Event(), threading.Event()
    gc.callbacks.append(lambda phase, info: collected.append(info["generation"]) if phase == "stop" else None)
    try:
        def long_plan() -> None:
            with planner._collection_paused():
                started.set()
                release.wait(30)

        other = threading.Thread(target=long_plan)
        other.start()
        started.wait(30)
        plan_change(seed.root, base, head)  # ends while the other still runs
        assert 2 in collected and not gc.isenabled()
        release.set()
        other.join(30)
        assert gc.isenabled()
    finally:
        release.set()
        gc.callbacks.pop()
