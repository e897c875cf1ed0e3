"""Plan a change: which pipelines the change between two revisions affects, why, and what to build.

The rules run on both sides of the change and their answers are merged, so a file that a pipeline
depended on before the change (and no longer does, or that was deleted) still counts. Pipelines
only at base are DELETED, pipelines only at head are ADDED. Images are compared by content
hash: a component is rebuilt only when the image its inputs describe did not exist at base.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline_registry.cache_control import flush_disk_cache, tree_store
from pipeline_registry.errors import ConfigError
from pipeline_registry.gitcli import ChangeStatus, raw_diff, resolve_all, tree_ids
from pipeline_registry.graph import RepoGraph, load_config
from pipeline_registry.hashing import component_plan
from pipeline_registry.impact import Impact, ReasonMap, affected_pipelines
from pipeline_registry.models import PipelineChange, PipelinePlan, Plan, Reason, ReasonKind
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.snapshot import FileChange, Snapshot, snapshots_for_change


def plan_change(repo_dir: Path, base: str, head: str | None = None) -> Plan:
    """The plan for the change from `base` to `head` (None: the working tree, untracked files included).

    The change is the difference between the two trees (`git diff base head`); for a pull
    request pass the merge base (`snapshot.merge_base`) so that commits the target branch gained
    since do not count. `Plan.base`/`Plan.head` are the resolved commit SHAs. Raises
    `RepositoryError` for a folder that is not a git repository or an unknown revision,
    `ConfigError` for a malformed `.kfp-bot.yaml` at head.
    """
    with _collection_paused():
        return _plan(Path(repo_dir), base, head)


_PAUSES = 0
_RESUME = True
_PAUSED_AT = 0.0
MAX_PAUSE_SECONDS = 30.0  # overlapping plans still let a full collection run this often
_PAUSE_LOCK = threading.Lock()


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while planning (plans in other threads may overlap).

    A plan of thousands of pipelines allocates millions of short-lived objects on top of the
    tree's facts (tens of MB of dicts and tuples), so each full collection walks them all again
    for nothing: it cost a fifth of a 3,000-pipeline plan. What a plan leaves behind is not
    cyclic; reference counting frees it, and collection resumes when the last plan ends (while
    plans keep overlapping, one that ends runs a full collection every `MAX_PAUSE_SECONDS`).
    """
    global _PAUSES, _RESUME, _PAUSED_AT
    with _PAUSE_LOCK:
        if _PAUSES == 0:
            _RESUME = gc.isenabled()  # as the first plan found it
            _PAUSED_AT = time.monotonic()
            gc.disable()
        _PAUSES += 1
    try:
        yield
    finally:
        with _PAUSE_LOCK:
            _PAUSES -= 1
            if _PAUSES == 0 and _RESUME:
                gc.enable()
            elif _RESUME and time.monotonic() - _PAUSED_AT > MAX_PAUSE_SECONDS:
                # Plans overlapping without end (a busy service) must not stop collection for good.
                gc.collect()
                _PAUSED_AT = time.monotonic()


def _plan(repo_dir: Path, base: str, head: str | None) -> Plan:
    root, shas = resolve_all(repo_dir, base, *(() if head is None else (head,)))
    base_sha, head_sha = shas[0], (shas[1] if head is not None else None)
    changes = raw_diff(root, base_sha, head_sha)
    if not changes:
        return Plan(base=base_sha, head=head_sha, pipelines=())
    # What earlier plans learnt about these trees (listing, layout, indexes), by tree id.
    store = tree_store()
    trees = tree_ids(root, *(s for s in (base_sha, head_sha) if s is not None))
    base_facts = store.get(trees[0])
    head_facts = store.get(trees[1]) if len(trees) > 1 else None
    base_snapshot, head_snapshot = snapshots_for_change(
        root, base_sha, head_sha, changes, base_entries=base_facts.entries if base_facts else None,
        head_entries=head_facts.entries if head_facts else None)
    try:
        head_graph = RepoGraph(head_snapshot, load_config(head_snapshot))
        base_graph = RepoGraph(base_snapshot, _base_config(base_snapshot, head_graph.config))
        known = base_graph.adopt(base_facts)
        # A change that only edits files (the usual push) keeps the layout: one side finds it (or
        # loads it), the other shares it, with its indexes updated for the edited files alone.
        if all(c.change.status is ChangeStatus.MODIFIED for c in changes):
            edited = frozenset(c.change.path for c in changes)
            if head_graph.adopt(head_facts) and not known:
                base_graph.share_structure(head_graph, edited)
            else:
                head_graph.share_structure(base_graph, edited)
        else:
            head_graph.adopt(head_facts)
        head_graph.require_pipelines()
        _base_pipelines(base_graph)
        pipelines = plan_pipelines(base_graph, head_graph, tuple(c.change for c in changes))
        warnings = tuple(dict.fromkeys([
            *(w for p in pipelines if p.change is not PipelineChange.DELETED
              for w in head_graph.unresolved_loads(p.name)),
            *(w for p in pipelines for c in p.components if c.image for w in head_graph.copy_warnings(c.component))]))
        if not known and base_graph.uses_own_layout:
            store.put(base_graph.facts(trees[0]))
    finally:
        base_snapshot.close()
        flush_disk_cache()
    return Plan(base=base_sha, head=head_sha, pipelines=pipelines, warnings=warnings)


def _base_config(snapshot: Snapshot, fallback: RepoConfig) -> RepoConfig:
    # A broken configuration at base is what the change may be fixing: plan with head's.
    try:
        return load_config(snapshot)
    except ConfigError:
        return fallback


def _base_pipelines(base: RepoGraph) -> None:
    # Before the change the declared files may not exist yet (the change adds them): no pipelines.
    try:
        _ = base.pipelines  # the cached property reads the declared files, or raises
    except ConfigError:
        base.__dict__["pipelines"] = {}


def plan_pipelines(base: RepoGraph, head: RepoGraph, changes: tuple[FileChange, ...]) -> tuple[PipelinePlan, ...]:
    """The affected pipelines, sorted by name, for changes between two analysed snapshots."""
    changed = frozenset(path for change in changes for path in change.paths)
    head_impact = affected_pipelines(head, changed)
    base_impact = head_impact if _same_rules(base, head) else _base_impact(base, changed)
    head_hits, base_hits = head_impact.pipelines, base_impact.pipelines
    # With the same configuration, an image no change reaches on either side keeps its hash.
    touched = None if base.config != head.config else head_impact.images | base_impact.images
    # When every changed file has a new blob, an image taking one in has a new content hash.
    blobs_differ = all(head.snapshot.digest(c.path) != base.snapshot.digest(c.path) for c in changes)
    deleted = set(base.pipelines) - set(head.pipelines)
    plans: list[PipelinePlan] = []
    for name in sorted(set(head_hits) | set(base_hits) | deleted):
        if name in deleted:
            gone = base.pipelines[name]
            where = gone.path if gone.owns_folder else gone.pipeline_file or gone.path
            reason = Reason(where, ReasonKind.DELETED, f"pipeline '{name}' removed")
            plans.append(PipelinePlan(name=name, change=PipelineChange.DELETED, reasons=(reason,),
                                      file=gone.pipeline_file, function=gone.function))
            continue
        if name not in head.pipelines:
            continue
        reasons = _merge(head_hits.get(name, {}), base_hits.get(name, {}))
        if not reasons:
            continue
        change = PipelineChange.ADDED if name not in base.pipelines else PipelineChange.MODIFIED
        components = tuple(component_plan(c, head, base, unchanged=touched is not None and c.key not in touched,
                                          inputs_changed=blobs_differ and touched is not None and c.key in touched)
                           for c in head.components_of(name))
        pipeline = head.pipelines[name]
        plans.append(PipelinePlan(name=name, change=change, reasons=reasons, components=components,
                                  file=pipeline.pipeline_file, function=head.pipeline_function(name)))
    return tuple(plans)


def _same_rules(base: RepoGraph, head: RepoGraph) -> bool:
    """True when the dependency rules give the same answers on both sides, so base's impact is
    head's: one side shares the other's layout (same files, same configuration) and no edited file
    is one whose contents a rule reads. Those are the Dockerfiles and ignore files of images,
    pipeline files (component loads), Python files whose imports now resolve elsewhere, and the
    files that declare the compile environment (global, never ignored) or install packages (import
    roots); images named inline (read from pipeline code) are not followed here. Every other rule
    depends on paths and configuration alone: the usual push edits module or component code."""
    edited = head.edited_from(base)
    if edited is None or head.inline_images:
        return False
    try:
        if head.compile_env_files != base.compile_env_files or head.installed != base.installed:
            return False
    except ConfigError:
        return False
    direct = head.copy_index.direct
    for path in edited:
        if path in direct or path in head.pipeline_files or path in base.pipeline_files:
            return False
        if path.endswith(".py") and head.imports.direct(path) != base.imports.direct(path):
            return False
    return True


def _base_impact(base: RepoGraph, changed: frozenset[str]) -> Impact:
    # The compile environment of base only widens the set; a broken one there must not fail the plan.
    try:
        return affected_pipelines(base, changed)
    except ConfigError:
        base.compile_env_files = ()
        return affected_pipelines(base, changed)


def _merge(first: ReasonMap, second: ReasonMap) -> tuple[Reason, ...]:
    merged = dict(second)
    merged.update(first)
    return tuple(Reason(path=path, kind=kind, detail=detail)
                 for (path, kind), detail in sorted(merged.items(), key=lambda item: (item[0][0], item[0][1].value)))
