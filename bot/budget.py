"""The service's memory budget, stated at start-up so an operator can size the instance.

Figures measured by `benchmarks/memory_budget.py` (see README, "Memory"): the service's
processes (gunicorn's arbiter, its web and processing workers) hold about 190 MB idle and after
a pull request, each shared page counted once; what grows is outside them: the data
folder (git mirrors, compile environments, run outputs), which on App Engine standard lives in
/tmp, i.e. in the instance's memory, and, on embedded defaults, the sandboxed compile and run
processes. With the Cloud Build builder no compile runs in the service at all.
"""

from __future__ import annotations

from bot.config import BuilderKind, Settings

SERVICE_MB = 190
"""Memory of the service's processes idle and after one PR (their PSS, measured, rounded up)."""


def memory_budget(settings: Settings) -> str:
    """One log line: the instance's memory, what the service holds, where compiles run and their cap."""
    instance = (f"instance {settings.instance_memory_mb} MB (KFP_BOT_INSTANCE_MEMORY_MB)"
                if settings.instance_memory_mb else "instance memory not set (KFP_BOT_INSTANCE_MEMORY_MB)")
    if settings.builder is BuilderKind.CLOUDBUILD:
        compiles = "compiles run in Cloud Build, not in this service"
    else:
        compiles = (f"compiles run here in the sandbox, each capped at {settings.compile_max_memory_mb} MB "
                    "(KFP_BOT_COMPILE_MAX_MEMORY_MB)")
    return (f"memory budget: {instance}; service ~{SERVICE_MB} MB resident; data folder {settings.data_dir} "
            f"(in memory where it is a tmpfs, as /tmp on App Engine); {compiles}")
