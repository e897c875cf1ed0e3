"""The `TemplateStore` port on a KFP endpoint: one KFP pipeline per repository pipeline, one
pipeline version per commit (v2beta1 for kfp 2 packages, v1beta1 for Argo workflows)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import kfp
import requests

from deploy.compiler.package import PackageFormat, load_package
from deploy.errors import DeployError
from deploy.kfp_deploy.endpoint import V1, V2, KfpDeployEndpoint, version_page
from deploy.runners.kfp_calls import KfpRequestRefused, RetryPolicy
from deploy.runners.kfp_http import normalise_host

log = logging.getLogger("kfp_bot.deploy.kfp")


class KfpPipelineStore:
    """The `TemplateStore` port on a KFP endpoint: one pipeline per repository pipeline, one version per commit."""

    def __init__(self, host: str, *, session: requests.Session | None = None, namespace: str | None = None,
                 client_factory: Callable[[], kfp.Client] | None = None, ui_host: str | None = None,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        self.endpoint = KfpDeployEndpoint(host, session=session, namespace=namespace,
                                          client_factory=client_factory, retry=retry)
        self.ui_host = normalise_host(ui_host) if ui_host else self.endpoint.host

    def upload(self, pipeline: str, package: Any, *, version: str, tags: Sequence[str],
               metadata: Mapping[str, str]) -> str:
        """Upload the package as version `version` (reused when it exists); the version's page in the KFP UI."""
        package_format = _format(package, pipeline)
        content = _content(Path(package.package_path), package_format, pipeline)
        description = _description(tags, metadata)
        if package_format is PackageFormat.ARGO_YAML:
            pipeline_id, version_id = self._upload_v1(pipeline, version, content, description)
        else:
            if not self.endpoint.v2.served():
                raise DeployError(f"{self.endpoint.host} serves only the Kubeflow Pipelines v1 API, which cannot "
                                  f"take the kfp 2 package of '{pipeline}'",
                                  hint="compile with the kfp 1.8 SDK's v1 compiler, or deploy to a KFP 2 endpoint")
            pipeline_id, version_id = self._upload_v2(pipeline, version, content, description)
        ref = version_page(self.ui_host, pipeline_id, version_id)
        log.info("pipeline %s version %s is %s", pipeline, version, ref)
        return ref

    def _upload_v2(self, pipeline: str, version: str, content: bytes, description: str) -> tuple[str, str]:
        ep = self.endpoint
        scope = {"namespace": ep.namespace} if ep.namespace else {}

        def find_pipeline() -> dict[str, Any] | None:
            return ep.first(f"look up pipeline '{pipeline}'", f"{V2}/pipelines", "pipelines", "display_name",
                            pipeline, op="operation", params=scope)

        found = find_pipeline()
        if found is None:
            try:
                found = ep.http.call(f"create pipeline '{pipeline}'", "POST", f"{V2}/pipelines",
                                     body={"display_name": pipeline, "description": "Deployed by kfp-bot", **scope},
                                     recover=find_pipeline)
            except KfpRequestRefused as exc:
                found = find_pipeline() if exc.status == 409 else None
                if found is None:
                    raise
        pipeline_id = str(found["pipeline_id"])

        def find_version() -> dict[str, Any] | None:
            return ep.first(f"look up version '{version}' of '{pipeline}'", f"{V2}/pipelines/{pipeline_id}/versions",
                            "pipeline_versions", "display_name", version, op="operation")

        existing = find_version() or ep.upload(
            f"upload version '{version}' of '{pipeline}'", f"{V2}/pipelines/upload_version",
            {"name": version, "pipelineid": pipeline_id, "description": description}, content, find_version)
        return pipeline_id, str(existing["pipeline_version_id"])

    def _upload_v1(self, pipeline: str, version: str, content: bytes, description: str) -> tuple[str, str]:
        ep = self.endpoint

        def find_pipeline() -> dict[str, Any] | None:
            return ep.first(f"look up pipeline '{pipeline}'", f"{V1}/pipelines", "pipelines", "name", pipeline,
                            op="op")

        found = find_pipeline() or ep.upload(f"upload pipeline '{pipeline}'", f"{V1}/pipelines/upload",
                                             {"name": pipeline, "description": "Deployed by kfp-bot"}, content,
                                             find_pipeline)
        pipeline_id = str(found["id"])

        def find_version() -> dict[str, Any] | None:
            return ep.first(f"look up version '{version}' of '{pipeline}'", f"{V1}/pipeline_versions", "versions",
                            "name", version, op="op",
                            params={"resource_key.type": "PIPELINE", "resource_key.id": pipeline_id})

        existing = find_version() or ep.upload(
            f"upload version '{version}' of '{pipeline}'", f"{V1}/pipelines/upload_version",
            {"name": version, "pipelineid": pipeline_id, "description": description}, content, find_version)
        return pipeline_id, str(existing["id"])


def _format(package: Any, pipeline: str) -> PackageFormat:
    known = getattr(package, "format", None)
    return known if isinstance(known, PackageFormat) else load_package(Path(package.package_path), pipeline).format


def _content(path: Path, package_format: PackageFormat, pipeline: str) -> bytes:
    """The bytes to upload; a kfp 1.8 job JSON is uploaded as its pipeline spec."""
    try:
        if package_format is PackageFormat.JOB_JSON:
            return json.dumps(json.loads(path.read_text(encoding="utf-8"))["pipelineSpec"]).encode()
        return path.read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise DeployError(f"{path.name}: cannot read the compiled pipeline of '{pipeline}': {exc}") from None


def _description(tags: Sequence[str], metadata: Mapping[str, str]) -> str:
    said = ", ".join(f"{k}={v}" for k, v in metadata.items() if v)
    return f"kfp-bot deploy; tags: {', '.join(tags)}; {said}"[:1000]
