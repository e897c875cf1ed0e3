"""Choosing how repository code is isolated, from the settings, and saying so.

The service (`kfp-bot serve`, the WSGI app) executes pull-request code only behind bubblewrap:
when isolation is unavailable it logs why at start-up, and every compile and embedded run then
ends in a visible error naming the cause, unless the unsafe KFP_BOT_ALLOW_UNSANDBOXED is set.
The command line runs one's own repository: without isolation it says so once on stderr and
goes on. The local compiler (the service's unless Cloud Build compiles, and the command line's)
is built here too, without the service's wiring: `kfp-bot check` starts fast.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from bot.config import Settings
from deploy.sandbox import Sandbox, isolation

if TYPE_CHECKING:
    from deploy.pipelines import RepositoryCompiler

log = logging.getLogger("kfp_bot")


def service_sandbox(settings: Settings) -> Sandbox:
    """The sandbox of the service; the start-up log says whether pull-request code can run."""
    sandbox = Sandbox(allow_unsandboxed=settings.allow_unsandboxed, max_processes=settings.sandbox_max_processes,
                      output_kb=settings.sandbox_output_kb)
    status = isolation()
    if status.available:
        log.info("repository code runs behind bubblewrap (at most %d processes, %d KB of output kept per stream)",
                 settings.sandbox_max_processes, settings.sandbox_output_kb)
    elif settings.allow_unsandboxed:
        log.warning("UNSAFE: %s; KFP_BOT_ALLOW_UNSANDBOXED is set, so pull-request code runs WITHOUT isolation "
                    "and can read this machine's secrets", status.reason)
    else:
        log.error("pull-request code will not be executed: %s (compiles and embedded runs end in an error "
                  "until it is; KFP_BOT_ALLOW_UNSANDBOXED=1 waives isolation, unsafe)", status.reason)
    return sandbox


def command_line_sandbox(settings: Settings) -> Sandbox:
    """The sandbox of `kfp-bot check/compile/run` on one's own repository: isolated when possible,
    otherwise run anyway after one note on stderr."""
    status = isolation()
    if not status.available:
        print(f"note: running your repository's code without isolation: {status.reason}", file=sys.stderr)
    return Sandbox(allow_unsandboxed=True, max_processes=settings.sandbox_max_processes,
                   output_kb=settings.sandbox_output_kb)


def local_compiler(settings: Settings, sandbox: Sandbox) -> RepositoryCompiler:
    """The sandboxed local compiler, with the bot's caps on every repository's compile limits."""
    from deploy.pipelines import RepositoryCompiler

    return RepositoryCompiler(settings.cache_dir, sandbox=sandbox,
                              max_timeout_seconds=settings.compile_max_timeout_seconds,
                              max_memory_mb=settings.compile_max_memory_mb)


def command_line_compiler(settings: Settings, sandbox: Sandbox | None = None) -> RepositoryCompiler:
    """The compiler `kfp-bot check`, `compile` and `run` use: the service's local compiler (same
    limits) in the command line's sandbox (`sandbox`, when the command made it already)."""
    return local_compiler(settings, sandbox or command_line_sandbox(settings))
