"""`check_suite` events: "Re-run all checks" on the bot's suite of a commit.

GitHub sends `rerequested` to the App whose suite it is. The head's affected pipelines run again
at that commit (`check_run.rerun_head`), with the trust rules of `/run`: the person who asked
needs write access; a refusal is answered on the pull request.
"""

from __future__ import annotations

from handlers.check_run import rerun_head
from handlers.context import HandlerContext
from handlers.models import CheckSuiteEvent, EventKind
from handlers.router import Router

router = Router()


@router.on(EventKind.CHECK_SUITE)
def on_check_suite(event: CheckSuiteEvent, ctx: HandlerContext) -> None:
    """Re-run the affected pipelines of the suite's head commit."""
    rerun_head(ctx, event.repo, event.head_sha, event.sender, event.pull_numbers, event.installation_id,
               id_parts=("check_suite", event.check_suite_id, event.delivery_id))
