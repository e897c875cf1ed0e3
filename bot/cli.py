"""The `kfp-bot` command line: plan, check, compile, run and serve.

The same questions the service answers on GitHub, answered on a laptop with the same code.
This is an edge: every `KfpBotError` becomes one clear line on stderr and a non-zero exit
status, never a traceback (`--debug` shows one for unexpected failures).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__, cli_commands
from bot.cli_commands import EXIT_FAILED, EXIT_USAGE
from bot.config import ConfigurationError, load_command_line_settings
from kfp_bot_errors import KfpBotError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also documents every command in `--help`)."""
    parser = argparse.ArgumentParser(
        prog="kfp-bot",
        description="CI/CD for Kubeflow Pipelines monorepos: see which pipelines a change affects, "
                    "check, compile and run them locally, or serve the GitHub webhook.")
    parser.add_argument("--version", action="version", version=f"kfp-bot {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    plan = commands.add_parser("plan", help="pipelines affected by the changes between two revisions")
    plan.add_argument("--repo", type=Path, default=Path("."), help="repository folder (default: .)")
    plan.add_argument("--base", required=True, help="base revision (branch, tag or commit)")
    plan.add_argument("--head", default=None, help="head revision (default: the working tree)")
    plan.add_argument("--json", action="store_true", help="print one JSON object")

    check = commands.add_parser("check", help="validate, compile and check parameters of pipelines")
    check.add_argument("names", nargs="*", metavar="NAME", help="pipelines to check (default: all)")
    check.add_argument("--repo", type=Path, default=Path("."), help="repository folder (default: .)")

    compile_ = commands.add_parser("compile", help="compile a pipeline with the bot's images")
    compile_.add_argument("name", metavar="NAME")
    compile_.add_argument("--repo", type=Path, default=Path("."), help="repository folder (default: .)")
    compile_.add_argument("--out", type=Path, default=None, help="output file (default: stdout)")
    compile_.add_argument("--image-tag", default=None,
                          help="tag for component images (default: their content hash)")

    run = commands.add_parser("run", help="run a pipeline locally with kfp.local")
    run.add_argument("name", metavar="NAME")
    run.add_argument("--repo", type=Path, default=Path("."), help="repository folder (default: .)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a settings.yaml parameter (repeatable)")
    run.add_argument("--timeout", type=float, default=None, help="seconds before the run is stopped")

    diff = commands.add_parser("diff", help="what a change does to compiled pipelines (structural diff)")
    diff.add_argument("names", nargs="+", metavar="NAME", help="pipelines to compare")
    diff.add_argument("--repo", type=Path, default=Path("."), help="repository folder (default: .)")
    diff.add_argument("--base", required=True, help="base revision; compared from its merge base with the head")
    diff.add_argument("--head", default=None, help="head revision (default: the working tree)")
    diff.add_argument("--json", action="store_true", help="print one JSON object")

    init = commands.add_parser("init", help="write a starting .kfp-bot.yaml by looking at the repository")
    init.add_argument("--repo", type=Path, default=Path("."), help="repository folder (default: .)")
    init.add_argument("--force", action="store_true", help="replace an existing .kfp-bot.yaml")

    serve = commands.add_parser("serve", help="serve the GitHub webhook on embedded defaults")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    return parser


def run() -> None:
    """The `kfp-bot` and `python -m bot` process: `main`, then its exit status."""
    sys.exit(main(exit_at_once=True))


def main(argv: Sequence[str] | None = None, *, exit_at_once: bool = False) -> int:
    """What `kfp-bot` does with `argv`; its exit status. With `exit_at_once` (a process of its
    own), `plan` ends the process as soon as its answer is written (`_exit_now`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"compile": cli_commands.compile_,
                "run": cli_commands.run, "serve": cli_commands.serve, "init": cli_commands.init,
                "diff": cli_commands.diff}
    try:
        if args.command == "plan":  # its one setting, read without pydantic: `plan` starts fast
            if exit_at_once:
                _no_collection()
            code = cli_commands.plan(args, load_command_line_settings())
            if exit_at_once:
                _exit_now(code)
            return code
        if args.command == "check":  # starts its sandboxed compilers first, then loads the settings
            return cli_commands.check(args, load_command_line_settings())
        from bot.config import load_settings

        return handlers[args.command](args, load_settings())
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KfpBotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the edge: never a traceback unless asked for
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug and report it)",
              file=sys.stderr)
        return EXIT_FAILED



def _no_collection() -> None:
    """Turn Python's cyclic garbage collector off for a `plan` process that ends with its answer.

    The planner pauses collection while it plans and resumes it afterwards; the first collection
    after that walks every object the plan left alive (a tree's facts, the parses), 20 to 75 ms
    at 3,000 pipelines, to find no garbage in a process about to end (`_exit_now`). Collection
    found off stays off (`pipeline_registry.planner`); reference counting still frees what the
    plan drops."""
    gc.disable()


def _exit_now(code: int) -> None:
    """End the process without tearing down its heap. A plan of a large monorepo leaves hundreds of
    thousands of objects (parses, a tree's facts) that the interpreter would free one by one at
    exit, 0.1 to 0.2 s at 3,000 pipelines, for a process that is ending anyway. `plan` has written
    its caches (the planner flushes them) and its answer before this; only the standard streams
    are left to flush, and it leaves nothing that an exit handler would remove."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away had all it wanted
            stream.flush()
    os._exit(code)
