"""The repository's import path: `compile.python_path` folders and packages installed from the repository."""

from __future__ import annotations

from pipeline_registry.python_path import expand_folders, installed_packages, package_roots

FILES = {
    "requirements.txt": b"kfp==2.7.0\n-e components/tabular\n--editable=./components/text  # ours\nnumpy\n"
                        b"-e git+https://github.com/x/y.git#egg=y\n",
    "pipelines/pyproject.toml": b'[tool.poetry.dependencies]\npython = "^3.10"\n'
                                b'vision = {path = "../components/vision", develop = true}\n',
    "pipelines/Pipfile": b'[packages]\naudio = {path = "./../components/audio", editable = true}\n',
    "pyproject.toml": b'[project]\nname = "x"\ndependencies = ["geo @ file:///${PROJECT_ROOT}/components/geo",'
                      b' "abs @ file:///opt/abs"]\n',
}


def test_packages_installed_from_the_repository_are_found_in_every_declaring_file() -> None:
    found = installed_packages(frozenset(FILES) | {"README.md"}, lambda paths: {p: FILES[p] for p in paths})
    assert sorted(found) == ["components/audio", "components/geo", "components/tabular", "components/text",
                             "components/vision"]


def test_package_roots_prefer_src_and_patterns_name_folders_one_level_per_star() -> None:
    dirs = frozenset({"", "components", "components/tabular", "components/tabular/src", "components/text",
                      "components/text/src/text", "components/text/src", "src", "src/app"})
    assert package_roots(["components/tabular", "components/missing", "components/text"], dirs) == (
        "components/tabular/src", "components/text/src")
    assert expand_folders(["components/*/src", "src"], dirs) == (
        "components/tabular/src", "components/text/src", "src")
