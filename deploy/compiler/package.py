"""Reading a compiled pipeline package: its format, name, declared inputs and images.

Three formats reach the bot: kfp 2 PipelineSpec YAML, the `{"pipelineSpec", "runtimeConfig"}`
JSON that kfp 1.8's `kfp.v2.compiler` writes, and the Argo Workflow YAML of kfp 1.8's v1
compiler (possibly inside the `.tar.gz`/`.zip` that `dsl-compile` writes). Parameters are
checked and images verified against what this module reads, so every format is normalised to
the same `CompiledPipeline`.
"""

from __future__ import annotations

import enum
import json
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.errors import CompileError
from pipeline_registry.models import ParameterType, PipelineInput

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
PACKAGE_SUFFIXES = (".yaml", ".yml", ".json", *ARCHIVE_SUFFIXES)
_SPEC_ANNOTATION = "pipelines.kubeflow.org/pipeline_spec"
_SDK_ANNOTATION = "pipelines.kubeflow.org/kfp_sdk_version"

_IR_TYPES = {
    "STRING": ParameterType.STRING,
    "NUMBER_INTEGER": ParameterType.INTEGER,
    "NUMBER_DOUBLE": ParameterType.DOUBLE,
    "BOOLEAN": ParameterType.BOOLEAN,
    "LIST": ParameterType.LIST,
    "STRUCT": ParameterType.STRUCT,
    # The older IR that kfp 1.8's v2 compiler writes (`type:` instead of `parameterType:`).
    "INT": ParameterType.INTEGER,
    "DOUBLE": ParameterType.DOUBLE,
}
_ARGO_TYPES = {
    "string": ParameterType.STRING, "str": ParameterType.STRING,
    "integer": ParameterType.INTEGER, "int": ParameterType.INTEGER,
    "float": ParameterType.DOUBLE, "double": ParameterType.DOUBLE,
    "bool": ParameterType.BOOLEAN, "boolean": ParameterType.BOOLEAN,
    "list": ParameterType.LIST, "jsonarray": ParameterType.LIST,
    "dict": ParameterType.STRUCT, "jsonobject": ParameterType.STRUCT,
}


class PackageFormat(enum.Enum):
    """The kind of compiled pipeline package."""

    IR_YAML = "ir-yaml"
    JOB_JSON = "job-json"
    ARGO_YAML = "argo-yaml"


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled pipeline package and what the bot needs to know about it."""

    pipeline: str
    name: str
    format: PackageFormat
    package_path: Path
    inputs: tuple[PipelineInput, ...]
    images: tuple[str, ...]
    sdk_version: str
    # What the user should know about how it was compiled (an SDK fallback).
    notes: tuple[str, ...] = ()

    def read_text(self) -> str:
        """The package's text, as submitted to a pipeline backend."""
        return self.package_path.read_text(encoding="utf-8")

    def input(self, name: str) -> PipelineInput | None:
        """The declared input called `name`, if any."""
        return next((i for i in self.inputs if i.name == name), None)


def load_package(path: Path, pipeline: str) -> CompiledPipeline:
    """Parse an already compiled package file; archives are extracted next to themselves."""
    path = Path(path)
    if not path.is_file():
        raise CompileError(str(path), "compiled package does not exist")
    if path.name.endswith(ARCHIVE_SUFFIXES):
        path = _extract(path)
    data = _read_document(path)
    if not isinstance(data, dict):
        raise CompileError(str(path), "is not a pipeline package (expected a mapping at the top level)")
    if isinstance(data.get("pipelineSpec"), dict):
        return _from_ir(data["pipelineSpec"], pipeline, path, PackageFormat.JOB_JSON,
                        data.get("runtimeConfig") or {})
    if "pipelineInfo" in data or "root" in data:
        return _from_ir(data, pipeline, path, PackageFormat.IR_YAML, {})
    if data.get("kind") == "Workflow":
        return _from_argo(data, pipeline, path)
    raise CompileError(str(path), "is not a pipeline package: neither a kfp PipelineSpec nor an Argo Workflow",
                       hint="compile the pipeline with the kfp SDK")


def _extract(archive: Path) -> Path:
    """Write the archive's one YAML member beside the archive (never extracting other paths)."""
    stem = archive.name
    for suffix in ARCHIVE_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    target = archive.with_name(f"{stem}.yaml")
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                members = [m for m in zipped.namelist() if m.endswith((".yaml", ".yml"))]
                _one_member(archive, members)
                target.write_bytes(zipped.read(members[0]))
        else:
            with tarfile.open(archive, "r:*") as tarred:
                files = [m for m in tarred.getmembers() if m.isfile() and m.name.endswith((".yaml", ".yml"))]
                _one_member(archive, [m.name for m in files])
                handle = tarred.extractfile(files[0])
                assert handle is not None
                target.write_bytes(handle.read())
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise CompileError(str(archive), f"cannot read the archive: {exc}") from None
    return target


def _one_member(archive: Path, names: list[str]) -> None:
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        raise CompileError(str(archive), f"archive must hold exactly one pipeline YAML file (found: {found})")


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError(str(path), f"cannot read the package: {exc}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        # kfp 2 may append a platform-spec document; the pipeline spec is the first one.
        return next(iter(yaml.safe_load_all(text)), None)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CompileError(str(path), f"the package is not valid {path.suffix.lstrip('.').upper()}: {exc}") from None


def _from_ir(spec: dict, pipeline: str, path: Path, fmt: PackageFormat, runtime: dict) -> CompiledPipeline:
    root_inputs = (spec.get("root") or {}).get("inputDefinitions") or {}
    defaults = _runtime_defaults(runtime)
    inputs = []
    for name, definition in sorted((root_inputs.get("parameters") or {}).items()):
        definition = definition or {}
        kind = _IR_TYPES.get(definition.get("parameterType") or definition.get("type") or "STRING",
                             ParameterType.STRING)
        if "defaultValue" in definition:
            inputs.append(PipelineInput(name, kind, True, _typed(kind, definition["defaultValue"])))
        elif name in defaults:
            inputs.append(PipelineInput(name, kind, True, _typed(kind, defaults[name])))
        else:
            inputs.append(PipelineInput(name, kind, bool(definition.get("isOptional", False))))
    for name, definition in sorted((root_inputs.get("artifacts") or {}).items()):
        inputs.append(PipelineInput(name, ParameterType.ARTIFACT, bool((definition or {}).get("isOptional"))))
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    images = [((e or {}).get("container") or {}).get("image") for e in executors.values()]
    sdk = str(spec.get("sdkVersion") or "").removeprefix("kfp-")
    name = str((spec.get("pipelineInfo") or {}).get("name") or pipeline)
    return CompiledPipeline(pipeline, name, fmt, path, tuple(inputs), _sorted_images(images), sdk)


def _runtime_defaults(runtime: dict) -> dict[str, Any]:
    """Defaults from a kfp 1.8 v2 `runtimeConfig` (`parameters` values or `parameterValues`)."""
    found: dict[str, Any] = dict(runtime.get("parameterValues") or {})
    for name, value in (runtime.get("parameters") or {}).items():
        if isinstance(value, dict) and value:
            found[name] = next(iter(value.values()))
    return found


def _from_argo(doc: dict, pipeline: str, path: Path) -> CompiledPipeline:
    metadata = doc.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    try:
        spec = json.loads(annotations.get(_SPEC_ANNOTATION) or "{}")
    except json.JSONDecodeError:
        spec = {}
    inputs = []
    if spec.get("inputs") is not None:
        for item in spec.get("inputs") or []:
            kind = _argo_type(item.get("type"))
            has_default = "default" in item
            default = _typed(kind, item["default"]) if has_default else None
            inputs.append(PipelineInput(str(item["name"]), kind, has_default or bool(item.get("optional")), default))
    else:
        for item in ((doc.get("spec") or {}).get("arguments") or {}).get("parameters") or []:
            inputs.append(PipelineInput(str(item["name"]), ParameterType.STRING, "value" in item, item.get("value")))
    images: list[Any] = []
    for template in (doc.get("spec") or {}).get("templates") or []:
        for key in ("container", "script"):
            images.append((template.get(key) or {}).get("image"))
        for key in ("initContainers", "sidecars"):
            images.extend((c or {}).get("image") for c in template.get(key) or [])
    name = spec.get("name") or metadata.get("name") or str(metadata.get("generateName") or pipeline).rstrip("-")
    sdk = str(annotations.get(_SDK_ANNOTATION) or (metadata.get("labels") or {}).get(_SDK_ANNOTATION) or "")
    return CompiledPipeline(pipeline, str(name), PackageFormat.ARGO_YAML, path, tuple(inputs),
                            _sorted_images(images), sdk)


def _argo_type(declared: Any) -> ParameterType:
    if isinstance(declared, str):
        return _ARGO_TYPES.get(declared.lower(), ParameterType.STRING)
    return ParameterType.STRING


def _typed(kind: ParameterType, value: Any) -> Any:
    """A default value as the Python value of its declared type (Argo and protobuf JSON use strings)."""
    try:
        if kind is ParameterType.INTEGER and not isinstance(value, bool):
            return int(float(value)) if isinstance(value, (int, float)) else int(str(value))
        if kind is ParameterType.DOUBLE and not isinstance(value, bool):
            return float(value)
        if kind is ParameterType.BOOLEAN and isinstance(value, str):
            return {"true": True, "false": False}.get(value.strip().lower(), value)
        if kind in (ParameterType.LIST, ParameterType.STRUCT) and isinstance(value, str):
            return json.loads(value)
    except (TypeError, ValueError):
        return value
    return value


def _sorted_images(images: Iterable[Any]) -> tuple[str, ...]:
    return tuple(sorted({str(i) for i in images if i}))
