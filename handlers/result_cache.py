"""Runs skipped when nothing they would run changed: the result cache.

A run is identified by what it would execute: the compiled package (which names every component
image by its content tag), the resolved parameters and where and as whom it runs. When an
automatic run's fingerprint equals that of a run of the same pipeline in the same repository that
already succeeded (on this pull request or any other, or on the default branch), running it again
would spend cloud time to learn nothing; the run ends `succeeded` saying "unchanged since run X",
linking to X. A `/run NAME` is a person asking for a run, so it always runs; deploys always
deploy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from handlers.context import HandlerContext
from handlers.ports.build import CompiledPackage
from handlers.run_models import Run, RunState, Trigger
from pipeline_registry.settings import RunOptions

# run id -> its fingerprint, recorded when it is submitted.
FINGERPRINT_SCOPE = "run-fingerprint"
# "<repo>:<pipeline>:<fingerprint>" -> the run that succeeded with it.
SUCCEEDED_SCOPE = "succeeded-fingerprint"


def fingerprint(package: CompiledPackage, parameters: Mapping[str, Any], target: Any,
                options: RunOptions) -> str:
    """What the run would execute, as one hash (images are in the package by content tag)."""
    digest = hashlib.sha256(package.package_path.read_bytes())
    digest.update(json.dumps({"parameters": parameters, "target": str(getattr(target, "value", target)),
                              "options": options.model_dump(mode="json")},
                             sort_keys=True, default=str).encode())
    return digest.hexdigest()


def remember(ctx: HandlerContext, run: Run, value: str) -> None:
    """Keep the fingerprint of a run about to be submitted (its success records it)."""
    ctx.store.set_external(FINGERPRINT_SCOPE, run.id, value)


def earlier_success(ctx: HandlerContext, run: Run, value: str) -> Run | None:
    """A succeeded run that executed exactly this, when `run` may reuse its result."""
    if run.trigger is not Trigger.AUTORUN:
        return None
    earlier_id = ctx.store.get_external(SUCCEEDED_SCOPE, _key(run, value))
    if earlier_id is None or earlier_id == run.id:
        return None
    earlier = ctx.store.get_run(earlier_id)
    return earlier if earlier is not None and earlier.state is RunState.SUCCEEDED else None


def record_success(ctx: HandlerContext, run: Run) -> None:
    """After a run succeeded: its fingerprint now names a reusable result."""
    value = ctx.store.get_external(FINGERPRINT_SCOPE, run.id)
    if value is not None:
        ctx.store.set_external(SUCCEEDED_SCOPE, _key(run, value), run.id)


def _key(run: Run, value: str) -> str:
    return f"{run.repo}:{run.pipeline}:{value}"
