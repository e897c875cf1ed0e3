"""The on-disk parse cache: a new process plans without reading blobs an earlier plan parsed."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pipeline_registry import disk_cache
from pipeline_registry.cache_control import clear_all_caches, use_disk_cache
from pipeline_registry.disk_cache import DiskCache
from pipeline_registry.gitcli import BLOB_READS
from pipeline_registry.models import Component
from pipeline_registry.planner import plan_change
from tests.pipeline_registry.conftest import names
from tests.support.gitrepo import GitRepo


@pytest.fixture
def memory_only():
    """Every test starts and ends with empty in-memory caches and no disk cache."""
    use_disk_cache(None)
    clear_all_caches()
    yield
    use_disk_cache(None)
    clear_all_caches()


def _two_changes(seed: GitRepo) -> tuple[str, str, str]:
    base = seed.head()
    seed.append("pipelines/alpha/train/main.py", "# tuned\n")
    first = seed.commit("one component")
    seed.append("lib/scoring.py", "# faster\n")
    second = seed.commit("a shared module")
    return base, first, second


def _blobs(seed: GitRepo, rev: str) -> set[str]:
    return {line.split()[2] for line in seed.git("ls-tree", "-r", rev).splitlines()}


def _plan_twice_as_two_processes(seed: GitRepo, base: str, first: str, second: str) -> tuple[list, list, Counter]:
    BLOB_READS.clear()
    one = plan_change(seed.root, base, first)
    clear_all_caches()  # what a new `kfp-bot plan` process starts with: nothing in memory
    two = plan_change(seed.root, first, second)
    unchanged = _blobs(seed, base) & _blobs(seed, second)
    return names(one), names(two), Counter({b: n for b, n in BLOB_READS.items() if b in unchanged})


def test_an_unchanged_blob_is_read_at_most_once_across_two_plans(seed: GitRepo, tmp_path: Path,
                                                                  memory_only: None) -> None:
    base, first, second = _two_changes(seed)
    use_disk_cache(tmp_path / "parses")
    first_names, second_names, reads = _plan_twice_as_two_processes(seed, base, first, second)
    assert first_names == ["alpha"]
    assert second_names == ["alpha"]  # evaluate imports lib.scoring
    assert reads, "the first plan reads the blobs it parses"
    assert {blob: count for blob, count in reads.items() if count > 1} == {}


def test_without_the_disk_cache_a_new_process_reads_them_again(seed: GitRepo, memory_only: None) -> None:
    base, first, second = _two_changes(seed)
    *_, reads = _plan_twice_as_two_processes(seed, base, first, second)
    assert any(count > 1 for count in reads.values())


def test_plans_with_a_warm_disk_cache_match_plans_without(seed: GitRepo, tmp_path: Path, memory_only: None) -> None:
    base, first, second = _two_changes(seed)
    cold = plan_change(seed.root, base, second)
    use_disk_cache(tmp_path / "parses")
    plan_change(seed.root, base, first)
    clear_all_caches()
    assert plan_change(seed.root, base, second) == cold


def test_concurrent_writers_keep_every_entry_and_compaction_merges_them(tmp_path: Path) -> None:
    writers = [DiskCache(tmp_path) for _ in range(20)]
    for index, writer in enumerate(writers):
        writer.lookup("kind", "warm-up")  # each loaded the folder before the others wrote
        writer.add("kind", f"blob-{index}", (index,))
    for writer in writers:
        writer.flush()
    reader = DiskCache(tmp_path)
    assert [reader.lookup("kind", f"blob-{i}") for i in range(20)] == [(i,) for i in range(20)]
    assert reader.segments_read <= 16  # past 16 segments a flush merged them into one
    assert not list(reader.dir.glob("*/*/tmp-*"))


def test_merging_keeps_the_newest_entries_up_to_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_cache, "_MAX_ENTRIES", 5)
    seen: set[Path] = set()
    for index in range(17):  # the 17th segment makes the flush merge them all
        writer = DiskCache(tmp_path)
        writer.add("kind", f"blob-{index}", (index,))
        writer.flush()
        for segment in set(writer.dir.glob("kind/*/seg-*")) - seen:
            if index < 16:  # segment age by write order, whatever the file system's clock resolution
                os.utime(segment, ns=(index * 10**9, index * 10**9))
            seen.add(segment)
    reader = DiskCache(tmp_path)
    assert [i for i in range(17) if reader.lookup("kind", f"blob-{i}") is not None] == [12, 13, 14, 15, 16]
    assert reader.segments_read == 1


def test_parses_of_core_types_are_kept_with_marshal_and_others_with_pickle(tmp_path: Path) -> None:
    plain = {"import_statements": {"ab12": ((0, "utils.io", ("read",)),), "cd34": ()}}
    validated = {"repo-config": {"ef56": Component(name="train", path="pipelines/p/train", shared=False)}}
    for value in (plain, validated):
        disk_cache.write_cache_file(tmp_path, value, "one.cache")
        assert disk_cache.read_cache_file(tmp_path / "one.cache") == value
        assert (tmp_path / "one.cache").read_bytes()[:1] == (b"M" if value is plain else b"P")

    (tmp_path / "one.cache").write_bytes(b"\x80\x05 a pickle of an older kfp-bot")
    with pytest.raises(ValueError, match="not a cache file"):
        disk_cache.read_cache_file(tmp_path / "one.cache")
