"""`PipelineDiffer`: the example monorepo compiled at two real commits and diffed.

The compiles are real (kfp 2, the bot's sandbox); the checks are what a reviewer would read: the
image whose inputs changed, the settings value, nothing for a comment-only edit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.pipeline_diffs import PipelineDiffer, UnavailableDiffs
from deploy.pipelines import RepositoryCompiler
from kfp_bot_errors import KfpBotError
from pipeline_registry.spec_diff import ChangeKind

PIPELINE = "training-pipeline"


@pytest.fixture
def differ(compile_cache, tmp_path):
    return PipelineDiffer(RepositoryCompiler(compile_cache), tmp_path / "cache")


def test_a_component_change_and_a_settings_value_are_what_the_diff_shows(example_repo, differ):
    base = example_repo.head()
    example_repo.append(f"pipelines/{PIPELINE}/train/main.py", "\n# faster loop\n")
    example_repo.write(f"pipelines/{PIPELINE}/settings.yaml",
                       (example_repo.root / f"pipelines/{PIPELINE}/settings.yaml").read_text()
                       .replace("epochs: 2", "epochs: 4"))
    example_repo.commit("tune training")

    diff = differ.diff(example_repo.root, PIPELINE, base, "HEAD")

    kinds = {(c.kind, c.subject) for c in diff.changes}
    assert kinds == {(ChangeKind.IMAGE, "train"), (ChangeKind.SETTING, "parameters.epochs")}
    image = next(c for c in diff.changes if c.kind is ChangeKind.IMAGE)
    assert image.before != image.after and "training-pipeline-train:content-" in (image.after or "")


def test_a_comment_in_the_pipeline_file_changes_nothing_compiled(example_repo, differ):
    base = example_repo.head()
    example_repo.append(f"pipelines/{PIPELINE}/{PIPELINE}.py", "\n# reviewed\n")

    diff = differ.diff(example_repo.root, PIPELINE, base, None)  # the working tree

    assert diff.unchanged, diff.changes


def test_a_new_pipeline_has_nothing_to_compare_with(example_repo, differ):
    base = example_repo.head()
    source = example_repo.root / "pipelines/hello-pipeline"
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = str(path.relative_to(source)).replace("hello-pipeline", "greeting")
        example_repo.write(f"pipelines/greeting/{relative}", path.read_text().replace("hello-pipeline", "greeting"))
    example_repo.remove("pipelines/hello-pipeline")
    example_repo.commit("hello-pipeline becomes greeting")

    assert differ.diff(example_repo.root, "greeting", base, "HEAD").added
    assert differ.diff(example_repo.root, "hello-pipeline", base, "HEAD").removed


def test_the_base_is_compiled_once_per_tree(example_repo, differ):
    base = example_repo.head()
    differ.diff(example_repo.root, PIPELINE, base, None)
    cached = sorted(differ.specs_dir.iterdir())
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns

    example_repo.append(f"pipelines/{PIPELINE}/{PIPELINE}.py", "\n# again\n")
    differ.diff(example_repo.root, PIPELINE, base, None)

    assert sorted(differ.specs_dir.iterdir()) == cached and cached[0].stat().st_mtime_ns == stamp


def test_an_unknown_revision_or_pipeline_is_a_clear_error(example_repo, differ):
    with pytest.raises(KfpBotError, match="no-such-branch"):
        differ.diff(example_repo.root, PIPELINE, "no-such-branch", None)
    with pytest.raises(KfpBotError, match="nope"):
        differ.diff(example_repo.root, "nope", "HEAD", None)


def test_against_the_base_the_head_side_is_the_package_the_run_compiled(example_repo, differ, tmp_path):
    base = example_repo.head()
    example_repo.write(f"pipelines/{PIPELINE}/settings.yaml",
                       (example_repo.root / f"pipelines/{PIPELINE}/settings.yaml").read_text()
                       .replace("epochs: 2", "epochs: 4"))
    example_repo.commit("tune training")
    package = differ.compiler.compile(example_repo.root, PIPELINE, None, tmp_path / "run").package_path

    diff = differ.diff_against_base(example_repo.root, PIPELINE, base, head_package=package)
    assert [(c.kind, c.subject, c.before, c.after) for c in diff.changes] == \
        [(ChangeKind.SETTING, "parameters.epochs", "2", "4")]

    # what the run compiled is what is compared (nothing is compiled again at the head)
    text = package.read_text()
    image = next(word for word in text.split() if "training-pipeline-train:content-" in word).strip("'\"")
    package.write_text(text.replace(image, "gcr.io/elsewhere/train:other"))
    changed = differ.diff_against_base(example_repo.root, PIPELINE, base, head_package=package)
    assert (ChangeKind.IMAGE, "train", image, "gcr.io/elsewhere/train:other") in \
        [(c.kind, c.subject, c.before, c.after) for c in changed.changes]


def test_where_nothing_may_be_compiled_the_diff_says_why():
    diff = UnavailableDiffs("No pipeline diff: not here.").diff_against_base(Path("unused"), PIPELINE, "abc")
    assert diff.note == "No pipeline diff: not here." and not diff.unchanged
