"""Load components by folder name, as `kfp.components.ComponentStore` did in kfp 1.8.

kfp 2 removed `ComponentStore`; pipelines written for the seed template keep working with
either SDK by falling back to this class, which looks up `<search path>/<name>/component.yaml`.
"""

from pathlib import Path

from kfp import components


class ComponentStore:
    """A local-only component store: `load_component("train")` → `<path>/train/component.yaml`."""

    def __init__(self, local_search_paths: list[str]) -> None:
        self.local_search_paths = list(local_search_paths)

    def load_component(self, name: str):
        """Load the first `<path>/<name>/component.yaml` found on the search paths."""
        for folder in self.local_search_paths:
            spec = Path(folder) / name / "component.yaml"
            if spec.is_file():
                return components.load_component_from_file(str(spec))
        raise FileNotFoundError(
            f"component '{name}' not found: no {name}/component.yaml under {', '.join(self.local_search_paths)}")
