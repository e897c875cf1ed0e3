"""What every message shares: the reproduce command quotes what users typed for the shell."""

from __future__ import annotations

from handlers.messages.rendering import reproduce_command
from tests.handlers.messages.samples import make_run


def test_reproduce_command_quotes_overrides_for_the_shell() -> None:
    run = make_run(overrides={"epochs": "1", "note": "it's a test; rm -rf /"})
    assert reproduce_command(run) == \
        "kfp-bot run head-pose-pipeline --repo . -p epochs=1 -p 'note=it'\"'\"'s a test; rm -rf /'"


def test_autorun_reproduce_command_has_no_overrides() -> None:
    assert reproduce_command(make_run()) == "kfp-bot run head-pose-pipeline --repo ."
