"""Dockerfile COPY/ADD sources and the repository files that go into an image."""

from __future__ import annotations

import pytest

from pipeline_registry.dockerfile import ImageContext, parse_copy_sources, select
from pipeline_registry.globs import IgnoreRules
from pipeline_registry.models import Component


def sources(text: str) -> list[str]:
    return [s.source for s in parse_copy_sources(text)]


def test_seed_style_copies_from_the_repository_root() -> None:
    text = "FROM python:3.7\nWORKDIR /app\nCOPY utils ./utils\nCOPY pipelines/head-pose-pipeline/training/* ./\n"
    found = parse_copy_sources(text)
    assert [(s.instruction, s.line, s.source) for s in found] == [
        ("COPY", 3, "utils"), ("COPY", 4, "pipelines/head-pose-pipeline/training/*")]


def test_several_sources_line_continuations_and_comments() -> None:
    text = ("FROM x\n"
            "COPY a.py \\\n"
            "     # a comment inside the instruction\n"
            "     b.py \\\n"
            "\n"
            "     /app/\n"
            "RUN echo COPY not-a-source /x\n")
    assert sources(text) == ["a.py", "b.py"]
    assert parse_copy_sources(text)[0].line == 2


def test_json_form_flags_and_lowercase_instructions() -> None:
    text = ('FROM x\nCOPY ["src/a b.txt", "conf/", "/app/"]\n'
            "copy --chown=app:app --chmod=644 --link data/ /data/\n"
            "ADD --checksum=sha256:abc lib.tar.gz /opt/\n")
    assert sources(text) == ["src/a b.txt", "conf", "data", "lib.tar.gz"]


def test_stage_copies_urls_and_heredocs_are_not_context_files() -> None:
    text = ("FROM python AS build\nCOPY requirements.txt .\n"
            "FROM python\nCOPY --from=build /venv /venv\nCOPY --from=ghcr.io/x/y:1 /bin/tool /bin/\n"
            "ADD https://example.com/model.bin /models/\nADD git@github.com:o/r.git /src\n"
            "COPY <<EOF /app/config.ini\n[main]\nCOPY fake /x\nEOF\n"
            "COPY main.py /app/\n")
    assert sources(text) == ["requirements.txt", "main.py"]


def test_paths_are_normalised_and_dot_is_the_whole_context() -> None:
    assert sources("COPY ./src/../lib/ /app\nCOPY /abs/path /app\nCOPY . /app\nCOPY ../outside /x\n") == [
        "lib", "abs/path", ""]


def test_arg_and_env_defaults_are_substituted_and_unknown_variables_match_anything() -> None:
    text = ("ARG COMPONENT=train\nENV BASE=pipelines/x\n"
            "COPY ${BASE}/${COMPONENT}/main.py /app/\nCOPY $UNSET/cfg /app/\n")
    assert sources(text) == ["pipelines/x/train/main.py", "**/cfg"]


def test_the_escape_directive_changes_the_continuation_character() -> None:
    assert sources("# escape=`\nFROM x\nCOPY a `\n  b c:\\\\app\n") == ["a", "b"]


def _context(dockerfile_text: str, context: str = "", ignore: str | None = None,
             dockerfile: str = "pipelines/p/train/Dockerfile") -> ImageContext:
    component = Component(name="train", path="pipelines/p/train", shared=False, dockerfile=dockerfile,
                          image_repository="r/p-train")
    return ImageContext(component, dockerfile, context, parse_copy_sources(dockerfile_text),
                        ".dockerignore" if ignore is not None else None,
                        IgnoreRules(ignore) if ignore is not None else None)


PATHS = tuple(sorted([
    "utils/__init__.py", "utils/io.py", "utils/deep/x.py", "utilsx/y.py",
    "pipelines/p/train/Dockerfile", "pipelines/p/train/main.py", "pipelines/p/train/sub/helper.py",
    "pipelines/p/eval/main.py", "README.md", "setup.py",
]))


def test_inputs_follow_directories_globs_and_include_the_dockerfile() -> None:
    context = _context("COPY utils ./utils\nCOPY pipelines/p/train/* ./\n")
    assert context.inputs(PATHS) == {
        "utils/__init__.py", "utils/io.py", "utils/deep/x.py",
        "pipelines/p/train/Dockerfile", "pipelines/p/train/main.py", "pipelines/p/train/sub/helper.py"}


@pytest.mark.parametrize("source, expected", [
    ("utils/*.py", ["utils/__init__.py", "utils/io.py"]),
    ("utils/i?.py", ["utils/io.py"]),
    ("utils/[a-j]*", ["utils/deep/x.py", "utils/io.py"]),  # a matched folder is copied whole
    ("*.py", ["setup.py"]),
    ("utils", ["utils/__init__.py", "utils/deep/x.py", "utils/io.py"]),
    ("utils/io.py", ["utils/io.py"]),
    ("", list(PATHS)),
])
def test_select_matches_like_docker(source: str, expected: list[str]) -> None:
    assert select(PATHS, "", source) == sorted(expected)


def test_a_component_build_context_makes_sources_relative_to_the_component() -> None:
    context = _context("COPY . /app\n", context="pipelines/p/train")
    assert context.inputs(PATHS) == {"pipelines/p/train/Dockerfile", "pipelines/p/train/main.py",
                                     "pipelines/p/train/sub/helper.py"}
    assert context.copied_by("utils/io.py") is None
    assert context.copied_by("pipelines/p/train/sub/helper.py").line == 1


def test_dockerignore_patterns_and_exceptions() -> None:
    context = _context("COPY utils ./utils\n", ignore="# comment\nutils/deep\nutils/*.py\n!utils/io.py\n")
    assert context.inputs(PATHS) == {"pipelines/p/train/Dockerfile", ".dockerignore", "utils/io.py"}
    assert context.copied_by("utils/deep/x.py") is None


def test_copied_by_names_the_instruction() -> None:
    context = _context("FROM x\nCOPY setup.py .\nCOPY utils/ ./utils/\n")
    assert context.copied_by("utils/io.py").line == 3
    assert context.copied_by("utilsx/y.py") is None
