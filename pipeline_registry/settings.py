"""`settings.yaml`: a pipeline's run parameters and run options.

The seed template writes top-level sections (such as `arguments:`), each a mapping of pipeline
parameters; they are merged into one set. Three section names are reserved for run options and
never passed to the pipeline:

- `run:` target, service account, pipeline root, caching, experiment, timeout, quality gates;
- `schedule:` cron, time zone and parameter overrides for deployed pipelines;
- `deploy:` what happens after a merge (e.g. `run: true` to run once).

A `null` parameter value means "not set here": the pipeline's own default applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from pipeline_registry.errors import ConfigError
from pipeline_registry.gates import parse_gate
from pipeline_registry.repo_config import Target
from pipeline_registry.yamlfile import YamlDocument, parse_yaml, validate_model

RESERVED_SECTIONS = ("run", "schedule", "deploy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _gate_text(value: Any) -> str:
    """A `run.gates` condition, checked when the file is read (ValueError names what is wrong)."""
    parse_gate("", value)
    return " ".join(str(value).split())


GateText = Annotated[str, BeforeValidator(_gate_text)]


class RunOptions(_Strict):
    """`run:` options for every run of the pipeline."""

    target: Target | None = None
    service_account: str | None = None
    pipeline_root: str | None = None
    enable_caching: bool | None = None
    experiment: str | None = None
    # Seconds; written as a number of seconds or a duration such as "90m", "2h" or "1h30m".
    timeout: int | None = Field(default=None, gt=0)
    # Quality gates: metric name -> condition (`pipeline_registry.gates`); trusted.
    gates: dict[str, GateText] | None = None

    @field_validator("gates", mode="before")
    @classmethod
    def _gates_mapping(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError('must map metric names to conditions, e.g. accuracy: ">= 0.9"')
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> int:
    """Seconds in "3600", "90m", "2h", "1h30m", "45s"; ValueError (pydantic shows it) otherwise."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"'{text}' is not a duration: write seconds (3600) or e.g. 90m, 2h, 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


class ScheduleOptions(_Strict):
    """`schedule:` for pipelines deployed from the default branch."""

    cron: str
    time_zone: str = "Etc/UTC"
    parameters: dict[str, Any] = Field(default_factory=dict)
    max_concurrent_runs: int = Field(default=1, ge=1)


class DeployOptions(_Strict):
    """`deploy:` what a merge does beyond uploading the template."""

    run: bool = False


@dataclass(frozen=True)
class PipelineSettings:
    """The merged parameters and the run options of one pipeline."""

    file: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    sections: tuple[str, ...] = ()
    run: RunOptions = RunOptions()
    schedule: ScheduleOptions | None = None
    deploy: DeployOptions = DeployOptions()
    lines: Mapping[str, int] = field(default_factory=dict)

    def line_of(self, parameter: str) -> int | None:
        """Line of a parameter in the file, for error messages."""
        return self.lines.get(parameter)


def parse_settings(text: str | bytes | None, file: str) -> PipelineSettings:
    """Parse `settings.yaml` contents (None: no file, no parameters)."""
    if text is None:
        return PipelineSettings(file=file)
    doc = parse_yaml(text, file)
    if doc.data is None:
        return PipelineSettings(file=file)
    if not isinstance(doc.data, dict):
        raise ConfigError(file, "must be a mapping of sections (e.g. 'arguments:')", line=1,
                          hint="write parameters under a section such as 'arguments:'")
    parameters: dict[str, Any] = {}
    origin: dict[str, str] = {}
    lines: dict[str, int] = {}
    sections: list[str] = []
    for section, values in doc.data.items():
        section = str(section)
        if section in RESERVED_SECTIONS:
            continue
        sections.append(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(file, f"section must be a mapping of parameter names to values, "
                              f"not {_kind(values)}", line=doc.line_of([section]), field=section,
                              hint=f"write '{section}:' followed by indented 'name: value' lines")
        for name, value in values.items():
            name = str(name)
            if value is None:
                continue
            if name in parameters and parameters[name] != value:
                raise ConfigError(file, f"set to {parameters[name]!r} in section '{origin[name]}' and to "
                                  f"{value!r} in section '{section}'", line=doc.line_of([section, name]),
                                  field=f"{section}.{name}", hint="keep one value per parameter")
            parameters[name] = value
            origin[name] = section
            lines[name] = doc.line_of([section, name]) or 0
    return PipelineSettings(
        file=file,
        parameters=parameters,
        sections=tuple(sections),
        run=_reserved(doc, "run", RunOptions) or RunOptions(),
        schedule=_reserved(doc, "schedule", ScheduleOptions),
        deploy=_reserved(doc, "deploy", DeployOptions) or DeployOptions(),
        lines=lines,
    )


def _reserved(doc: YamlDocument, section: str, model: type[BaseModel]) -> Any:
    if section not in doc.data or doc.data[section] is None:
        return None
    value = doc.data[section]
    if not isinstance(value, dict):
        raise ConfigError(doc.file, f"reserved section must be a mapping, not {_kind(value)}",
                          line=doc.line_of([section]), field=section)
    return validate_model(model, doc, data=value, prefix=[section])


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"the value {value!r}"
