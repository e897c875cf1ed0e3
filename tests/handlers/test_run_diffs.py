"""A run's pipeline diff kept in the store (SQLite, the embedded default) and read back whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.sql_store import SqlStore
from handlers.run_diffs import DIFF_SCOPE, load_diff, save_diff
from pipeline_registry.spec_diff import Change, ChangeKind, PipelineDiff


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with SqlStore(f"sqlite:///{tmp_path / 'bot.db'}") as opened:
        yield opened


def test_a_saved_diff_comes_back_equal(store: SqlStore) -> None:
    diff = PipelineDiff("training-pipeline", (
        Change(ChangeKind.IMAGE, "train", "gcr.io/p/train:content-aaaa", "gcr.io/p/train:content-bbbb"),
        Change(ChangeKind.TASK_ADDED, "report", None, "gcr.io/p/report:content-1111"),
        Change(ChangeKind.SETTING, "parameters.epochs", "2", "4"),
    ))
    save_diff(store, "run-1", diff)
    assert load_diff(store, "run-1") == diff
    assert load_diff(store, "run-2") is None


def test_a_diff_that_could_not_be_made_keeps_its_reason(store: SqlStore) -> None:
    save_diff(store, "run-1", PipelineDiff("hello-pipeline", note="the base did not compile: boom"))
    loaded = load_diff(store, "run-1")
    assert loaded is not None and not loaded.unchanged
    assert loaded.note == "the base did not compile: boom"


def test_a_later_save_replaces_the_earlier(store: SqlStore) -> None:
    save_diff(store, "run-1", PipelineDiff("hello-pipeline", note="not yet"))
    save_diff(store, "run-1", PipelineDiff("hello-pipeline"))
    loaded = load_diff(store, "run-1")
    assert loaded is not None and loaded.unchanged


@pytest.mark.parametrize("stored", ['{"pipeline": "x", "changes": [{"kind": "nope", "subject": "a"}]}',
                                    "not json", "[1, 2]"])
def test_an_unreadable_stored_diff_says_so(store: SqlStore, stored: str) -> None:
    store.set_external(DIFF_SCOPE, "run-1", stored)
    loaded = load_diff(store, "run-1")
    assert loaded is not None and loaded.note.startswith("the stored diff is unreadable")
