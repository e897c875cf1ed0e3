"""Parsing PR comment commands: `/run NAME k=v`, `/run all`, `/plan`, `/cancel [NAME]`, `/help`,
`/ok-to-run`.

A command stands on its own line, anywhere in the comment. Quoted lines (`> /run x`, as in a
reply) and fenced code blocks are not commands. Values may be quoted with single or double
quotes. Parsing is pure: it returns commands and problems, the handler decides what to say.
"""

from __future__ import annotations

import enum
import re
import shlex
from dataclasses import dataclass

_VERB = re.compile(r"^/([a-z][a-z-]*)$")


class CommandKind(enum.Enum):
    """The commands the bot understands."""

    RUN = "run"
    PLAN = "plan"
    CANCEL = "cancel"
    HELP = "help"
    OK_TO_RUN = "ok-to-run"

    @property
    def needs_write_access(self) -> bool:
        """Commands that start, stop or approve work need write access to the repository."""
        return self in (CommandKind.RUN, CommandKind.CANCEL, CommandKind.OK_TO_RUN)


ALL_PIPELINES = "all"


@dataclass(frozen=True)
class Command:
    """One parsed command line."""

    kind: CommandKind
    text: str
    pipeline: str | None = None
    assignments: tuple[tuple[str, str], ...] = ()

    @property
    def overrides(self) -> dict[str, str]:
        return dict(self.assignments)


@dataclass(frozen=True)
class CommandProblem:
    """A line that looks like a command but is not a valid one."""

    text: str
    message: str


def parse_comment(body: str) -> list[Command | CommandProblem]:
    """Every command (or problem) in a comment, in order."""
    results: list[Command | CommandProblem] = []
    in_fence = False
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("```") or line.startswith("~~~"):
            in_fence = not in_fence
            continue
        if in_fence or not line.startswith("/"):
            continue
        parsed = parse_line(line)
        if parsed is not None:
            results.append(parsed)
    return results


def parse_line(line: str) -> Command | CommandProblem | None:
    """One command line; None when the line is not meant as a command (e.g. a path)."""
    head = line.split(maxsplit=1)[0]
    match = _VERB.match(head)
    if match is None:
        return None
    verb = match.group(1)
    try:
        kind = CommandKind(verb)
    except ValueError:
        valid = ", ".join(f"/{k.value}" for k in CommandKind)
        return CommandProblem(line, f"unknown command /{verb}; valid commands: {valid}")
    try:
        words = shlex.split(line)[1:]
    except ValueError as exc:
        return CommandProblem(line, f"cannot parse arguments: {exc} (check the quotes)")
    return _build(kind, line, words)


def _build(kind: CommandKind, line: str, words: list[str]) -> Command | CommandProblem:
    if kind in (CommandKind.PLAN, CommandKind.HELP, CommandKind.OK_TO_RUN):
        if words:
            return CommandProblem(line, f"/{kind.value} takes no arguments")
        return Command(kind, line)
    if kind is CommandKind.CANCEL:
        if len(words) > 1:
            return CommandProblem(line, "usage: /cancel [PIPELINE]")
        return Command(kind, line, pipeline=words[0] if words else None)
    if not words:
        return CommandProblem(line, "usage: /run PIPELINE [key=value ...] or /run all")
    pipeline, rest = words[0], words[1:]
    if "=" in pipeline:
        return CommandProblem(line, "the pipeline name comes first: /run PIPELINE key=value")
    assignments = []
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep or not key:
            return CommandProblem(line, f"'{word}' is not key=value")
        assignments.append((key, value))
    if pipeline == ALL_PIPELINES and assignments:
        return CommandProblem(line, "/run all takes no parameters; name a pipeline to override them")
    return Command(kind, line, pipeline=pipeline, assignments=tuple(assignments))
