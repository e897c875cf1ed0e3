"""What GitHub shows for a run's state and for a head commit's outcome, in App mode (check runs)
and in token mode (commit statuses, which have no neutral state).

RunState → what GitHub shows for the pipeline's check (App) / commit status (token):

| run state  | check status | check conclusion | commit status |
|------------|--------------|------------------|---------------|
| queued     | queued       | –                | pending       |
| building   | in_progress  | –                | pending       |
| compiling  | in_progress  | –                | pending       |
| running    | in_progress  | – (details_url = run URL) | pending |
| succeeded  | completed    | success          | success       |
| failed     | completed    | failure          | failure       |
| error      | completed    | failure (error in the summary) | error |
| cancelled  | completed    | cancelled        | error         |
| skipped    | completed    | neutral (the reason is shown, nothing blocks) | success |

The aggregate `kfp-bot` check of a head commit always concludes (see `handlers.messages.checks.head_outcome`):
none affected → success; any active → in_progress (pending); any failed/error → failure;
any cancelled → cancelled (error); planned but not run (draft, waiting for `/ok-to-run`, all
skipped) → neutral (success); otherwise success.
"""

from __future__ import annotations

from collections.abc import Mapping

from handlers.reports import HeadOutcome
from handlers.run_models import RunState

CHECK_STATES: Mapping[RunState, tuple[str, str | None]] = {
    RunState.QUEUED: ("queued", None),
    RunState.BUILDING: ("in_progress", None),
    RunState.COMPILING: ("in_progress", None),
    RunState.RUNNING: ("in_progress", None),
    RunState.SUCCEEDED: ("completed", "success"),
    RunState.FAILED: ("completed", "failure"),
    RunState.ERROR: ("completed", "failure"),
    RunState.CANCELLED: ("completed", "cancelled"),
    RunState.SKIPPED: ("completed", "neutral"),
}
STATUS_STATES: Mapping[RunState, str] = {
    RunState.QUEUED: "pending", RunState.BUILDING: "pending", RunState.COMPILING: "pending",
    RunState.RUNNING: "pending", RunState.SUCCEEDED: "success", RunState.FAILED: "failure",
    RunState.ERROR: "error", RunState.CANCELLED: "error", RunState.SKIPPED: "success",
}
HEAD_CHECK_STATES: Mapping[HeadOutcome, tuple[str, str | None]] = {
    HeadOutcome.NONE_AFFECTED: ("completed", "success"),
    HeadOutcome.ACTIVE: ("in_progress", None),
    HeadOutcome.FAILED: ("completed", "failure"),
    HeadOutcome.CANCELLED: ("completed", "cancelled"),
    HeadOutcome.NOT_RUN: ("completed", "neutral"),
    HeadOutcome.SUCCEEDED: ("completed", "success"),
}
HEAD_STATUS_STATES: Mapping[HeadOutcome, str] = {
    HeadOutcome.NONE_AFFECTED: "success", HeadOutcome.ACTIVE: "pending", HeadOutcome.FAILED: "failure",
    HeadOutcome.CANCELLED: "error", HeadOutcome.NOT_RUN: "success", HeadOutcome.SUCCEEDED: "success",
}
