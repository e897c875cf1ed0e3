"""A run's plan as stored: the typed `RunPlan` reads every shape the store holds, and writes the
planner's own shape back."""

from __future__ import annotations

from handlers.run_models import PlanComponent, PlanReason, PlanTrustedChange, RunPlan
from pipeline_registry.models import (
    Component,
    ComponentPlan,
    PipelineChange,
    PipelinePlan,
    Reason,
    ReasonKind,
)
from pipeline_registry.trusted import TrustedChange


def test_a_plan_is_stored_in_the_planners_shape_with_the_trusted_changes_beside() -> None:
    component = Component(name="train", path="pipelines/p/components/train", shared=False)
    pipeline = PipelinePlan(
        name="p", change=PipelineChange.MODIFIED, file="pipelines/p/p.py", function="p",
        reasons=(Reason(path="pipelines/p/components/train/main.py", kind=next(iter(ReasonKind)),
                        detail="component train"),),
        components=(ComponentPlan(component=component, image="img:abc", content_hash="abc", rebuild=True),))
    change = TrustedChange(file=".kfp-bot.yaml", key="run.service_account", proposed="a@x", in_effect=None)

    plan = RunPlan.of(pipeline, [change])

    assert plan.components == (PlanComponent(name="train", path=component.path, image="img:abc", rebuild=True),)
    assert plan.trusted_changes == (PlanTrustedChange(".kfp-bot.yaml", "run.service_account", "a@x", None),)
    stored = plan.to_json()
    assert {k: v for k, v in stored.items() if k != "trusted_changes"} == pipeline.to_json()
    assert stored["trusted_changes"] == [change.to_json()]
    assert RunPlan.from_json(stored) == plan


def test_rows_written_before_a_key_existed_still_read() -> None:
    old = {"components": [{"name": "training", "build": True}, "evaluation"],
           "reasons": ["settings.yaml changed", {"path": "a.py", "detail": "imported by p.py"}]}

    plan = RunPlan.from_json(old)

    assert plan.components == (PlanComponent(name="training"), PlanComponent(name="evaluation"))
    assert plan.reasons == (PlanReason(text="settings.yaml changed"),
                            PlanReason(text="", path="a.py", detail="imported by p.py"))
    assert (plan.name, plan.change, plan.trusted_changes) == ("", "modified", ())
    assert RunPlan.from_json(None) == RunPlan.from_json({}) == RunPlan()
