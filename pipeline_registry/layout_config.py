"""The `.kfp-bot.yaml` keys that declare a layout other than the template's.

`pipeline_files:` lists where pipelines are (globs or single files, several roots), how each is
named (file stem, folder, function, or a pattern) and which `@dsl.pipeline` function to take;
`exclude:` drops files such as tests; `images:` maps an image named inline in pipeline code to
the Dockerfile and build context that build it. A short form is accepted for the common case:
a plain string in `pipeline_files` is a glob with the defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pipeline_registry.config_rules import STRICT, After, Before

PLACEHOLDERS = ("stem", "folder", "function", "path")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# A pipeline name becomes a check name, a run id part and a `/run` argument: keep it plain.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _inside(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    if not cleaned or cleaned.startswith(("/", "../")) or "/../" in cleaned:
        raise ValueError("must be a path inside the repository, relative to its root")
    return cleaned


def _naming_rule(value: str) -> str:
    if value in ("stem", "folder", "function"):
        return value
    unknown = [p for p in _PLACEHOLDER.findall(value) if p not in PLACEHOLDERS]
    literal = _PLACEHOLDER.sub("x", value)
    if unknown or not NAME_PATTERN.match(literal):
        raise ValueError("must be 'stem', 'folder', 'function', a pattern using "
                         + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + " or a pipeline name")
    return value


def _short_form(value: Any) -> Any:
    return {"glob": value} if isinstance(value, str) else value


@dataclass(frozen=True)
class PipelineSource:
    """One entry of `pipeline_files:`: a glob (or one file), its naming rule and choices.

    `name` is `stem` (the file name without `.py`, the default), `folder` (the folder holding
    the file), `function` (the pipeline function's name), or a pattern using `{stem}`,
    `{folder}`, `{function}` and `{path}` (the file's folder with `/` as `-`), or a plain name
    for an entry that finds one pipeline. When a file defines
    several pipeline functions and none is chosen with `function`, each is a pipeline and, unless
    the rule names `{function}`, its name is `<name>-<function>`.
    """

    __pydantic_config__ = STRICT

    glob: Annotated[str | None, After(_inside)] = None
    file: Annotated[str | None, After(_inside)] = None
    function: str | None = None
    name: Annotated[str, After(_naming_rule)] = "stem"
    exclude: tuple[str, ...] = ()
    settings: Annotated[str | None, After(_inside)] = None

    def __post_init__(self) -> None:
        if (self.glob is None) == (self.file is None):
            raise ValueError("give either 'glob' (a pattern) or 'file' (one pipeline file)")

    @property
    def pattern(self) -> str:
        """The glob or file this entry matches."""
        return self.glob if self.glob is not None else self.file or ""

    @property
    def key(self) -> str:
        """`glob` or `file`: the key an error about what this entry matches points at."""
        return "glob" if self.glob is not None else "file"

    def names_function(self) -> bool:
        """True when the naming rule already tells the functions of one file apart."""
        return self.name == "function" or "{function}" in self.name


# An entry of `pipeline_files` as written in the file: a plain string is a glob with the defaults.
PipelineEntry = Annotated[PipelineSource, Before(_short_form)]


def _context(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().rstrip("/") or "."
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    if cleaned.startswith(("/", "../")) or "/../" in cleaned:
        raise ValueError("must be a path inside the repository, relative to its root")
    return cleaned or "."


@dataclass(frozen=True)
class ImageSource:
    """One entry of `images:`: how the image named `<key>` in pipeline code is built."""

    __pydantic_config__ = STRICT

    dockerfile: Annotated[str, After(_context)]
    context: Annotated[str | None, After(_context)] = None
