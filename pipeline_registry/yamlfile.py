"""YAML loading that remembers where every value came from.

Repository files are user input: an error must name the file, the line and the field. PyYAML's
node tree keeps positions; `YamlDocument.line_of` maps a path of keys back to a line, and pydantic
validation errors are turned into `ConfigError`s that point at that line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline_registry.errors import ConfigError


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


def validate_model(model: type[BaseModel], doc: YamlDocument, data: Any | None = None,
                   prefix: Sequence[str | int] = ()) -> Any:
    """Validate `data` (default: the whole document) against `model`.

    The first problem is raised as a `ConfigError` naming file, line and field; unknown keys
    come with the closest valid key as a suggestion.
    """
    payload = doc.data if data is None else data
    try:
        return model.model_validate(payload if payload is not None else {})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = [*prefix, *first["loc"]]
        field_path = ".".join(str(p) for p in loc) or None
        hint = None
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
            hint = _suggestion(str(loc[-1]), _allowed_keys(model, list(first["loc"])[:-1]))
        raise ConfigError(doc.file, message, line=doc.line_of(loc), field=field_path, hint=hint) from None


def _allowed_keys(model: type[BaseModel], parent: list[Any]) -> list[str]:
    current: Any = model
    for key in parent:
        fields = getattr(current, "model_fields", None)
        if not fields or str(key) not in fields:
            return []
        annotation = fields[str(key)].annotation
        current = _model_in(annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}).keys()) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
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
