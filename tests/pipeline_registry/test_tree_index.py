"""Facts of whole trees kept by tree id: a plan that starts from them says what a plan from scratch says.

Each change below is planned twice from the same base: once as a new process with an empty data
folder, once after an earlier plan of the same base left the base tree's facts (listing, layout,
copy, load and import indexes) that the head side then shares, updated for the edited files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline_registry.cache_control import clear_all_caches, tree_store, use_disk_cache
from pipeline_registry.disk_cache import SUFFIX
from pipeline_registry.gitcli import BLOB_READS, tree_ids
from pipeline_registry.models import Plan
from pipeline_registry.planner import plan_change
from pipeline_registry.tree_index import CopyIndex, LoadIndex, TreeFacts, TreeStore, build_copy_index, source_scope
from tests.pipeline_registry.conftest import names
from tests.support.gitrepo import GitRepo


@pytest.fixture
def fresh():
    """Every test starts and ends with empty in-memory caches and no disk cache."""
    use_disk_cache(None)
    clear_all_caches()
    yield
    use_disk_cache(None)
    clear_all_caches()


def _both_ways(seed: GitRepo, data: Path, edit: Callable[[GitRepo], None]) -> tuple[Plan, Plan]:
    """(plan from scratch, plan starting from the base tree's kept facts) of the change `edit` makes."""
    base = seed.head()
    seed.append("pipelines/gamma/settings.yaml", "# an earlier push\n")
    earlier = seed.commit("earlier push")
    seed.git("checkout", "-q", base)
    edit(seed)
    head = seed.commit("the change")
    use_disk_cache(data / "scratch")
    clear_all_caches()
    scratch = plan_change(seed.root, base, head)
    use_disk_cache(data / "kept")
    clear_all_caches()
    plan_change(seed.root, base, earlier)  # leaves the base tree's facts
    assert tree_store().get(tree_ids(seed.root, base)[0]) is not None
    clear_all_caches()  # a new process: the facts come from disk
    return scratch, plan_change(seed.root, base, head)


def _load_validate(repo: GitRepo) -> None:
    text = repo.root.joinpath("pipelines/gamma/pipeline.py").read_text()
    repo.write("pipelines/gamma/pipeline.py",
               text + 'validate_op = components.load_component_from_file("components/validate/component.yaml")\n')
    repo.append("components/validate/component.yaml", "# more\n")


# A change, and (pipeline, changed path) reasons its plan must give besides the obvious ones.
EDITS: dict[str, tuple[Callable[[GitRepo], None], set[tuple[str, str]]]] = {
    "component code": (lambda r: r.append("pipelines/alpha/train/main.py", "# tuned\n"), set()),
    "a module imported through a package": (lambda r: r.append("common/text.py", "# faster\n"),
                                             {("beta", "common/text.py")}),
    "a Dockerfile now copying lib/, and lib/": (lambda r: (
        r.append("pipelines/beta/prep/Dockerfile", "COPY lib /lib\n"), r.append("lib/messages.py", "# more\n")),
        {("beta", "lib/messages.py"), ("alpha", "lib/messages.py"), ("gamma", "lib/messages.py")}),
    "a pipeline file now loading a shared component, and that component": (
        _load_validate, {("gamma", "components/validate/component.yaml"),
                         ("beta", "components/validate/component.yaml")}),
    "a file added": (lambda r: r.write("pipelines/alpha/evaluate/extra.py", "from lib.scoring import score\n"),
                     set()),
    "a file deleted": (lambda r: r.remove("lib/scoring.py"), {("alpha", "lib/scoring.py")}),
    "the configuration": (lambda r: r.write(".kfp-bot.yaml", "global_files: ['utils/settings.json']\n"),
                          {("alpha", ".kfp-bot.yaml"), ("beta", ".kfp-bot.yaml"), ("gamma", ".kfp-bot.yaml")}),
    "docs only": (lambda r: r.append("docs/guide.md", "more\n"), set()),
}


@pytest.mark.parametrize(("edit", "expected"), EDITS.values(), ids=EDITS.keys())
def test_a_plan_from_kept_facts_equals_a_plan_from_scratch(seed: GitRepo, tmp_path: Path, fresh: None,
                                                           edit: Callable[[GitRepo], None],
                                                           expected: set[tuple[str, str]]) -> None:
    scratch, kept = _both_ways(seed, tmp_path, edit)
    assert kept == scratch
    assert expected <= {(p.name, r.path) for p in kept.pipelines for r in p.reasons}


def test_kept_facts_follow_an_edit_that_makes_modules_reachable(seed: GitRepo, tmp_path: Path,
                                                                fresh: None) -> None:
    seed.write("lib/extra.py", "from lib.deep import value\n")  # imported by nothing yet
    seed.write("lib/deep.py", "value = 1\n")
    seed.commit("modules no pipeline reaches")

    def edit(repo: GitRepo) -> None:
        repo.append("pipelines/beta/prep/main.py", "import lib.extra\n")
        repo.append("lib/deep.py", "value = 2\n")

    scratch, kept = _both_ways(seed, tmp_path, edit)
    assert kept == scratch
    reasons = {(r.path, r.detail) for p in kept.pipelines if p.name == "beta" for r in p.reasons}
    assert ("lib/deep.py", "imported by pipelines/beta/prep/main.py via lib/extra.py") in reasons


def test_a_plan_reads_no_python_file_that_no_pipeline_reaches(seed: GitRepo, fresh: None) -> None:
    base = seed.head()
    seed.write("tests/test_scoring.py", "from lib.scoring import score\n\nassert score(1) == 1\n")
    seed.write("scripts/release.py", "import common.text\n")
    seed.append("lib/scoring.py", "# faster\n")
    head = seed.commit("tests and a script beside a change to an imported module")
    unreachable = {seed.git("rev-parse", f"{head}:{path}") for path in ("tests/test_scoring.py", "scripts/release.py")}
    BLOB_READS.clear()
    plan = plan_change(seed.root, base, head)
    assert names(plan) == ["alpha"]  # evaluate imports lib.scoring; the test file is no pipeline's
    assert seed.git("rev-parse", f"{head}:pipelines/alpha/evaluate/evaluate.py") in BLOB_READS
    assert unreachable.isdisjoint(BLOB_READS)


@pytest.mark.parametrize(("context", "pattern", "scope"), [
    ("", "utils", "utils"),
    ("", "pipelines/a/train/*", "pipelines/a/train"),
    ("", "*.py", ""),
    ("", "", ""),
    ("pipelines/a/train", "*", "pipelines/a/train"),
    ("pipelines/a/train", "src/", "pipelines/a/train/src"),
    ("", "**", ""),
])
def test_a_copy_source_is_indexed_under_the_folder_all_its_files_share(context: str, pattern: str,
                                                                        scope: str) -> None:
    assert source_scope(context, pattern) == scope


def test_the_copy_index_finds_a_path_through_itself_and_its_folders() -> None:
    index = CopyIndex({"utils": ("a", "b"), "pipelines/x/train": ("x-train",), "": ("everything",)},
                      {"pipelines/x/train/Dockerfile": ("x-train",)})
    assert index.candidates(["utils/metrics.py"]) == {"a", "b", "everything"}
    assert index.candidates(["utils"]) == {"a", "b", "everything"}
    assert index.candidates(["utilsx/y.py"]) == {"everything"}
    assert index.candidates(["pipelines/x/train/Dockerfile"]) == {"x-train", "everything"}
    assert build_copy_index({}).candidates(["anything"]) == set()


def _facts_of(seed: GitRepo, data: Path) -> str:
    use_disk_cache(data)
    base = seed.head()
    seed.append("pipelines/alpha/train/main.py", "# tuned\n")
    plan_change(seed.root, base, seed.commit("one component"))
    return tree_ids(seed.root, base)[0]


def test_kept_facts_are_read_back_by_a_new_process_and_a_damaged_file_is_ignored(seed: GitRepo, tmp_path: Path,
                                                                                 fresh: None) -> None:
    tree = _facts_of(seed, tmp_path)
    folder = next(tmp_path.glob("*/trees"))
    assert TreeStore(folder).get(tree).tree == tree
    (folder / f"{tree}{SUFFIX}").write_bytes(b"not a cache file")
    assert TreeStore(folder).get(tree) is None


def test_the_store_keeps_the_newest_trees_only(tmp_path: Path) -> None:
    store = TreeStore(tmp_path)
    for index in range(20):
        store.put(TreeFacts(tree=f"{index:040d}", config="c", entries={}, layout={}, copy_index=CopyIndex(),
                            load_index=LoadIndex(), installed=(), imports={}))
    assert len(list(tmp_path.glob(f"*{SUFFIX}"))) == 4  # `_KEEP_FILES`: the data folder stays bounded
    assert TreeStore(tmp_path).get(f"{19:040d}") is not None
