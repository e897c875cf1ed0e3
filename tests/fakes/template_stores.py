"""Fakes of the two remote template stores, over HTTP on 127.0.0.1.

`FakeGcs` serves the Cloud Storage JSON API's multipart upload
(`POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart`), which `google-cloud-storage` uses for
small files, object metadata and media reads (`GET /storage/v1/b/{bucket}/o/{object}`, `?alt=media`
and `/download/...`), listing by prefix, and keeps each object's bytes, metadata and generation. The
fake Cloud Build reads build sources from it and writes build artifacts into it. `FakeKfpRegistry` serves the Artifact
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
    generation: int = 1


class FakeGcs(FakeHTTPServer):
    """Cloud Storage's multipart upload, recording objects by (bucket, name)."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self._generation = 0
        self.add_route("POST", "/upload/storage/v1/b/{bucket}/o", self._upload)
        self.add_route("GET", "/storage/v1/b/{bucket}/o", self._list)
        self.add_route("GET", "/storage/v1/b/{bucket}/o/{name:path}", self._get)
        self.add_route("GET", "/download/storage/v1/b/{bucket}/o/{name:path}", self._download)

    def put(self, bucket: str, name: str, data: bytes, *, content_type: str = "application/octet-stream",
            metadata: dict[str, str] | None = None) -> StoredObject:
        """Store an object as another service would (the fake Cloud Build's artifacts)."""
        with self.lock:
            self._generation += 1
            stored = StoredObject(bucket, name, data, metadata or {}, content_type, self._generation)
            self.objects[(bucket, name)] = stored
        return stored

    def read(self, bucket: str, name: str, generation: int | None = None) -> bytes | None:
        """An object's bytes (None when it does not exist, or not at that generation)."""
        with self.lock:
            stored = self.objects.get((bucket, name))
        if stored is None or (generation and stored.generation != generation):
            return None
        return stored.data

    def _resource(self, stored: StoredObject) -> dict[str, Any]:
        return {"kind": "storage#object", "bucket": stored.bucket, "name": stored.name,
                "size": str(len(stored.data)), "metadata": stored.metadata, "contentType": stored.content_type,
                "generation": str(stored.generation), "md5Hash": "", "crc32c": ""}

    def _stored(self, incoming: Incoming) -> StoredObject | JsonResponse:
        # "No such object" 404: https://cloud.google.com/storage/docs/json_api/v1/status-codes#404-not-found
        bucket, name = incoming.params["bucket"], incoming.params["name"]
        with self.lock:
            stored = self.objects.get((bucket, name))
        if stored is None:
            return JsonResponse(404, {"error": {"code": 404, "message": f"No such object: {bucket}/{name}"}})
        return stored

    def _get(self, incoming: Incoming) -> JsonResponse:
        # https://cloud.google.com/storage/docs/json_api/v1/objects/get: metadata, or the data with alt=media
        if incoming.query.get("alt") == "media":
            return self._download(incoming)
        stored = self._stored(incoming)
        return stored if isinstance(stored, JsonResponse) else JsonResponse(200, self._resource(stored))

    def _download(self, incoming: Incoming) -> JsonResponse:
        stored = self._stored(incoming)
        if isinstance(stored, JsonResponse):
            return stored
        return JsonResponse(200, raw=stored.data, content_type=stored.content_type)

    def _list(self, incoming: Incoming) -> JsonResponse:
        # https://cloud.google.com/storage/docs/json_api/v1/objects/list (prefix, no paging needed here)
        prefix = incoming.query.get("prefix", "")
        with self.lock:
            found = sorted((s for (b, n), s in self.objects.items()
                            if b == incoming.params["bucket"] and n.startswith(prefix)), key=lambda s: s.name)
        return JsonResponse(200, {"kind": "storage#objects", "items": [self._resource(s) for s in found]})

    def _upload(self, incoming: Incoming) -> JsonResponse:
        if incoming.query.get("uploadType") != "multipart":
            return JsonResponse(400, {"error": {"code": 400, "message": "only multipart uploads are faked"}})
        content_type = next(v for k, v in incoming.headers.items() if k.lower() == "content-type")
        message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + incoming.body,
                                           policy=email.policy.HTTP)
        resource_part, data_part = list(message.iter_parts())
        resource = json.loads(resource_part.get_payload(decode=True))
        stored = self.put(incoming.params["bucket"], resource["name"], data_part.get_payload(decode=True),
                          metadata=resource.get("metadata") or {},
                          content_type=resource.get("contentType") or data_part.get_content_type())
        return JsonResponse(200, self._resource(stored))


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
