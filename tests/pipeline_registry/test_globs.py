"""Glob patterns of `.kfp-bot.yaml` (`ignore`, `global_files`) and `.dockerignore`."""

from __future__ import annotations

import pytest

from pipeline_registry.globs import GlobSet, IgnoreRules, glob_match, glob_regex, literal_prefix, rest_regex
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


PATTERNS = ("a", "a/b", "a/*", "a/*.py", "a/**", "a/**/c.py", "**/c.py", "*", "a/b?/c", "a/[bc]/d", "a/b/**",
            "x\\*y", "pipelines/p/train/*")
PATHS = ("a", "ab", "a/b", "a/bc", "a/b/c.py", "a/b1/c", "a/c/d", "c.py", "x*y", "pipelines/p/train/main.py",
         "pipelines/p/train/sub/x.py", "pipelines/p/trainer/x")


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matching_by_literal_prefix_and_the_rest_means_what_the_whole_pattern_means(pattern: str) -> None:
    for path in PATHS:
        assert glob_match(pattern, path) == bool(glob_regex(pattern).match(path)), (pattern, path)
    prefix, _ = rest_regex(pattern)
    assert not any(ch in prefix for ch in "*?[")
