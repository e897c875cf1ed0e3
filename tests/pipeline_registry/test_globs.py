"""Glob patterns of `.kfp-bot.yaml` (`ignore`, `global_files`) and `.dockerignore`."""

from __future__ import annotations

import pytest

from pipeline_registry.globs import GlobSet, IgnoreRules, literal_prefix
from pipeline_registry.repo_config import DEFAULT_IGNORE


@pytest.mark.parametrize("path, ignored", [
    ("README.md", True), ("pipelines/x/README.md", True), ("docs/a/b.png", True), ("LICENSE", True),
    ("LICENSE.txt", True), ("pipelines/x/LICENSE", False), ("pipelines/x/x.py", False),
    ("docsite/index.html", False), ("notes.mdx", False),
])
def test_default_ignore(path: str, ignored: bool) -> None:
    assert (GlobSet(DEFAULT_IGNORE).match(path) is not None) is ignored


@pytest.mark.parametrize("pattern, path, matches", [
    ("requirements*.txt", "requirements-dev.txt", True),
    ("requirements*.txt", "sub/requirements.txt", False),
    ("*.txt", "a/b.txt", False),
    ("**/*.txt", "a/b.txt", True),
    ("ci", "ci/deep/x.sh", True),
    ("ci/**", "ci/x.sh", True),
    ("a/**/b.py", "a/b.py", True),
    ("a/**/b.py", "a/x/y/b.py", True),
    ("/setup.cfg", "setup.cfg", True),
    ("./setup.cfg", "setup.cfg", True),
    ("[!a]*.py", "b.py", True),
    ("[!a]*.py", "a.py", False),
    ("file?.py", "file1.py", True),
    ("file?.py", "file/1.py", False),
])
def test_patterns(pattern: str, path: str, matches: bool) -> None:
    assert (GlobSet([pattern]).match(path) == pattern.lstrip("./")) is matches


def test_dockerignore_last_match_wins() -> None:
    rules = IgnoreRules("*.md\n!README.md\nbuild\n# comment\n\n")
    assert rules.excluded("NOTES.md") and rules.excluded("build/x/y.o")
    assert not rules.excluded("README.md") and not rules.excluded("src/NOTES.md")


def test_literal_prefix() -> None:
    assert literal_prefix("a/b/*.py") == "a/b/"
    assert literal_prefix("a/b?/c") == "a/"
    assert literal_prefix("*.py") == ""
    assert literal_prefix("a/b") == "a/b"
