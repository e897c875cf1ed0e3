"""The bodies of the `kfp-bot` commands; `bot.cli` parses arguments, calls them and catches errors.

Each function takes the parsed arguments and the settings and returns an exit status. Output
for people goes to stdout, problems to stderr, one line each, naming the file to fix.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kfp_bot_errors import KfpBotError
from pipeline_registry.cache_control import PARSES_DIR, use_disk_cache
from pipeline_registry.json_text import plan_json, pretty_json
from pipeline_registry.planner import plan_change
from pipeline_registry.snapshot import merge_base

# `plan` starts fast: settings, settings.yaml models, compiler and runners load with the commands that use them.
if TYPE_CHECKING:
    from bot.config import CommandLineSettings, Settings
    from deploy.compiler.scratch import ScratchTree
    from deploy.compiler.warm import DriverPool
    from pipeline_registry.models import Plan
    from pipeline_registry.repository import Repository
    from pipeline_registry.settings import PipelineSettings, RunOptions

# Exit statuses: a command's outcome, or (EXIT_USAGE, from `bot.cli`) bad arguments or settings.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def print_json(value: object) -> None:
    """Deterministic, pretty JSON on stdout (`json.dumps(value, indent=2)`, built faster)."""
    sys.stdout.write(pretty_json(value) + "\n")


def plan(args: argparse.Namespace, settings: CommandLineSettings | Settings) -> int:
    """`kfp-bot plan`: affected pipelines, reasons and images, as a table or JSON."""
    # Like `git diff base...head`: what the branch changed since it left `base`.
    use_disk_cache(settings.cache_dir / PARSES_DIR)  # parses shared with the service and later runs
    base = merge_base(args.repo, args.base, args.head or "HEAD")
    result = plan_change(args.repo, base, args.head)
    if args.json:
        sys.stdout.write(plan_json(result) + "\n")  # print_json(result.to_json()), written straight from the plan
    else:
        print(render_plan(result))
    return EXIT_OK


def render_plan(result: Plan) -> str:
    """The plan as a small human-readable report."""
    head = result.head[:10] if result.head else "working tree"
    lines = [f"base {result.base[:10]} → head {head}", *(f"warning: {w}" for w in result.warnings)]
    if not result.pipelines:
        lines.append("No pipelines affected.")
        return "\n".join(lines)
    lines.append(f"{len(result.pipelines)} pipeline(s) affected:")
    for pipeline in result.pipelines:
        lines.append("")
        lines.append(f"● {pipeline.name} ({pipeline.change.value})")
        for reason in pipeline.reasons:
            lines.append(f"    because {reason.text}")
        for component in pipeline.components:
            if component.image is None:
                continue
            action = "build" if component.rebuild else "reuse"
            lines.append(f"    {action:5} {component.component.name:20} {component.image}")
    return "\n".join(lines)


def check(args: argparse.Namespace, early: CommandLineSettings) -> int:
    """`kfp-bot check`: structure, settings and parameters of every (or the named) pipeline."""
    from deploy.compiler.scratch import ScratchTree
    from deploy.compiler.warm import DriverPool, start_remembered

    if not Path(args.repo).is_dir():  # named by the repository's own check, below
        from bot.config import load_settings

        return _check(args, load_settings(), None, None, Path())
    with tempfile.TemporaryDirectory(prefix="kfp-bot-check-") as tmp, ScratchTree(args.repo) as scratch, \
            contextlib.ExitStack() as closing:
        # The sandboxed interpreters the last check of this repository used start first and import
        # kfp while the bot loads its settings and models, reads the repository and checks the
        # pipelines' settings. A guess: in another sandbox (other settings) they go unused.
        guessed = start_remembered(early.cache_dir, args.repo, allow_unsandboxed=True, writable=[scratch.root])
        if guessed is not None:
            closing.callback(guessed.close)
        from bot.config import load_settings
        from bot.sandboxing import command_line_sandbox

        settings = load_settings()
        sandbox = command_line_sandbox(settings)
        drivers = guessed if guessed is not None and guessed.sandbox == sandbox else DriverPool(sandbox)
        closing.callback(drivers.close)
        return _check(args, settings, scratch, drivers, Path(tmp))


def _check(args: argparse.Namespace, settings: Settings, scratch: ScratchTree | None, drivers: DriverPool | None,
           tmp: Path) -> int:
    from bot.sandboxing import command_line_compiler
    from pipeline_registry.parameters import resolve_parameters
    from pipeline_registry.repository import Repository

    repository = Repository.open(args.repo)
    repository.graph.require_pipelines()  # checking nothing is a failure, never a silent pass
    names = args.names or sorted(repository.pipelines())
    compiler = command_line_compiler(settings, drivers.sandbox if drivers else None)
    # Every pipeline in one sandboxed interpreter per compile environment, one copy of the tree; the
    # interpreters not started yet start now and import kfp while the settings are checked.
    compiler.start_drivers(args.repo, names, scratch, pool=drivers)
    problems: dict[str, KfpBotError] = {}
    checked: dict[str, PipelineSettings] = {}
    for name in names:
        try:
            pipeline = repository.pipeline(name)
            if pipeline.pipeline_file is None:
                raise KfpBotError(f"{pipeline.path}: no pipeline file",
                                  hint=f"add {pipeline.path}/{name}.py defining a @dsl.pipeline")
            checked[name] = repository.settings(name)
            _check_run_options(repository, name, checked[name].run, settings)
        except KfpBotError as exc:
            problems[name] = exc
    to_compile = [name for name in names if name not in problems]
    try:
        outcomes = compiler.compile_many(args.repo, to_compile, tmp, scratch=scratch,
                                         drivers=drivers) if to_compile else {}
    except KfpBotError as exc:  # nothing compiled (no sandbox): every pipeline says why
        outcomes = dict.fromkeys(to_compile, exc)
    for name in names:
        outcome = problems.get(name) or outcomes[name]
        try:
            if isinstance(outcome, KfpBotError):
                raise outcome
            resolve_parameters(checked[name], {}, outcome.inputs)
        except KfpBotError as exc:
            problems[name] = exc
            for line in _problem_lines(exc):
                print(f"{name}: {line}", file=sys.stderr)
            continue
        print(f"ok  {name}: {len(checked[name].parameters)} parameter(s), "
              f"{len(outcome.inputs)} input(s), compiled with kfp {outcome.sdk_version}")
        for note in outcome.notes:
            print(f"    note: {note}")
    if problems:
        print(f"{len(problems)} of {len(names)} pipeline(s) have problems", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _check_run_options(repository: Repository, name: str, options: RunOptions, settings: Settings) -> None:
    """Refuse run options the pipeline's target cannot honour (as the runner would at submission)."""
    from pipeline_registry.repo_config import Target

    target = options.target or repository.config.target_for(name) or Target(settings.runner.value)
    if target is Target.VERTEX:
        from deploy.runners.vertex_job import refuse_unsupported

        refuse_unsupported(options, name)


def _problem_lines(exc: KfpBotError) -> list[str]:
    problems = getattr(exc, "problems", None)
    if problems:
        lines = list(problems)
        if exc.hint:
            lines.append(exc.hint)
        return lines
    return str(exc).splitlines() or [type(exc).__name__]


def compile_(args: argparse.Namespace, settings: Settings) -> int:
    """`kfp-bot compile`: the compiled pipeline with the bot's component images."""
    from bot.sandboxing import command_line_compiler
    from deploy.pipelines import images_with_tag
    from pipeline_registry.repository import Repository

    repository = Repository.open(args.repo)
    images = images_with_tag(repository.component_images(args.name), args.image_tag)
    compiler = command_line_compiler(settings)
    with tempfile.TemporaryDirectory(prefix="kfp-bot-compile-") as tmp:
        compiled = compiler.compile(args.repo, args.name, images, Path(tmp))
        text = compiled.read_text()
    if args.out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out} ({compiled.format.value}, kfp {compiled.sdk_version})", file=sys.stderr)
    return EXIT_OK


def diff(args: argparse.Namespace, settings: Settings) -> int:
    """`kfp-bot diff`: each pipeline compiled at the base and the head, compared structurally."""
    from bot.sandboxing import command_line_compiler
    from deploy.pipeline_diffs import PipelineDiffer
    from handlers.messages.pipeline_diff import diff_text

    differ = PipelineDiffer(command_line_compiler(settings), settings.cache_dir)
    diffs = [differ.diff(args.repo, name, args.base, args.head) for name in args.names]
    if args.json:
        print_json({"base": args.base, "head": args.head, "pipelines": [d.to_json() for d in diffs]})
    else:
        sys.stdout.write(diff_text(diffs, base=args.base, head=args.head or "working tree"))
    return EXIT_OK


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`kfp-bot run`: compile, check parameters and run on the embedded runner (kfp.local)."""
    from bot.sandboxing import command_line_compiler
    from deploy.runners.local import TaskEvent, run_locally
    from deploy.runners.local_results import collect
    from pipeline_registry.parameters import parse_assignments, resolve_parameters
    from pipeline_registry.repository import Repository

    repository = Repository.open(args.repo)
    overrides = parse_assignments(args.param)
    compiler = command_line_compiler(settings)
    with tempfile.TemporaryDirectory(prefix="kfp-bot-run-") as tmp:
        compiled = compiler.compile(args.repo, args.name, None, Path(tmp) / "package")
        parameters = resolve_parameters(repository.settings(args.name), overrides, compiled.inputs)
        print(f"running {args.name} locally with {_describe(parameters)}")

        def progress(event: TaskEvent) -> None:
            detail = f" ({event.detail})" if event.detail else ""
            print(f"  {event.state.value:10} {event.task}{detail}", flush=True)

        timeout = args.timeout or settings.run_timeout_seconds
        result = run_locally(compiled.package_path, parameters, workdir=Path(tmp) / "run",
                             timeout_seconds=timeout, on_event=progress, sandbox=compiler.sandbox)
        # What the service would compare with the baseline and hold to `run.gates`.
        metrics = collect(Path(tmp) / "run") if result.succeeded else None
    if result.succeeded:
        print(f"succeeded: {args.name}")
        for key, value in sorted(result.outputs.items()):
            print(f"  output {key} = {value!r}")
        for key, number in (metrics.metrics.items() if metrics else ()):
            print(f"  metric {key} = {number:g}")
        return EXIT_OK
    print(f"failed: {args.name}: {result.error or 'see the log above'}", file=sys.stderr)
    if result.log_tail:
        print(result.log_tail, file=sys.stderr)
    return EXIT_FAILED


def _describe(parameters: dict) -> str:
    if not parameters:
        return "no parameters"
    return ", ".join(f"{k}={v!r}" for k, v in sorted(parameters.items()))


def init(args: argparse.Namespace, settings: Settings) -> int:
    """`kfp-bot init`: propose a `.kfp-bot.yaml` from what the repository holds, write it, and
    show that the bot then finds the pipelines."""
    from pipeline_registry.proposal import propose
    from pipeline_registry.repo_config import CONFIG_FILE
    from pipeline_registry.repository import Repository
    from pipeline_registry.snapshot import open_snapshot

    with open_snapshot(args.repo, None) as snapshot:
        proposal = propose(snapshot)
    for finding in proposal.findings:
        print(f"found: {finding}")
    if not proposal.text:
        return EXIT_OK
    target = Path(args.repo) / CONFIG_FILE
    if target.exists() and not args.force:
        print(proposal.text, end="")
        print(f"error: {target} exists; the proposal is shown above (--force replaces the file)", file=sys.stderr)
        return EXIT_FAILED
    target.write_text(proposal.text, encoding="utf-8")
    print(f"wrote {target}:")
    print(proposal.text, end="")
    with Repository.open(args.repo) as repository:
        pipelines = repository.pipelines()
    print(f"with it kfp-bot finds {len(pipelines)} pipeline(s): {', '.join(pipelines)}")
    return EXIT_OK


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """`kfp-bot serve`: the webhook service on gunicorn (`bot.server`) until SIGINT/SIGTERM."""
    from bot.server import serve as serve_on_gunicorn
    from bot.startup import prepare_service

    prepare_service(settings)  # before the worker boots
    return serve_on_gunicorn(settings, host=args.host, port=args.port)
