"""The Vertex AI pipeline job of a run: its id, labels, spec and runtime configuration.

Everything here is derived from the run request alone, deterministically, so that a redelivered
event asks Vertex AI for the very same job (same id, same content) and is answered ALREADY_EXISTS
instead of starting a second run. The job id embeds the run id, so a pipeline state event, which
carries only the job id, leads back to its run (`run_id_of`).

Vertex AI rules applied here rather than left to a refused request: job ids match
`[a-z][-a-z0-9]*` and are "less than 128 characters" (at most 127,
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs/create); label keys and values hold lowercase letters, digits, `_` and `-`, at
most 63 characters, keys starting with a letter, at most 64 labels; the pipeline root is a
`gs://` URI. Caching follows the Vertex AI SDK (`PipelineJob(enable_caching=...)`): the setting is
written into `cachingOptions.enableCache` of every task of the spec.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from google.cloud import aiplatform_v1
from google.protobuf import json_format, struct_pb2

from deploy.compiler.package import PackageFormat
from deploy.errors import RunError
from handlers.ports.run import RunRequest
from handlers.run_models import Run
from pipeline_registry.settings import RunOptions

JOB_ID_MAX = 127
JOB_ID_RULE = re.compile(r"[a-z][-a-z0-9]{0,126}")
JOB_PREFIX = "kfp-bot-"
RUN_LABEL = "kfp-bot-run"
MAX_LABELS = 64
# Vertex AI sets this label itself and overrides any value given.
RESERVED_LABELS = frozenset({"vertex-ai-pipelines-run-billing-id"})
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_MAX = 63
_RUN_ID = re.compile(r"run-[0-9a-f]{16}")
_JOB_RUN_SUFFIX = re.compile(r"(?:^|-)(run-[0-9a-f]{16})$")
_DISPLAY_NAME_MAX = 128
_ARGO_MESSAGE = ("pipeline '{pipeline}' was compiled by the kfp v1 SDK to an Argo workflow ({file}), which "
                 "Vertex AI cannot run")
_ARGO_HINT = ("compile it with kfp 2 (or kfp 1.8's kfp.v2.compiler), or run it on a KFP endpoint: "
              "`run: {target: kfp}` in its settings.yaml")


@dataclass(frozen=True)
class JobSpec:
    """The pipeline spec to submit and what the package says about its parameters.

    `legacy` is true for the schema 2.0.0 of kfp 1.8's v2 compiler, whose parameters go in
    `runtime_config.parameters` (typed `Value`s) instead of `parameter_values`; `defaults` are the
    values that compiler wrote in the package's own `runtimeConfig`.
    """

    pipeline_spec: dict[str, Any]
    defaults: dict[str, Any]
    legacy: bool


def job_id_for(run: Run) -> str:
    """The run's Vertex AI job id: `kfp-bot-<pipeline>-<run id>`, within Vertex AI's rules."""
    if _RUN_ID.fullmatch(run.id):
        tail = run.id
    else:  # not a `run_id_for` id: still deterministic and valid, but not invertible
        tail = f"{_slug(run.id)[:40]}-{_digest(run.id)}".lstrip("-")
    room = JOB_ID_MAX - len(JOB_PREFIX) - 1 - len(tail)
    name = _slug(run.pipeline)[:room].rstrip("-")
    return f"{JOB_PREFIX}{name}-{tail}" if name else f"{JOB_PREFIX}{tail}"


def run_id_of(job_id: str) -> str | None:
    """The run id inside a job id written by `job_id_for`; None for other jobs of the project."""
    if not job_id.startswith(JOB_PREFIX):
        return None
    match = _JOB_RUN_SUFFIX.search(job_id[len(JOB_PREFIX):])
    return match.group(1) if match else None


def vertex_labels(labels: Mapping[str, str], run_id: str) -> dict[str, str]:
    """`labels` made valid for Vertex AI, plus the run label; deterministic, at most 64.

    Invalid characters become `-`, text is lowercased, and a value too long is cut and ends with
    a hash of the whole value, so two long values stay distinct.
    """
    result = {RUN_LABEL: label_value(run_id)}
    for key, value in sorted(labels.items()):
        clean_key = _label_key(str(key))
        if clean_key is None or clean_key in RESERVED_LABELS or clean_key in result:
            continue
        if len(result) >= MAX_LABELS:
            break
        result[clean_key] = label_value(str(value))
    return result


def label_value(text: str) -> str:
    """`text` as a valid label value (lowercase letters, digits, `_`, `-`; at most 63 characters)."""
    clean = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    if len(clean) > _LABEL_MAX:
        clean = f"{clean[:_LABEL_MAX - 9].rstrip('-')}-{_digest(text)}"
    return clean


def _label_key(text: str) -> str | None:
    clean = label_value(text)
    if clean and not clean[0].isalpha():
        clean = label_value(f"k-{clean}")
    return clean if _LABEL_KEY.fullmatch(clean) else None


def display_name(run: Run) -> str:
    """What the Vertex AI console lists the job as: pipeline, repository, PR and commit."""
    where = f"{run.repo}#{run.pr}" if run.pr is not None else run.repo
    return f"{run.pipeline} · {where} @ {run.sha[:7]}"[:_DISPLAY_NAME_MAX]


def read_job_spec(request: RunRequest) -> JobSpec:
    """The pipeline spec of the request's package; RunError for what Vertex AI cannot run."""
    package = request.package
    path = Path(package.package_path)
    if getattr(package, "format", None) is PackageFormat.ARGO_YAML:
        raise RunError(_ARGO_MESSAGE.format(pipeline=request.run.pipeline, file=path.name), hint=_ARGO_HINT)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else next(iter(yaml.safe_load_all(text)), None)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise RunError(f"{path.name}: cannot read the compiled pipeline of '{request.run.pipeline}': {exc}") from None
    if not isinstance(data, dict):
        raise RunError(f"{path.name}: not a compiled pipeline")
    if isinstance(data.get("pipelineSpec"), dict):
        spec, runtime = data["pipelineSpec"], data.get("runtimeConfig") or {}
    elif data.get("kind") == "Workflow":
        raise RunError(_ARGO_MESSAGE.format(pipeline=request.run.pipeline, file=path.name), hint=_ARGO_HINT)
    elif "root" in data or "pipelineInfo" in data:
        spec, runtime = data, {}
    else:
        raise RunError(f"{path.name}: not a compiled kfp pipeline (no pipelineSpec, root or pipelineInfo)")
    legacy = _version(str(spec.get("schemaVersion") or "2.1.0")) <= (2, 0, 0)
    return JobSpec(copy.deepcopy(spec), _runtime_values(runtime, _types(spec)), legacy)


def build_job(request: RunRequest, *, pipeline_root: str | None,
              service_account: str | None) -> tuple[str, aiplatform_v1.PipelineJob]:
    """The job id and the `PipelineJob` to create for `request`; RunError when it cannot run.

    The settings.yaml run options win over the bot's defaults (`pipeline_root`,
    `service_account`); parameters are the request's (already checked) over the package's defaults.
    """
    run, options = request.run, request.options
    root = options.pipeline_root or pipeline_root
    if not root or not root.startswith("gs://"):
        where = "run.pipeline_root in settings.yaml" if options.pipeline_root else "KFP_BOT_PIPELINE_ROOT"
        raise RunError(f"Vertex AI needs a gs:// pipeline root for '{run.pipeline}', got {root!r} ({where})",
                       hint="set a Cloud Storage URI such as gs://bucket/pipeline-root")
    refuse_unsupported(options, run.pipeline)
    spec = read_job_spec(request)
    if options.enable_caching is not None:
        set_caching(spec.pipeline_spec, options.enable_caching)
    config = aiplatform_v1.PipelineJob.RuntimeConfig(gcs_output_directory=root)
    values = {**spec.defaults, **{k: v for k, v in request.parameters.items() if v is not None}}
    if spec.legacy:
        types = _types(spec.pipeline_spec)
        for name, value in values.items():
            config.parameters[name] = _legacy_value(value, types.get(name, "STRING"))
    else:
        for name, value in values.items():
            config.parameter_values[name] = _value(value)
    job = aiplatform_v1.PipelineJob(
        display_name=display_name(run),
        pipeline_spec=json_format.ParseDict(spec.pipeline_spec, struct_pb2.Struct()),
        labels=vertex_labels(request.labels, run.id),
        runtime_config=config,
        service_account=options.service_account or service_account or "",
    )
    return job_id_for(run), job


def refuse_unsupported(options: RunOptions, pipeline: str) -> None:
    """RunError for `settings.yaml` run options this runner cannot honour, instead of ignoring them.

    `run.experiment`: the Vertex AI API has no experiment field on a pipeline job; the SDK's
    `PipelineJob.submit(experiment=...)` links the job's run context to an experiment context of
    the metadata store after the job starts, which this runner does not do. A pipeline asking for
    an experiment is refused (at `kfp-bot check` and at submission) rather than run without one.
    """
    if options.experiment:
        raise RunError(f"'{pipeline}' sets run.experiment ({options.experiment!r}) in settings.yaml, but runs on "
                       "Vertex AI are not associated with experiments by kfp-bot",
                       hint="remove run.experiment, or run the pipeline on a KFP endpoint (run: {target: kfp}), "
                            "where runs go to that experiment")


def set_caching(pipeline_spec: dict[str, Any], enabled: bool) -> None:
    """Write `enableCache` into every task of the spec, as the Vertex AI SDK does."""
    components = pipeline_spec.get("components") or {}
    for component in [pipeline_spec.get("root") or {}, *components.values()]:
        for task in ((component or {}).get("dag") or {}).get("tasks", {}).values():
            options = task.get("cachingOptions")
            task["cachingOptions"] = {**(options if isinstance(options, dict) else {}), "enableCache": enabled}


def _types(spec: Mapping[str, Any]) -> dict[str, str]:
    parameters = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {name: str((d or {}).get("parameterType") or (d or {}).get("type") or "STRING")
            for name, d in parameters.items()}


def _runtime_values(runtime: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    """Defaults in a kfp 1.8 `runtimeConfig`: `parameterValues`, or typed `parameters`."""
    values: dict[str, Any] = dict(runtime.get("parameterValues") or {})
    for name, typed in (runtime.get("parameters") or {}).items():
        if not isinstance(typed, dict) or not typed:
            continue
        kind, value = next(iter(typed.items()))
        if kind == "intValue":
            value = int(value)
        elif kind == "doubleValue":
            value = float(value)
        values.setdefault(name, value)
    return values


def _value(value: Any) -> struct_pb2.Value:
    try:
        return json_format.ParseDict(value, struct_pb2.Value())
    except (json_format.ParseError, TypeError) as exc:
        raise RunError(f"parameter value {value!r} cannot be sent to Vertex AI: {exc}") from None


def _legacy_value(value: Any, kind: str) -> aiplatform_v1.Value:
    """A schema 2.0.0 parameter, typed as the SDK does (lists, dicts and booleans as JSON text)."""
    if isinstance(value, (bool, list, dict)):
        value = json.dumps(value)
    if kind in ("INT", "NUMBER_INTEGER") and not isinstance(value, str):
        return aiplatform_v1.Value(int_value=int(value))
    if kind in ("DOUBLE", "NUMBER_DOUBLE") and not isinstance(value, str):
        return aiplatform_v1.Value(double_value=float(value))
    return aiplatform_v1.Value(string_value=str(value))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3]) or (0,)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]
