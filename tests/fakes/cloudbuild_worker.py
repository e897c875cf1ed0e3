"""The fake Cloud Build's worker: fetching a build's source and running the steps it can run.

Fetching (https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds#Source):
- `storageSource`: "Location of the source in an archive file in Cloud Storage" (a `.tar.gz`);
  the object must exist in the fake GCS (at `generation` when given), else the build fails with
  failure type `FETCH_SOURCE_FAILED` ("Unable to fetch the source file",
  https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds#FailureType);
- `gitSource`: Cloud Build runs `git fetch` of the URL without credentials, so a private
  repository (one the test registers with `FakeCloudBuild.private_repos`) fails the same way;
- `connectedRepository`: read through the connection's GitHub App, which can read private ones;
  the test links a repository resource to a local git repository (`FakeCloudBuild.linked`), and
  one that is not linked cannot be fetched.

Running: steps whose image is a Python image (`python:*`) run their entrypoint and arguments,
substitutions applied, in the build's workspace (the extracted source), through the project's
sandbox (`deploy.sandbox.run_isolated`) with this machine's Python standing in for the image and
no package index (pip only finds what is installed, and the distributions in `package_folder`
when a test gives one). Docker steps are not run (no container engine here) and count as
succeeded. A step runs in `dir` below the workspace when it names one ("a relative path to the
/workspace directory", https://cloud.google.com/build/docs/build-config-file-schema#dir); a step
with `allowFailure` that fails does not fail the build, the next steps run
(https://cloud.google.com/build/docs/build-config-file-schema#allow_failure). After a successful build, the files matching `artifacts.objects.paths` are uploaded
under `artifacts.objects.location` by their base name, with the `artifacts-<build id>.json`
manifest Cloud Build writes
(https://cloud.google.com/build/docs/building/store-artifacts-in-cloud-storage).
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.cloud.devtools import cloudbuild_v1

from deploy.sandbox import Limits, run_isolated
from tests.fakes.template_stores import FakeGcs

FailureType = cloudbuild_v1.Build.FailureInfo.FailureType
RUNNABLE_IMAGES = ("python:", "docker.io/library/python:")


@dataclass(frozen=True)
class StepFailure:
    """A step that ended non-zero: its id, exit code and the tail of its output."""

    step_id: str
    exit_code: int
    output: str


def fetch(build: cloudbuild_v1.Build, gcs: FakeGcs | None, private_repos: set[str],
          workspace: Path, linked: dict[str, Path] | None = None) -> str | None:
    """Put the build's source into `workspace`; the FETCH_SOURCE_FAILED detail when it cannot."""
    which = build.source._pb.WhichOneof("source")
    if which == "storage_source":
        storage = build.source.storage_source
        data = gcs.read(storage.bucket, storage.object_, storage.generation or None) if gcs else None
        if data is None:
            return (f"failed to fetch gs://{storage.bucket}/{storage.object_}"
                    f"{'#' + str(storage.generation) if storage.generation else ''}: object not found")
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(workspace, filter="data")
        except (tarfile.TarError, OSError) as exc:
            return f"failed to unpack gs://{storage.bucket}/{storage.object_}: {exc}"
        return None
    if which == "connected_repository":
        source = build.source.connected_repository
        local = (linked or {}).get(source.repository)
        if local is None:
            return f"failed to fetch {source.repository}: the repository is not linked to the connection"
        archive = subprocess.run(["git", "-C", str(local), "archive", "--format=tar", source.revision],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            return f"failed to fetch {source.repository} at {source.revision}: {archive.stderr.decode()[:200]}"
        with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
            tar.extractall(workspace, filter="data")
        return None
    if which == "git_source":
        url = build.source.git_source.url
        if any(url.rstrip("/").removesuffix(".git").endswith(repo) for repo in private_repos):
            return (f"failed to fetch {url} at {build.source.git_source.revision}: fatal: could not read "
                    "Username for 'https://github.com': terminal prompts disabled")
    return None


def run_steps(steps: list[cloudbuild_v1.BuildStep], workspace: Path,
              package_folder: Path | None = None) -> StepFailure | None:
    """Run the runnable steps in order in `workspace`; the first failure, or None. pip finds the
    distributions in `package_folder` (standing in for PyPI) besides what is installed."""
    python_bin = str(Path(sys.executable).parent)
    for step in steps:
        if not step.name.startswith(RUNNABLE_IMAGES):
            continue
        # An absolute entrypoint: the sandbox derives what it shows the step from argv[0].
        entrypoint = step.entrypoint or "python"
        argv = [shutil.which(entrypoint, path=f"{python_bin}:/usr/local/bin:/usr/bin:/bin") or entrypoint,
                *step.args]
        env = dict(item.split("=", 1) for item in step.env if "=" in item)
        env.update(PATH=f"{python_bin}:/usr/local/bin:/usr/bin:/bin", PIP_NO_INDEX="1",
                   BUILDER_OUTPUT=str(workspace / ".builder-output"))
        if package_folder is not None:
            env["PIP_FIND_LINKS"] = str(package_folder)
        timeout = float(step.timeout.seconds or 600)
        cwd = (workspace / step.dir_).resolve()
        # Cloud Build also runs a step in an absolute `dir` outside /workspace (its files are then
        # not kept between steps); the bot never writes one, so the fake has no such folder to give.
        if not cwd.is_relative_to(workspace.resolve()):
            return StepFailure(step.id or step.name, 1, f"dir {step.dir_!r} is outside /workspace")
        cwd.mkdir(parents=True, exist_ok=True)
        # Every step sees the whole /workspace, writable, whatever its `dir`.
        result = run_isolated(argv, cwd=cwd, limits=Limits(timeout, None), env=env, writable=[workspace],
                              read_only=[package_folder] if package_folder is not None else [])
        if not result.ok and step.allow_failure:
            continue
        if not result.ok:
            code = result.returncode if not result.timed_out else 124
            return StepFailure(step.id or step.name, code, (result.stdout + result.stderr)[-2000:])
    return None


def upload_artifacts(build: cloudbuild_v1.Build, gcs: FakeGcs | None, workspace: Path) -> None:
    """Upload `artifacts.objects` and record the manifest in `build.results`."""
    objects = build.artifacts.objects
    if not objects.location or gcs is None:
        return
    bucket, _, folder = objects.location.removeprefix("gs://").partition("/")
    folder = folder if not folder or folder.endswith("/") else folder + "/"
    uploaded = []
    for pattern in objects.paths:
        for match in sorted(glob.glob(str(workspace / pattern))):
            path = Path(match)
            if path.is_file():
                name = f"{folder}{path.name}"
                stored = gcs.put(bucket, name, path.read_bytes())
                uploaded.append({"location": f"gs://{bucket}/{name}#{stored.generation}",
                                 "file_hash": []})
    manifest = f"{folder}artifacts-{build.id}.json"
    gcs.put(bucket, manifest, "\n".join(json.dumps(u) for u in uploaded).encode(), content_type="application/json")
    build.results.artifact_manifest = f"gs://{bucket}/{manifest}"
    build.results.num_artifacts = len(uploaded)


def new_workspace(build_id: str) -> Path:
    """A folder standing for the worker's `/workspace`, kept for tests to inspect."""
    return Path(tempfile.mkdtemp(prefix=f"fake-cloudbuild-{build_id[:8]}-"))


def workspace_files(workspace: Path) -> list[str]:
    """Every file in a workspace, relative (what the build left there)."""
    return sorted(os.path.relpath(os.path.join(d, f), workspace) for d, _, fs in os.walk(workspace) for f in fs)
