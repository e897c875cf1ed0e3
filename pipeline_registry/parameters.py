"""Pipeline parameters checked against a compiled pipeline's declared inputs.

A run's parameters come from two places: `settings.yaml` (values already typed by YAML) and
overrides typed by a person (`kfp-bot run -p epochs=3`, `/run training-pipeline lr=0.01`), which
arrive as strings. Both are checked here, before anything is submitted, so that a typo or a
wrong type is answered with every problem at once and the list of valid inputs, instead of a
failed run minutes later.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_registry.errors import ParameterError
from pipeline_registry.models import ParameterType, PipelineInput
from pipeline_registry.settings import PipelineSettings

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")

_EXPECTED = {
    ParameterType.STRING: "a string",
    ParameterType.INTEGER: "an integer",
    ParameterType.DOUBLE: "a number",
    ParameterType.BOOLEAN: "true or false",
    ParameterType.LIST: "a JSON list",
    ParameterType.STRUCT: "a JSON object",
}
# In settings.yaml lists and mappings are written in YAML, not JSON.
_EXPECTED_IN_YAML = {ParameterType.LIST: "a list", ParameterType.STRUCT: "a mapping"}


def parse_override(raw: str, spec: PipelineInput) -> Any:
    """Type the string `raw` as the input `spec` declares; ParameterError when it does not fit.

    Integers accept only whole numbers, doubles accept integers too, booleans accept
    true/false/yes/no/1/0 (any case), lists and structs are JSON, strings are taken as is.
    """
    kind = spec.type
    if kind is ParameterType.ARTIFACT:
        raise ParameterError([_artifact_problem(spec.name)])
    text = raw.strip()
    try:
        if kind is ParameterType.STRING:
            return raw
        if kind is ParameterType.INTEGER:
            return int(text, 10)
        if kind is ParameterType.DOUBLE:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
        if kind is ParameterType.BOOLEAN:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(text)
        value = json.loads(text)
        if (kind is ParameterType.LIST) != isinstance(value, list) or not isinstance(value, (list, dict)):
            raise ValueError(text)
        return value
    except ValueError:
        raise ParameterError([f"{spec.name}: expected {_EXPECTED[kind]}, got {raw!r}"]) from None


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """Split `key=value` items into a mapping (the value may itself contain '=')."""
    result: dict[str, str] = {}
    problems: list[str] = []
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(f"{item!r} is not a parameter assignment: write name=value")
            continue
        result[name] = value
    if problems:
        raise ParameterError(problems)
    return result


def resolve_parameters(
    settings: PipelineSettings,
    overrides: Mapping[str, str],
    inputs: Sequence[PipelineInput],
) -> dict[str, Any]:
    """Merge `settings.yaml` values with typed overrides and check them against `inputs`.

    Every problem (unknown name, artifact input, wrong type, missing required input) is
    collected and raised as one ParameterError listing the declared inputs. Returns only the
    values given; the pipeline's own defaults apply to the rest.
    """
    declared = {spec.name: spec for spec in inputs}
    settable = [spec.name for spec in inputs if spec.type is not ParameterType.ARTIFACT]
    problems: list[str] = []
    result: dict[str, Any] = {}

    for name, value in settings.parameters.items():
        if name in overrides:
            continue
        where = _where(settings, name)
        spec = declared.get(name)
        if spec is None:
            problems.append(f"{where}: {_unknown(name, settable)}")
        elif spec.type is ParameterType.ARTIFACT:
            problems.append(f"{where}: {_artifact_problem(name)}")
        else:
            checked, problem = _check_yaml_value(value, spec)
            if problem:
                problems.append(f"{where}: {problem}")
            else:
                result[name] = checked

    for name, raw in overrides.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(_unknown(name, settable))
            continue
        try:
            result[name] = parse_override(raw, spec)
        except ParameterError as exc:
            problems.extend(exc.problems)

    for spec in inputs:
        if spec.type is ParameterType.ARTIFACT or spec.name in result or spec.name in overrides:
            continue
        if spec.name in settings.parameters:
            continue  # already reported as a wrong value
        if not spec.optional and spec.default is None:
            problems.append(f"missing required parameter '{spec.name}' ({spec.type.value}): set it in "
                            f"{settings.file} or pass {spec.name}=...")

    if problems:
        raise ParameterError(problems, valid=describe_inputs(inputs))
    return result


def describe_inputs(inputs: Sequence[PipelineInput]) -> list[str]:
    """The settable inputs as shown to users: `epochs (integer, default 1)`, `dataset (string, required)`."""
    described = []
    for spec in inputs:
        if spec.type is ParameterType.ARTIFACT:
            continue
        if spec.default is not None:
            extra = f"default {json.dumps(spec.default)}"
        else:
            extra = "optional" if spec.optional else "required"
        described.append(f"{spec.name} ({spec.type.value}, {extra})")
    return described


def _check_yaml_value(value: Any, spec: PipelineInput) -> tuple[Any, str | None]:
    """The value as it will be submitted, or a problem when YAML typed it differently."""
    kind = spec.type
    ok = False
    if kind is ParameterType.STRING:
        ok = isinstance(value, str)
    elif kind is ParameterType.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is ParameterType.DOUBLE:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind is ParameterType.BOOLEAN:
        ok = isinstance(value, bool)
    elif kind is ParameterType.LIST:
        ok = isinstance(value, list)
    elif kind is ParameterType.STRUCT:
        ok = isinstance(value, dict)
    if ok:
        return value, None
    problem = f"{spec.name}: expected {_EXPECTED_IN_YAML.get(kind, _EXPECTED[kind])}, got {_yaml_kind(value)}"
    if kind is ParameterType.STRING and not isinstance(value, (list, dict)):
        problem += f" (quote it to make it a string: {spec.name}: \"{value}\")"
    return value, problem


def _yaml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the value {value!r}"


def _where(settings: PipelineSettings, name: str) -> str:
    line = settings.line_of(name)
    return f"{settings.file}:{line}" if line else settings.file


def _unknown(name: str, settable: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, settable, n=1, cutoff=0.6)
    suggestion = f" (did you mean '{match[0]}'?)" if match else ""
    return f"unknown parameter '{name}'{suggestion}"


def _artifact_problem(name: str) -> str:
    return f"'{name}' is an artifact input; it cannot be set as a parameter"
