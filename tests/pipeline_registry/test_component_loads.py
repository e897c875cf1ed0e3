"""Static analysis of how pipeline files load components."""

from __future__ import annotations

from pipeline_registry.component_loads import extract_loads
from tests.pipeline_registry.test_load_resolution import _resolve


def test_constants_joins_and_loops_are_evaluated() -> None:
    text = ('import os\nfrom pathlib import Path\nfrom kfp import components\n'
            'ROOT = "components"\nNAMES = ["notify", "validate"]\n'
            'store = components.ComponentStore(local_search_paths=[ROOT])\n'
            'ops = [store.load_component(n) for n in NAMES]\n'
            'spec = components.load_component_from_file(os.path.join("pipelines", "q", "fit", "component.yaml"))\n'
            'other = components.load_component_from_file(str(Path("x")))\n')
    facts = extract_loads(text.encode())
    assert facts.dynamic  # str(Path("x")) cannot be followed
    assert {"components/notify", "components/validate", "pipelines/q/fit"} <= set(_resolve(text))


def test_comments_and_files_without_loads() -> None:
    assert _resolve('# store.load_component("notify")\nimport kfp\n') == {}
    assert not extract_loads(b"import kfp\n").loads_anything
    assert not extract_loads(b"this is not python (\n load_component(").loads_anything
