"""`kfp-bot diff`: a real repository, two commits, the command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bot.test_cli import assert_clean_failure, kfp_bot
from tests.support.gitrepo import GitRepo

TRAINING = "pipelines/training-pipeline"


def test_diff_names_the_image_and_the_settings_value_that_changed(example_repo: GitRepo, tmp_path: Path) -> None:
    example_repo.branch("feature")
    example_repo.append(f"{TRAINING}/train/main.py", "\n# a faster loop\n")
    settings = example_repo.root / TRAINING / "settings.yaml"
    example_repo.write(f"{TRAINING}/settings.yaml", settings.read_text().replace("epochs: 2", "epochs: 4"))
    example_repo.commit("tune training")

    text = kfp_bot("diff", "training-pipeline", "hello-pipeline", "--repo", str(example_repo.root),
                   "--base", "main", "--head", "feature", data_dir=tmp_path / "data")
    assert text.returncode == 0, text.stderr
    assert "training-pipeline: 2 changes (base main → head feature)" in text.stdout
    assert "hello-pipeline: unchanged" in text.stdout
    image_line = next(line for line in text.stdout.splitlines() if line.strip().startswith("image"))
    assert "training-pipeline-train:content-" in image_line and "→" in image_line
    assert any(line.split()[:4] == ["settings.yaml", "parameters.epochs", "2", "→"]
               for line in text.stdout.splitlines())

    as_json = kfp_bot("diff", "training-pipeline", "--repo", str(example_repo.root), "--base", "main",
                      "--head", "feature", "--json", data_dir=tmp_path / "data")
    document = json.loads(as_json.stdout)
    changes = document["pipelines"][0]["changes"]
    assert {(c["kind"], c["subject"]) for c in changes} == {("image", "train"), ("setting", "parameters.epochs")}


def test_diff_of_an_unknown_revision_is_one_clear_line(example_repo: GitRepo, tmp_path: Path) -> None:
    result = kfp_bot("diff", "training-pipeline", "--repo", str(example_repo.root), "--base", "nope",
                     data_dir=tmp_path / "data")
    assert_clean_failure(result, "nope")
