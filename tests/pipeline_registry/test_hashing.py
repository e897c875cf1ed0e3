"""Content hashes of component images: rebuild exactly when what goes into the image changes."""

from __future__ import annotations

from pipeline_registry.hashing import component_hash, content_hash, image_tag
from pipeline_registry.models import ComponentPlan
from pipeline_registry.planner import plan_change
from pipeline_registry.repo_config import BuildContext
from pipeline_registry.repository import Repository
from tests.pipeline_registry.conftest import write_files
from tests.support.gitrepo import GitRepo


def _components(plan, pipeline: str) -> dict[str, ComponentPlan]:
    found = plan.get(pipeline)
    assert found is not None
    return {c.component.name: c for c in found.components}


def _images(repo: GitRepo, revision: str, pipeline: str) -> dict[str, str]:
    with Repository.open(repo.root, revision) as repository:
        return repository.component_images(pipeline)


def test_only_the_component_whose_inputs_changed_is_rebuilt(seed: GitRepo) -> None:
    base = seed.head()
    write_files(seed, {"utils/settings.json": '{"changed": true}\n'})
    head = seed.commit("utils")
    components = _components(plan_change(seed.root, base, head), "alpha")
    assert {name: c.rebuild for name, c in components.items()} == {"evaluate": False, "train": True, "notify": False}
    before, after = _images(seed, base, "alpha"), _images(seed, head, "alpha")
    assert components["train"].image == after["pipelines/alpha/train"] != before["pipelines/alpha/train"]
    assert components["evaluate"].image == after["pipelines/alpha/evaluate"] == before["pipelines/alpha/evaluate"]


def test_a_pipeline_file_change_reuses_every_image(seed: GitRepo) -> None:
    base = seed.head()
    seed.append("pipelines/alpha/alpha.py", "# comment\n")
    plan = plan_change(seed.root, base, seed.commit("comment"))
    assert [c.rebuild for c in plan.get("alpha").components] == [False, False, False]
    assert plan.get("alpha").images_to_build == ()


def test_components_without_a_dockerfile_have_no_image(seed: GitRepo) -> None:
    base = seed.head()
    seed.append("components/validate/component.yaml", "# v2\n")
    plan = plan_change(seed.root, base, seed.commit("validate"))
    validate = _components(plan, "beta")["validate"]
    assert (validate.image, validate.content_hash, validate.rebuild) == (None, None, False)


def test_ignored_files_do_not_change_the_hash(seed: GitRepo) -> None:
    base = seed.head()
    write_files(seed, {"utils/README.md": "docs\n"})
    head = seed.commit("docs")
    assert _images(seed, base, "alpha") == _images(seed, head, "alpha")


def test_the_tag_depends_on_content_not_on_the_commit(seed: GitRepo) -> None:
    first = seed.head()
    seed.append("utils/io_helpers.py", "# tweak\n")
    seed.commit("tweak")
    seed.git("revert", "--no-edit", "HEAD")
    reverted = seed.head()
    assert reverted != first
    assert _images(seed, first, "alpha") == _images(seed, reverted, "alpha")
    assert plan_change(seed.root, first, reverted).pipelines == ()


def test_the_working_tree_hashes_like_a_commit(seed: GitRepo) -> None:
    seed.append("utils/io_helpers.py", "# wip\n")
    worktree = _images(seed, None, "alpha")  # type: ignore[arg-type]
    seed.commit("wip")
    assert worktree == _images(seed, "HEAD", "alpha")


def test_the_build_context_mode_is_part_of_the_hash() -> None:
    files = [("Dockerfile", "a" * 40), ("main.py", "b" * 40)]
    assert content_hash(files, BuildContext.REPOSITORY) != content_hash(files, BuildContext.COMPONENT)
    assert content_hash(files, BuildContext.COMPONENT) == content_hash(list(reversed(files)), BuildContext.COMPONENT)
    assert image_tag("0123456789abcdef0123") == "content-0123456789abcdef"


def test_a_new_image_registry_rebuilds_every_image(seed: GitRepo) -> None:
    base = seed.head()
    write_files(seed, {".kfp-bot.yaml": "image_registry: europe-docker.pkg.dev/proj/images\n"})
    plan = plan_change(seed.root, base, seed.commit("registry"))
    train = _components(plan, "alpha")["train"]
    assert train.rebuild and train.image.startswith("europe-docker.pkg.dev/proj/images/alpha-train:content-")


def _by_definition(repository: Repository, component) -> str:
    """`content_hash` of the image inputs, pair by pair: what `component_hash` must equal."""
    graph = repository.graph
    context = graph.image_context(component)
    pairs = [(context.relative(p) or p, graph.snapshot.digest(p)) for p in graph.image_inputs(component)]
    return content_hash(pairs, graph.config.build_context)


def test_image_hashes_equal_the_hash_of_their_inputs_pair_by_pair(seed: GitRepo) -> None:
    # Own build contexts, a `.dockerignore` with an exception, a file two sources select, an
    # ignored file copied, a glob: each image's hash is still that of its inputs.
    write_files(seed, {
        ".kfp-bot.yaml": "build_context: component\n",
        "pipelines/alpha/train/.dockerignore": "*.txt\n!keep.txt\n",
        "pipelines/alpha/train/keep.txt": "k\n", "pipelines/alpha/train/drop.txt": "d\n",
        "pipelines/alpha/train/Dockerfile": "FROM x\nCOPY . /app\nCOPY main.py keep.txt /app/\nCOPY NOTES.md /\n",
        "pipelines/alpha/train/NOTES.md": "n\n",
        "pipelines/alpha/evaluate/Dockerfile": "FROM x\nCOPY *.py /app/\n",
    })
    seed.commit("contexts")
    with Repository.open(seed.root, "HEAD") as repository:
        graph = repository.graph
        components = [c for c in graph.components.values() if c.builds_image]
        assert len(components) >= 4
        for component in components:
            assert component_hash(graph, component) == _by_definition(repository, component), component.path


def test_a_mode_change_of_an_image_input_keeps_its_image(seed: GitRepo) -> None:
    # The diff names the file, but its blob is the same: the image's content is unchanged.
    base = seed.head()
    seed.git("update-index", "--chmod=+x", "utils/settings.json")
    seed.git("commit", "-q", "-m", "chmod")
    components = _components(plan_change(seed.root, base, seed.head()), "alpha")
    assert components["train"].rebuild is False
    assert components["train"].image == _images(seed, base, "alpha")["pipelines/alpha/train"]
