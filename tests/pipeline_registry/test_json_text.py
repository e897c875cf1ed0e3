"""`pretty_json` prints exactly what `json.dumps(value, indent=2)` prints, for any JSON value."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from pipeline_registry.json_text import pretty_json
from tests.support.gitrepo import GitRepo

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                       | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@given(_VALUES)
def test_any_json_value_prints_as_the_standard_library_prints_it(value: object) -> None:
    assert pretty_json(value) == json.dumps(value, indent=2)


def test_values_it_does_not_encode_itself_go_to_the_standard_library() -> None:
    class Name(str):
        pass

    for value in ({1: "a"}, {"a": [1.5, float("nan")]}, [Name("x")], {Name("k"): None}, [[[]], {}]):
        assert pretty_json(value) == json.dumps(value, indent=2)


def test_a_plan_prints_as_before() -> None:
    plan = {"base": "a" * 40, "head": None, "warnings": [], "pipelines": [
        {"name": "p", "file": "pipelines/p/p.py", "function": None, "change": "modified",
         "reasons": [{"path": "utils/é.py", "rule": "image-input", "detail": "copied \"x\"", "text": "t\n"}],
         "components": [{"name": "train", "path": "pipelines/p/train", "shared": False, "image": None,
                         "rebuild": True}]}]}
    assert pretty_json(plan) == json.dumps(plan, indent=2)


def test_plans_print_as_their_json_would(seed: GitRepo) -> None:
    # A real plan (reasons, own, shared and image-less components), a deleted pipeline, none at all.
    from pipeline_registry.json_text import plan_json
    from pipeline_registry.models import PipelineChange, PipelinePlan, Plan, Reason, ReasonKind
    from pipeline_registry.planner import plan_change

    base = seed.head()
    seed.append("utils/metrics.py", "# tuned\n")
    seed.append("components/validate/component.yaml", "# v2\n")
    changed = plan_change(seed.root, base, seed.commit("tuned"))
    assert len(changed.pipelines) >= 2
    gone = PipelinePlan("old", PipelineChange.DELETED, (Reason("pipelines/old", ReasonKind.DELETED, "é \"x\""),))
    for plan in (changed, Plan("a" * 40, None), Plan("a" * 40, "b" * 40, (gone,), ("a warning", "ünïcode"))):
        assert plan_json(plan) == json.dumps(plan.to_json(), indent=2)
