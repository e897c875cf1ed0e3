"""The calls both KFP deploy adapters make to one endpoint: JSON and multipart uploads with the
runner's retries, look-ups by name, and the KFP UI link of a pipeline version (what the template
store returns and the recurring runs read back).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import kfp
import requests

from deploy.errors import DeployError
from deploy.runners.kfp_calls import (
    RETRY_STATUSES,
    KfpRequestRefused,
    RetryPolicy,
    Transient,
    api_message,
    name_filter,
    with_retries,
)
from deploy.runners.kfp_http import JsonHttp, _describe, default_session, normalise_host
from deploy.runners.kfp_v1beta1 import V1Api
from deploy.runners.kfp_v2beta1 import V2Api

V2 = "/apis/v2beta1"
V1 = "/apis/v1beta1"
_REFERENCE = re.compile(r"/#/pipelines/details/(?P<pipeline>[^/]+)/version/(?P<version>[^/?#]+)$")


class KfpDeployEndpoint:
    """The JSON and multipart calls of one KFP endpoint, retried like the runner's."""

    def __init__(self, host: str, *, session: requests.Session | None, namespace: str | None,
                 client_factory: Callable[[], kfp.Client] | None, retry: RetryPolicy) -> None:
        self.host = normalise_host(host)
        self.namespace = namespace
        self.retry = retry
        self._session_factory = (lambda: session) if session is not None else lambda: default_session(self.host)
        self._session: requests.Session | None = None
        self.http = JsonHttp(self.host, self._session_factory, retry)
        factory = client_factory or (lambda: kfp.Client(host=self.host, namespace=namespace or "kubeflow"))
        self.v2 = V2Api(self.http, factory, namespace=namespace)
        self.v1 = V1Api(self.http, namespace=namespace)

    def upload(self, what: str, path: str, params: Mapping[str, str], content: bytes,
               recover: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
        """POST a package as the `uploadfile` part; after a lost answer, `recover` finds what was made."""
        def once() -> dict[str, Any]:
            if self._session is None:
                self._session = self._session_factory()
            timeout = self.retry.request_timeout
            try:
                response = self._session.post(f"{self.host}{path}", params=dict(params),
                                              files={"uploadfile": ("pipeline.yaml", content, "application/x-yaml")},
                                              timeout=(timeout, timeout))
            except requests.RequestException as exc:
                raise Transient(_describe(exc)) from None
            if response.status_code in RETRY_STATUSES:
                raise Transient(f"HTTP {response.status_code}: {api_message(response.content, response.reason)}")
            if response.status_code >= 400:
                raise KfpRequestRefused(what, response.status_code, api_message(response.content, response.reason))
            try:
                return dict(response.json())
            except ValueError:
                raise KfpRequestRefused(what, response.status_code, "the answer is not the KFP API's JSON") from None

        return with_retries(self.host, what, once, self.retry, recover=recover)

    def first(self, what: str, path: str, field: str, key: str, name: str, *, op: str,
              params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The first listed item whose `key` is `name`."""
        query = {"filter": name_filter(key, name, operation_key=op), "page_size": 10, **(params or {})}
        answer = self.http.call(what, "GET", path, params=query) or {}
        items = answer.get(field) or answer.get(_camel(field)) or []
        return next((i for i in items if i.get(key) == name), None)


def _camel(name: str) -> str:
    """`snake_name` → `snakeName`: the KFP API answers in either."""
    head, *rest = name.split("_")
    return head + "".join(r.title() for r in rest)


def version_page(ui_host: str, pipeline_id: str, version_id: str) -> str:
    """The KFP UI page of a pipeline version: what a KFP deploy returns as the template's reference."""
    return f"{ui_host}/#/pipelines/details/{pipeline_id}/version/{version_id}"


def parse_version_page(template: str, pipeline: str) -> tuple[str, str]:
    """The pipeline and version ids of a `version_page`; a `DeployError` for anything else."""
    match = _REFERENCE.search(template)
    if match is None:
        raise DeployError(f"cannot schedule '{pipeline}': {template!r} is not a KFP pipeline version",
                          hint="KFP recurring runs need the pipeline deployed to the KFP endpoint (target: kfp)")
    return match["pipeline"], match["version"]
