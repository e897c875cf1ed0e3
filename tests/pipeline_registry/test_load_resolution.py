"""Where the component loads of a pipeline file resolve among a snapshot's files."""

from __future__ import annotations

from pipeline_registry.component_loads import extract_loads
from pipeline_registry.load_resolution import resolve_loads, unresolved_loads

PATHS = frozenset({
    "components/notify/component.yaml", "components/notify/Dockerfile", "components/validate/component.yaml",
    "components/group/inner/component.yaml",
    "pipelines/p/p.py", "pipelines/p/train/component.yaml", "pipelines/q/fit/component.yaml",
})


def _is_dir(folder: str) -> bool:
    return not folder or any(p.startswith(folder + "/") for p in PATHS)


def _resolve(text: str) -> dict[str, str]:
    return resolve_loads(extract_loads(text.encode()), "pipelines/p/p.py", ("pipelines/p", "components"),
                         PATHS, _is_dir)


def test_component_store_names_resolve_through_search_paths() -> None:
    text = ('import kfp\nstore = kfp.components.ComponentStore(\n    local_search_paths=["pipelines/p", "components"],'
            '\n    url_search_prefixes=["https://x/"])\n'
            'train = store.load_component("train")\nnotify = store.load_component(name="notify")\n'
            'inner = store.load_component("group/inner")\nmissing = store.load_component("missing")\n')
    assert _resolve(text) == {"pipelines/p/train": 'load_component("train")',
                              "components/notify": 'load_component("notify")',
                              "components/group/inner": 'load_component("group/inner")'}


def test_search_paths_limit_where_names_are_found() -> None:
    text = 'from kfp.components import ComponentStore\ns = ComponentStore(["pipelines/q"])\ns.load_component("fit")\n' \
           's.load_component("notify")\n'
    assert list(_resolve(text)) == ["pipelines/q/fit"]


def test_files_relative_to_the_root_or_the_pipeline_folder() -> None:
    text = ('from kfp import components\n'
            'a = components.load_component_from_file("components/notify/component.yaml")\n'
            'b = components.load_component_from_file("train/component.yaml")\n'
            'c = components.load_component(filename="../../components/validate/component.yaml")\n'
            "d = components.load_component_from_text('name: inline')\n"
            'e = components.load_component(url="https://example.com/component.yaml")\n')
    assert sorted(_resolve(text)) == ["components/notify", "components/validate", "pipelines/p/train"]


def test_a_computed_name_loads_every_component_in_the_search_paths() -> None:
    text = ('import kfp\nstore = kfp.components.ComponentStore(local_search_paths=["components"])\n'
            'def op(name):\n    return store.load_component(name)\n')
    assert sorted(_resolve(text)) == ["components/notify", "components/validate"]


def test_unknown_search_paths_fall_back_to_the_defaults() -> None:
    text = ('import os, kfp\nHERE = os.path.dirname(__file__)\n'
            'store = kfp.components.ComponentStore(local_search_paths=[HERE])\nstore.load_component("train")\n'
            'store.load_component("notify")\n')
    assert sorted(_resolve(text)) == ["components/notify", "pipelines/p/train"]


def _unresolved(text: str, paths: frozenset[str] = PATHS) -> tuple[str, ...]:
    return unresolved_loads(extract_loads(text.encode()), "pipelines/p/p.py", ("pipelines/p", "components"),
                            paths, lambda folder: not folder or any(p.startswith(folder + "/") for p in paths))


def test_a_load_that_resolves_nowhere_is_named_with_its_line_and_why() -> None:
    renamed = frozenset(p.replace("components/", "shared/") for p in PATHS)
    text = ('import kfp\n'
            'store = kfp.components.ComponentStore(local_search_paths=["pipelines/p", "components"])\n'
            'train = store.load_component("train")\n'
            'notify = store.load_component("notify")\n'
            'spec = kfp.components.load_component_from_file("components/validate/component.yaml")\n')
    assert _unresolved(text) == ()
    assert _unresolved(text, renamed) == (
        "pipelines/p/p.py:4: load_component(\"notify\") resolves nowhere: the search path 'components' (line 2) "
        "does not exist",
        'pipelines/p/p.py:5: load_component_from_file("components/validate/component.yaml") resolves nowhere: '
        "no file components/validate/component.yaml from the repository root or pipelines/p")
    assert _unresolved('s = ComponentStore(["components"])\ns.load_component("gone")\n') == (
        'pipelines/p/p.py:2: load_component("gone") resolves nowhere: no gone/component.yaml in components',)


def test_loads_that_cannot_be_judged_are_not_reported() -> None:
    text = ('import os, kfp\nPATHS = os.environ["X"]\n'
            's = kfp.components.ComponentStore(local_search_paths=PATHS)\ns.load_component("anything")\n'
            'kfp.components.load_component_from_file(os.path.join(os.path.dirname(__file__), "c.yaml"))\n'
            'kfp.components.load_component_from_file("../../../outside/component.yaml")\n'
            'kfp.components.load_component_from_file("../../components/validate/component.yaml")\n'
            'kfp.components.load_component(url="https://example.com/component.yaml")\n')
    assert _unresolved(text) == ()
