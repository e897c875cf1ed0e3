"""Parsing PR comment commands: what a user types and what the bot understands of it."""

from __future__ import annotations

import pytest

from handlers.comment_commands import Command, CommandKind, CommandProblem, parse_comment


def test_run_with_overrides_anywhere_in_the_comment() -> None:
    body = "Looks good, let's try a short run.\n\n/run head-pose-pipeline epochs=1 lr=0.01\nthanks!"
    [command] = parse_comment(body)
    assert command == Command(CommandKind.RUN, "/run head-pose-pipeline epochs=1 lr=0.01",
                              pipeline="head-pose-pipeline",
                              assignments=(("epochs", "1"), ("lr", "0.01")))


def test_quoted_values_keep_spaces_and_equals() -> None:
    [command] = parse_comment("/run hello-pipeline name='Ada Lovelace' note=\"a=b c\"")
    assert command.overrides == {"name": "Ada Lovelace", "note": "a=b c"}


@pytest.mark.parametrize("text,kind,pipeline", [
    ("/run all", CommandKind.RUN, "all"),
    ("/plan", CommandKind.PLAN, None),
    ("/cancel", CommandKind.CANCEL, None),
    ("/cancel training-pipeline", CommandKind.CANCEL, "training-pipeline"),
    ("/help", CommandKind.HELP, None),
    ("/ok-to-run", CommandKind.OK_TO_RUN, None),
])
def test_every_command(text: str, kind: CommandKind, pipeline: str | None) -> None:
    [command] = parse_comment(text)
    assert isinstance(command, Command)
    assert (command.kind, command.pipeline) == (kind, pipeline)


def test_several_commands_in_one_comment() -> None:
    commands = parse_comment("/ok-to-run\n/run a x=1\n/run b")
    assert [(c.kind, c.pipeline) for c in commands] == [
        (CommandKind.OK_TO_RUN, None), (CommandKind.RUN, "a"), (CommandKind.RUN, "b")]


def test_quotes_code_blocks_and_paths_are_not_commands() -> None:
    body = "> /run a\n```\n/run b\n```\n/usr/local/bin/python is used\nsee /run in the docs"
    assert parse_comment(body) == []


@pytest.mark.parametrize("text,message", [
    ("/deploy prod", "unknown command /deploy"),
    ("/run", "usage: /run PIPELINE"),
    ("/run a epochs", "'epochs' is not key=value"),
    ("/run epochs=3", "the pipeline name comes first"),
    ("/run all epochs=3", "/run all takes no parameters"),
    ("/run a name='unterminated", "cannot parse arguments"),
    ("/plan now", "/plan takes no arguments"),
    ("/cancel a b", "usage: /cancel [PIPELINE]"),
])
def test_bad_commands_say_what_is_wrong(text: str, message: str) -> None:
    [problem] = parse_comment(text)
    assert isinstance(problem, CommandProblem)
    assert message in problem.message


def test_write_access_is_needed_only_to_start_stop_or_approve() -> None:
    assert {k for k in CommandKind if k.needs_write_access} == {
        CommandKind.RUN, CommandKind.CANCEL, CommandKind.OK_TO_RUN}
