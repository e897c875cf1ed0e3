"""The build context of a run, uploaded by the bot: Cloud Build never fetches the repository.

A build that fetches a private repository by its git URL has no credentials and ends in
`FETCH_SOURCE_FAILED`. The bot already has the commit checked out, so it packs what the build
needs into a `.tar.gz`, uploads it to Cloud Storage and builds from that `StorageSource`
(https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds#StorageSource: "an
archive file (.tar.gz) in Cloud Storage"), pinned to the generation it wrote:

- the files the images are built from: every input of each image to build, as the content hash
  knows them (`Repository.image_inputs`), nothing else;
- when the build also compiles (`cloudbuild_compile`), the repository's files outside the other
  pipelines' folders (the compile step itself brings the driver and the specs with the images).

Objects are named after the run (`<prefix>/sources/<run id>.tar.gz`), so a redelivered event
overwrites the same object instead of adding one. A bucket lifecycle rule should delete them
after a few days (docs/deployment.md).
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud.devtools import cloudbuild_v1

from deploy.compiler.images import substitute_images
from deploy.errors import BuildError
from pipeline_registry.models import INLINE_PREFIX, ComponentPlan
from pipeline_registry.repository import Repository

DRIVER = Path(__file__).resolve().parents[1] / "compiler" / "driver.py"
BOT_DIR = ".kfp-bot"
DRIVER_PATH = f"{BOT_DIR}/driver.py"
SDK_INSTALL = DRIVER.parent / "sdk_install.py"
SDK_INSTALL_PATH = f"{BOT_DIR}/sdk_install.py"
# Archive members get fixed metadata: the same files make the same archive.
_MTIME = 315532800  # 1980-01-01


def image_files(repository: Repository, plans: Iterable[ComponentPlan]) -> set[str]:
    """Every repository file that goes into one of the images of `plans` (Dockerfiles included)."""
    files: set[str] = set()
    for plan in plans:
        files |= repository.image_inputs(plan.component)
        if plan.component.dockerfile:
            files.add(plan.component.dockerfile)
    return files


def compile_files(repository: Repository, pipeline: str) -> set[str]:
    """What compiling `pipeline` may read: the tracked files outside the other pipelines' folders
    (a declared pipeline shares its folder with others and helpers: nothing is left out for it)."""
    others = [p.path.rstrip("/") + "/" for name, p in repository.graph.pipelines.items()
              if name != pipeline and p.owns_folder]
    return {path for path in repository.graph.paths if not any(path.startswith(o) for o in others)}


def pack(repo_dir: Path, files: Iterable[str], *, also: tuple[Path, str, Iterable[str]] | None = None) -> bytes:
    """A deterministic `.tar.gz` of `files` (repository-relative) read from `repo_dir`; `also`
    adds the files of another checkout (folder, prefix in the archive, its files)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        _add(archive, Path(repo_dir), files, "")
        if also is not None:
            _add(archive, Path(also[0]), also[2], also[1].rstrip("/") + "/")
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, repo_dir: Path, files: Iterable[str], prefix: str) -> None:
    root = repo_dir.resolve()
    for name in sorted(set(files)):
        path = root / name
        # A symlink could point outside the checkout: Cloud Build gets regular files only.
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root):
            continue
        info = tarfile.TarInfo(prefix + name)
        info.size = path.stat().st_size
        info.mtime = _MTIME
        info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        with path.open("rb") as handle:
            archive.addfile(info, handle)


def compile_overlay(repo_dir: Path, images: Mapping[str, str]) -> dict[str, str]:
    """Files the compile step writes over the source: the compile driver, the SDK installer and each component spec
    with its image from this build (the bot's own image substitution, done here, not in the build)."""
    overlay = {DRIVER_PATH: DRIVER.read_text(encoding="utf-8"),
               SDK_INSTALL_PATH: SDK_INSTALL.read_text(encoding="utf-8")}
    with tempfile.TemporaryDirectory(prefix="kfp-bot-specs-") as tmp:
        scratch = Path(tmp)
        for folder in images:
            source = Path(repo_dir) / folder
            for spec in source.glob("component.y*ml") if source.is_dir() else ():
                if spec.is_symlink() or not spec.resolve().is_relative_to(Path(repo_dir).resolve()):
                    continue  # never read a file outside the checkout into the build
                target = scratch / folder / spec.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(spec, target)
        for relative in _naming_inline(Path(repo_dir), images):
            (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(repo_dir) / relative, scratch / relative)
        for changed in substitute_images(scratch, images):
            overlay[changed] = (scratch / changed).read_text(encoding="utf-8")
    return overlay


def _naming_inline(repo_dir: Path, images: Mapping[str, str]) -> list[str]:
    """Python files of the checkout that name an inline image of `images` (to get the built one)."""
    names = [key[len(INLINE_PREFIX):].encode() for key in images if key.startswith(INLINE_PREFIX)]
    if not names:
        return []
    found = []
    for path in sorted(repo_dir.rglob("*.py")):
        relative = path.relative_to(repo_dir)
        if ".git" in relative.parts or path.is_symlink() or not path.is_file():
            continue
        if any(name in path.read_bytes() for name in names):
            found.append(relative.as_posix())
    return found


@dataclass(frozen=True)
class StorageUpload:
    """Uploads build contexts to `gs://<bucket>/<prefix>/sources/` with a Cloud Storage client."""

    client: Any
    bucket: str
    prefix: str = "kfp-bot"

    def object_name(self, run_id: str) -> str:
        return f"{self.prefix.strip('/')}/sources/{run_id}.tar.gz".lstrip("/")

    def upload(self, run_id: str, archive: bytes) -> cloudbuild_v1.Source:
        """Store the archive of run `run_id`; the `Build.source` that reads exactly that object."""
        from google.api_core import exceptions as api_exceptions

        name = self.object_name(run_id)
        blob = self.client.bucket(self.bucket).blob(name)
        try:
            blob.upload_from_string(archive, content_type="application/gzip")
        except (api_exceptions.GoogleAPICallError, OSError) as exc:
            raise BuildError(f"cannot upload the build context of run {run_id} to gs://{self.bucket}/{name}: "
                             f"{getattr(exc, 'message', None) or exc}",
                             hint=f"grant the bot's service account roles/storage.objectAdmin on gs://{self.bucket}"
                             ) from None
        return cloudbuild_v1.Source(storage_source=cloudbuild_v1.StorageSource(
            bucket=self.bucket, object_=name, generation=int(blob.generation or 0)))
