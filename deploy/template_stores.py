"""Where deploys put compiled pipelines: a local folder, a GCS path, or an Artifact Registry
Kubeflow Pipelines repository (`KFP_BOT_TEMPLATE_STORE`).

Each store implements the `TemplateStore` port: `upload` stores one compiled package under a
version (the commit), records the tags (the commit, `latest`) and metadata (repository, commit,
images) and returns the template's reference, which is what schedules and people use to find it.
Uploading the same version again replaces it, so a redelivered deploy is harmless.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from deploy.endpoints import is_loopback
from deploy.errors import DeployError
from deploy.google_clients import make_gcs_client


class CompiledPackage(Protocol):
    """What a store needs of a compiled pipeline (`deploy.compiler.CompiledPipeline` is one)."""

    package_path: Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
AR_HOST = re.compile(r"^https://[\w-]+-kfp\.pkg\.dev/[^/]+/[^/]+/?$")


def _safe(text: str) -> str:
    """A path segment made of letters, digits, `.`, `_` and `-` only (no traversal)."""
    clean = _SAFE.sub("-", text).strip(".-")
    if not clean:
        raise DeployError(f"{text!r} cannot be used as a template name or version")
    return clean


def _document(pipeline: str, version: str, tags: Sequence[str], metadata: Mapping[str, str]) -> dict[str, Any]:
    return {"pipeline": pipeline, "version": version, "tags": list(tags), "metadata": dict(metadata)}


class LocalTemplateStore:
    """Templates in a folder: `<pipeline>/<version>.yaml`, `<version>.json` (metadata) and one
    `<tag>.yaml` copy per tag, so `latest.yaml` is always the newest deploy."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def upload(self, pipeline: str, package: CompiledPackage, *, version: str,
               tags: Sequence[str], metadata: Mapping[str, str]) -> str:
        """Copy the package in; returns the path of the versioned file."""
        source = Path(package.package_path)
        suffix = source.suffix or ".yaml"
        target_dir = self.folder / _safe(pipeline)
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"{_safe(version)}{suffix}"
            shutil.copyfile(source, target)
            document = json.dumps(_document(pipeline, version, tags, metadata), indent=2, sort_keys=True)
            (target_dir / f"{_safe(version)}.json").write_text(document + "\n", encoding="utf-8")
            for tag in tags:
                if _safe(tag) != _safe(version):
                    shutil.copyfile(source, target_dir / f"{_safe(tag)}{suffix}")
        except OSError as exc:
            raise DeployError(f"cannot write the template of '{pipeline}' to {target_dir}: {exc.strerror}",
                              hint="check that KFP_BOT_TEMPLATE_STORE (or the data folder) is writable") from None
        return str(target)


class GcsTemplateStore:
    """Templates under a `gs://bucket/prefix`: `<prefix>/<pipeline>/<version>.yaml` with the tags and
    metadata as object metadata, plus a `<tag>.yaml` copy per tag."""

    def __init__(self, uri: str, client: Any) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "gs" or not parsed.netloc:
            raise DeployError(f"template store {uri!r} is not a gs://bucket/path URI")
        self.bucket_name = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = client

    def upload(self, pipeline: str, package: CompiledPackage, *, version: str,
               tags: Sequence[str], metadata: Mapping[str, str]) -> str:
        """Upload the package (and its tag copies); returns the `gs://` URI of the versioned object."""
        from google.api_core import exceptions as api_exceptions

        source = Path(package.package_path)
        suffix = source.suffix or ".yaml"
        folder = "/".join(p for p in (self.prefix, _safe(pipeline)) if p)
        names = [f"{folder}/{_safe(version)}{suffix}"]
        names += [f"{folder}/{_safe(t)}{suffix}" for t in tags if _safe(t) != _safe(version)]
        object_metadata = {**{k: str(v) for k, v in metadata.items()}, "pipeline": pipeline, "version": version,
                           "tags": ",".join(tags)}
        bucket = self.client.bucket(self.bucket_name)
        try:
            for name in names:
                blob = bucket.blob(name)
                blob.metadata = object_metadata
                blob.upload_from_filename(str(source), content_type="application/x-yaml")
        except (api_exceptions.GoogleAPICallError, OSError) as exc:
            raise DeployError(f"cannot upload the template of '{pipeline}' to gs://{self.bucket_name}/{names[0]}: "
                              f"{getattr(exc, 'message', None) or exc}",
                              hint="grant the bot's service account roles/storage.objectAdmin on the bucket"
                              ) from None
        return f"gs://{self.bucket_name}/{names[0]}"


class ArtifactRegistryTemplateStore:
    """Templates in an Artifact Registry Kubeflow Pipelines repository, through `kfp.registry`.

    The package name is the pipeline's name in the compiled spec and the version is its content
    digest (Artifact Registry decides both); the commit and `latest` are tags, and the metadata
    goes in the version's description.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def host(self) -> str:
        return str(self.client._host)  # kfp keeps the host it was given; no public accessor

    def upload(self, pipeline: str, package: CompiledPackage, *, version: str,
               tags: Sequence[str], metadata: Mapping[str, str]) -> str:
        """Upload with the tags; returns `<host>/<package>/<version digest>`."""
        import requests

        description = "; ".join(f"{k}={v}" for k, v in {"version": version, **metadata}.items())
        try:
            name, digest = self.client.upload_pipeline(file_name=str(package.package_path),
                                                       tags=[_safe(t) for t in tags],
                                                       extra_headers={"description": description[:1000]})
        except requests.HTTPError as exc:
            said = exc.response.text.strip()[:300] if exc.response is not None else str(exc)
            raise DeployError(f"Artifact Registry refused the template of '{pipeline}' ({exc}): {said}",
                              hint="grant the bot's service account roles/artifactregistry.writer on the "
                                   "repository") from None
        except (requests.RequestException, ValueError) as exc:
            raise DeployError(f"cannot upload the template of '{pipeline}' to {self.host}: {exc}") from None
        return f"{self.host}/{name}/{digest}"


def make_template_store(setting: str | None, data_dir: Path, *, gcs_client: Any = None,
                        registry_auth: Any = None) -> LocalTemplateStore | GcsTemplateStore | ArtifactRegistryTemplateStore:
    """The store `KFP_BOT_TEMPLATE_STORE` names: None → `<data dir>/templates`, `gs://...` → GCS,
    `https://<region>-kfp.pkg.dev/<project>/<repository>` → Artifact Registry, other text → a folder."""
    if not setting:
        return LocalTemplateStore(Path(data_dir) / "templates")
    if setting.startswith("gs://"):
        return GcsTemplateStore(setting, gcs_client if gcs_client is not None else make_gcs_client())
    if setting.startswith(("https://", "http://")):
        from kfp.registry import RegistryClient

        if not AR_HOST.match(setting) and not is_loopback(setting):
            raise DeployError(f"KFP_BOT_TEMPLATE_STORE={setting!r} is not an Artifact Registry KFP repository",
                              hint="use https://<region>-kfp.pkg.dev/<project>/<repository>, a gs:// path "
                                   "or a folder")
        return ArtifactRegistryTemplateStore(RegistryClient(host=setting, auth=registry_auth))
    return LocalTemplateStore(Path(setting))
