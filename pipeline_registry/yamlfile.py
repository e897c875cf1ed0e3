"""YAML loading that remembers where every value came from.

Repository files are user input: an error must name the file, the line and the field. PyYAML's
node tree keeps positions; `YamlDocument.line_of` maps a path of keys back to a line, and pydantic
validation errors are turned into `ConfigError`s that point at that line. The models are pydantic
models or (`.kfp-bot.yaml`) dataclasses pydantic validates (`config_rules`).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from pipeline_registry.errors import ConfigError

# Unknown keys: in a pydantic model, in a dataclass.
_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its data and its node tree, for line numbers."""

    file: str
    data: Any
    node: yaml.Node | None

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """1-based line of the value at `path` (or of its nearest existing parent)."""
        node = self.node
        line = node.start_mark.line + 1 if node is not None else None
        for key in path:
            if isinstance(node, yaml.MappingNode):
                match = next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
                if match is None:
                    key_node = next((k for k, _ in node.value if getattr(k, "value", None) == str(key)), None)
                    return key_node.start_mark.line + 1 if key_node is not None else line
                key_line = next(k for k, _ in node.value if getattr(k, "value", None) == str(key)).start_mark.line
                node, line = match, key_line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
                line = node.start_mark.line + 1
            else:
                break
        return line


def parse_yaml(text: str | bytes, file: str) -> YamlDocument:
    """Parse one YAML document; a syntax error becomes a `ConfigError` with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        # An unclosed bracket or quote is only noticed at the end of the file: point at its start.
        if exc.context_mark is not None and "<stream end>" in problem:
            mark = exc.context_mark
            problem = f"{problem} ({exc.context})" if exc.context else problem
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, f"invalid YAML: {problem}", line=line, hint="fix the YAML syntax") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, f"invalid YAML: {exc}", hint="fix the YAML syntax") from None
    return YamlDocument(file=file, data=data, node=node)


def validate_model(model: type, doc: YamlDocument, data: Any | None = None,
                   prefix: Sequence[str | int] = ()) -> Any:
    """Validate `data` (default: the whole document) against `model`.

    The first problem is raised as a `ConfigError` naming file, line and field; unknown keys
    come with the closest valid key as a suggestion.
    """
    payload = doc.data if data is None else data
    try:
        return _adapter(model).validate_python(payload if payload is not None else {})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = [*prefix, *first["loc"]]
        field_path = ".".join(str(p) for p in loc) or None
        hint = None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] in _UNKNOWN_KEY:
            message = "unknown key"
            hint = _suggestion(str(loc[-1]), _allowed_keys(model, list(first["loc"])[:-1]))
        raise ConfigError(doc.file, message, line=doc.line_of(loc), field=field_path, hint=hint) from None


def _adapter(model: type) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:  # built once per model: building one costs more than validating a file
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    return adapter


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _allowed_keys(model: type, parent: list[Any]) -> list[str]:
    current: Any = model
    for key in parent:
        fields = _fields(current)
        if str(key) not in fields:
            return []
        current = _model_in(fields[str(key)])
        if current is None:
            return []
    return list(_fields(current))


def _fields(model: type) -> dict[str, Any]:
    """Field name -> annotation (resolved) of a pydantic model or a dataclass."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {name: info.annotation for name, info in model.model_fields.items()}
    if dataclasses.is_dataclass(model):
        import typing

        hints = typing.get_type_hints(model)
        return {f.name: hints[f.name] for f in dataclasses.fields(model) if f.init}
    return {}


def _model_in(annotation: Any) -> type | None:
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _suggestion(key: str, allowed: Iterable[str]) -> str:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"valid keys: {', '.join(allowed)}" if allowed else "remove it"
