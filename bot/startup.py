"""Starting the service: settings checked, logs configured, and start-up recovery.

`kfp-bot serve` (also App Engine's entrypoint, `app.yaml`) checks the service's settings and
logs the memory budget before gunicorn forks (`prepare_service`); each worker process
(`bot.server`) configures its logs with the secrets masked, builds its services with
`bot.wiring`, and the processing worker picks up the work a previous process left (`recover`)
once its bus runs.
"""

from __future__ import annotations

import logging

from bot.budget import memory_budget
from bot.config import RunnerKind, Settings
from bot.logs import configure_logging
from bot.redaction import redactor_for
from bot.services import Services

log = logging.getLogger("kfp_bot")


def prepare_service(settings: Settings) -> None:
    """Before serving: the service's own settings checked, logs configured, and the memory
    budget logged (the first thing an operator reads)."""
    settings.require_service_settings()
    configure_service_logging(settings)
    log.info(memory_budget(settings))


def configure_service_logging(settings: Settings) -> None:
    """The service's logs in the configured format and level, configured secrets masked."""
    configure_logging(settings.log_format, settings.log_level, redact=redactor_for(settings))


def recover(settings: Settings, services: Services) -> None:
    """Pick up what a previous process left. Embedded work needs nothing here: it is in the
    store, and steps whose owner stopped are taken over once their leases expire. Runs on
    remote backends are asked for their state (reconcile), since their events may have been lost."""
    from handlers.reconcile import reconcile

    if settings.runner is RunnerKind.LOCAL or services.context is None:
        log.info("%d event(s) waiting in the store", services.store.pending_work())
        return
    report = reconcile(services.context)
    log.info("reconciled unfinished runs on start: %s", report.to_json())
