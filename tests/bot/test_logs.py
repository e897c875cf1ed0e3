"""Structured logs: JSON lines with the delivery and run ids, or text for a terminal."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from bot.config import ConfigurationError, LogFormat
from bot.logs import configure_logging, current_ids, log_context


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_ids_of_their_context() -> None:
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "info", stream=stream)
    log = logging.getLogger("kfp_bot.test")

    with log_context(delivery_id="d-1"):
        log.info("accepted %s", "pr:org/repo#7")
        with log_context(run_id="run-1"):
            log.warning("building", extra={"pipeline": "head-pose-pipeline"})
    log.info("outside")
    log.debug("below the level")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["message"], e["level"], e["logger"], e["delivery_id"], e["run_id"]) for e in lines] == [
        ("accepted pr:org/repo#7", "INFO", "kfp_bot.test", "d-1", None),
        ("building", "WARNING", "kfp_bot.test", "d-1", "run-1"),
        ("outside", "INFO", "kfp_bot.test", None, None),
    ]
    assert lines[1]["pipeline"] == "head-pose-pipeline"
    assert lines[0]["ts"].endswith("+00:00")


def test_exceptions_are_one_json_line_with_the_traceback() -> None:
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, "INFO", stream=stream)

    try:
        raise ValueError("bad settings")
    except ValueError:
        logging.getLogger("kfp_bot.test").exception("handler failed")

    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "handler failed"
    assert "ValueError: bad settings" in entry["exception"]


def test_text_lines_show_the_ids_when_there_are_some() -> None:
    stream = io.StringIO()
    configure_logging(LogFormat.TEXT, logging.INFO, stream=stream)
    log = logging.getLogger("kfp_bot.test")

    with log_context(delivery_id="d-2", run_id="run-2"):
        log.info("running")
    log.info("idle")

    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO kfp_bot.test [delivery=d-2 run=run-2] running")
    assert second.endswith("INFO kfp_bot.test idle")


def test_configuring_twice_does_not_duplicate_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(LogFormat.TEXT, "INFO", stream=first)
    configure_logging(LogFormat.JSON, "INFO", stream=second)

    logging.getLogger("kfp_bot.test").info("once")

    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def test_an_unknown_level_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="KFP_BOT_LOG_LEVEL: unknown log level 'LOUD'"):
        configure_logging(LogFormat.TEXT, "LOUD")


def test_contexts_do_not_leak_between_threads() -> None:
    seen: list[dict[str, str | None]] = []
    with log_context(delivery_id="main-thread"):
        thread = threading.Thread(target=lambda: seen.append(current_ids()))
        thread.start()
        thread.join()
        assert current_ids() == {"delivery_id": "main-thread", "run_id": None}

    assert seen == [{"delivery_id": None, "run_id": None}]
    assert current_ids() == {"delivery_id": None, "run_id": None}
