"""Fakes of the two remote template stores, over HTTP on 127.0.0.1.

`FakeGcs` serves the Cloud Storage JSON API's multipart upload
(`POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart`), which `google-cloud-storage` uses for
small files, and keeps each object's bytes and metadata. `FakeKfpRegistry` serves the Artifact
Registry Kubeflow Pipelines upload that `kfp.registry.RegistryClient.upload_pipeline` posts
(multipart form: `content` file and comma-separated `tags`), answering `<package>/<sha256:digest>`
as text, the package being the pipeline's name in the uploaded spec.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Self

import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.http import FakeHTTPServer, Incoming, JsonResponse


@dataclass
class StoredObject:
    """One object of the fake bucket."""

    bucket: str
    name: str
    data: bytes
    metadata: dict[str, str]
    content_type: str


class FakeGcs(FakeHTTPServer):
    """Cloud Storage's multipart upload, recording objects by (bucket, name)."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.add_route("POST", "/upload/storage/v1/b/{bucket}/o", self._upload)

    def _upload(self, incoming: Incoming) -> JsonResponse:
        if incoming.query.get("uploadType") != "multipart":
            return JsonResponse(400, {"error": {"code": 400, "message": "only multipart uploads are faked"}})
        content_type = next(v for k, v in incoming.headers.items() if k.lower() == "content-type")
        message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + incoming.body,
                                           policy=email.policy.HTTP)
        resource_part, data_part = list(message.iter_parts())
        resource = json.loads(resource_part.get_payload(decode=True))
        stored = StoredObject(bucket=incoming.params["bucket"], name=resource["name"],
                              data=data_part.get_payload(decode=True), metadata=resource.get("metadata") or {},
                              content_type=resource.get("contentType") or data_part.get_content_type())
        self.objects[(stored.bucket, stored.name)] = stored
        return JsonResponse(200, {"kind": "storage#object", "bucket": stored.bucket, "name": stored.name,
                                  "size": str(len(stored.data)), "metadata": stored.metadata,
                                  "contentType": stored.content_type, "generation": "1",
                                  "md5Hash": "", "crc32c": ""})


@dataclass
class RegistryUpload:
    """One upload the fake registry received."""

    package: str
    version: str
    tags: list[str]
    description: str | None
    content: bytes
    authorization: str | None = field(repr=False, default=None)


class FakeKfpRegistry:
    """An Artifact Registry KFP repository's upload endpoint (use as a context manager)."""

    def __init__(self) -> None:
        self.uploads: list[RegistryUpload] = []
        self.fail_with: int | None = None
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/my-project/my-repo"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if self.fail_with is not None:
            return Response("PERMISSION_DENIED: the caller does not have permission", status=self.fail_with)(
                environ, start_response)
        if request.method != "POST" or "content" not in request.files:
            return Response("expected a multipart upload with a 'content' file", status=400)(environ, start_response)
        content = request.files["content"].read()
        spec = yaml.safe_load(content) or {}
        package = str((spec.get("pipelineInfo") or {}).get("name") or "")
        if not package:
            return Response("not a KFP pipeline template", status=400)(environ, start_response)
        version = "sha256:" + hashlib.sha256(content).hexdigest()
        tags = [t for t in (request.form.get("tags") or "").split(",") if t]
        self.uploads.append(RegistryUpload(package, version, tags, request.headers.get("description"), content,
                                           request.headers.get("Authorization")))
        return Response(f"{package}/{version}", content_type="text/plain")(environ, start_response)
