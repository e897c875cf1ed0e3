"""Compiling in Cloud Build: pull-request code never runs inside the bot's service.

With the Cloud Build builder, each run's build ends with one more step, `kfp-bot-compile`: a
Python image installs the repository's own kfp pin (or the bot's kfp version when it pins none)
and runs the compile driver (`deploy/compiler/driver.py`, shipped in the uploaded context) on
the uploaded source, whose component specs already carry the images of this build. The step
runs under the build's service account (`KFP_BOT_CLOUDBUILD_SERVICE_ACCOUNT`), which needs no
access to the bot's secrets. The driver's verdict, its output (bounded) and the compiled package
are the build's artifacts (`artifacts.objects`, uploaded to Cloud Storage when every step
succeeded, https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds#ArtifactObjects),
under a location derived from the commit, the pipeline and its images.

When the `cloud-builds` notification says the build succeeded, the run goes on to compiling and
`CloudBuildCompiler` (the `Compiler` port in production) reads those artifacts back: the bot's
container reads specs and verdicts, it never imports the pull request's code.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from google.cloud.devtools import cloudbuild_v1
from google.protobuf import duration_pb2

from deploy.builders.cloudbuild_config import COMPILE_STEP_ID
from deploy.builders.cloudbuild_source import DRIVER_PATH, SDK_INSTALL_PATH, compile_overlay
from deploy.compiler.environments import fallback_note, kfp_pin
from deploy.compiler.failures import describe_failure
from deploy.compiler.package import PACKAGE_SUFFIXES, CompiledPipeline, load_package
from deploy.compiler.produced import check_images
from deploy.compiler.sdk_install import ENVIRONMENT_FILE
from deploy.compiler.source import driver_options, pipeline_file, resolve_mode
from deploy.errors import CompileError
from pipeline_registry.compile_env import pipeline_environment
from pipeline_registry.repo_config import CompileMode, RepoConfig
from pipeline_registry.repository import Repository
from pipeline_registry.trusted import capped_compile

OUT_DIR = ".kfp-bot/out"
RESULT, OUTPUT = "result.json", "compile-output.log"
SCRIPT_PREFIX = "script-"
INSTALL_SECONDS = 900
_OUTPUT_BYTES = 65536

# Cloud Build substitutes `$NAME` in step arguments, so every `$` the shell must see is `$$`.
# The driver's own exit status does not fail the step: its verdict (result.json) says what
# happened and must reach the bot as an artifact, which Cloud Build uploads only after a
# successful build. Installing the SDK failing does fail the step (and the build); an exact kfp
# pin that does not install falls back to the nearest patch release that does (`sdk_install.py`,
# the bot's own rule), recorded in environment.json for the check's note.
_STEP_SCRIPT = """\
set -u
mode="$$1"; file="$$2"; overlay="$$3"; options="$$4"; fallback="$$5"; shift 5
mapfile -d '' driver_options < <(python -c 'import json, sys
sys.stdout.write("".join(a + "\\0" for a in json.loads(sys.argv[1])))' "$$options")
out=""" + OUT_DIR + """
mkdir -p "$$out"
python - "$$overlay" <<'PY' || exit 1
import json, os, sys
for path, text in json.loads(sys.argv[1]).items():
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.islink(path):
        os.unlink(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
PY
if ! python """ + SDK_INSTALL_PATH + """ "$$out" "$$fallback" "$$@"; then
  tail -n 40 "$$out/install.log"; echo "kfp-bot: could not install the compile environment: $$*"; exit 1
fi
touch .kfp-bot/started
python """ + DRIVER_PATH + """ --mode "$$mode" --file "$$file" --result "$$out/result.json" --output "$$out" \
  "$${driver_options[@]}" > "$$out/all-output.log" 2>&1
echo "kfp-bot: the compile driver exited with status $$?"
if [ "$$mode" = script ]; then
  find . -path ./.kfp-bot -prune -o -type f -newer .kfp-bot/started \\( -name '*.yaml' -o -name '*.yml' \
    -o -name '*.json' \\) -print | head -n 20 | while read -r f; do
    cp "$$f" "$$out/script-$$(printf '%s' "$${f#./}" | tr / _)"
  done
fi
tail -c """ + str(_OUTPUT_BYTES) + """ "$$out/all-output.log" > "$$out/compile-output.log"
rm -f "$$out/all-output.log" "$$out/install.log"
"""

@dataclass(frozen=True)
class CloudCompile:
    """Where compile artifacts go (`gs://<bucket>/<prefix>/compiled/...`) and the step's image."""

    client: Any
    bucket: str
    prefix: str = "kfp-bot"
    python_image: str = "python:3.11-slim"
    # KFP_BOT_COMPILE_MAX_TIMEOUT_SECONDS: no repository's `compile.timeout_seconds` goes above it.
    max_timeout_seconds: int = 900

    def folder(self, sha: str, pipeline: str, images: Mapping[str, str]) -> str:
        """The object folder of one compile: the same commit, pipeline and images give the same one."""
        key = hashlib.sha256(json.dumps([sha, pipeline, sorted(images.items())]).encode()).hexdigest()[:32]
        return f"{self.prefix.strip('/')}/compiled/{key}/".lstrip("/")

    def location(self, sha: str, pipeline: str, images: Mapping[str, str]) -> str:
        return f"gs://{self.bucket}/{self.folder(sha, pipeline, images)}"


def compile_step(repository: Repository, pipeline: str, images: Mapping[str, str], *,
                 wait_for: list[str], image: str, max_timeout_seconds: int | None = None,
                 then: str = "") -> cloudbuild_v1.BuildStep:
    """The build step that compiles `pipeline` of the build's source with `images` substituted
    (the driver and the rewritten component specs travel in the step's arguments); its timeout is
    the repository's `compile.timeout_seconds`, never above `max_timeout_seconds`. `then` is shell
    run after the compile (escaped for Cloud Build like the script)."""
    config = repository.config
    if max_timeout_seconds is not None:
        config = capped_compile(config, max_timeout_seconds=max_timeout_seconds,
                                max_memory_mb=config.compile.memory_mb)
    chosen = repository.pipeline(pipeline)
    rel_file = pipeline_file(repository.root, chosen, config)
    mode = resolve_mode(config.compile.mode, (repository.snapshot.read(rel_file) or b"").decode("utf-8", "replace"),
                        rel_file)
    env = pipeline_environment(repository.snapshot.read, config, chosen)
    requirements = list(env.requirements) or [f"kfp=={metadata.version('kfp')}"]
    pin = kfp_pin(env) if config.compile.fallback_to_nearest_patch else None
    return cloudbuild_v1.BuildStep(
        id=COMPILE_STEP_ID, name=_literal(image), entrypoint="bash", wait_for=wait_for or ["-"],
        env=[_literal(f"{key}={value}") for key, value in sorted(config.compile.env.items())],
        args=["-c", _STEP_SCRIPT + then, "kfp-bot-compile", mode.value, _literal(rel_file),
              _literal(json.dumps(compile_overlay(repository.root, images), sort_keys=True)),
              _literal(json.dumps(driver_options(chosen, config, repository.root))),
              str(pin[0]) if pin else "-", *(_literal(r) for r in requirements)],
        timeout=duration_pb2.Duration(seconds=int(config.compile.timeout_seconds) + INSTALL_SECONDS))


def compile_artifacts(location: str) -> cloudbuild_v1.Artifacts:
    """The compile step's outputs, uploaded to `location` when the build succeeds."""
    return cloudbuild_v1.Artifacts(objects=cloudbuild_v1.Artifacts.ArtifactObjects(
        location=location, paths=[f"{OUT_DIR}/*"]))


class CloudBuildCompiler:
    """The `Compiler` port in production: reads what the run's build compiled."""

    def __init__(self, cloud: CloudCompile) -> None:
        self.cloud = cloud

    def warm_up(self, repo: str) -> None:
        """Nothing to start here: Cloud Build compiles in the run's build."""

    def close(self) -> None:
        """Nothing was started here."""

    def compile(self, repo_dir: Path, pipeline: str, images: Mapping[str, str] | None,
                out_dir: Path, *, config: RepoConfig | None = None, along: Sequence[str] = (),
                repo: str | None = None) -> CompiledPipeline:
        """The package Cloud Build compiled for this commit, pipeline and images; CompileError otherwise.

        `config` replaces the checked-out `.kfp-bot.yaml` (trusted keys from the default branch).
        `along` and `repo` are ignored: each run's build compiles its own pipeline, in Cloud Build."""
        repository = Repository.open(repo_dir)
        repository.require_resolved_loads(pipeline)  # named here, not as the compile's traceback
        chosen = dict(images) if images else repository.component_images(pipeline)
        config = config or repository.config
        rel_file = pipeline_file(Path(repo_dir), repository.pipeline(pipeline), config)
        folder = self.cloud.folder(head_commit(Path(repo_dir)), pipeline, chosen)
        where = f"gs://{self.cloud.bucket}/{folder}"
        verdict_bytes = self._read(folder + RESULT, rel_file)
        if verdict_bytes is None:
            raise CompileError(rel_file, f"Cloud Build's compile step left no verdict at {where}",
                               hint="see the build's log; start the run again to build and compile anew")
        try:
            verdict = json.loads(verdict_bytes)
        except ValueError:
            verdict = None
        output = (self._read(folder + OUTPUT, rel_file) or b"").decode("utf-8", "replace")
        if not isinstance(verdict, dict):
            raise CompileError(rel_file, f"Cloud Build's compile step wrote an unreadable verdict at {where}",
                               output=output[-4000:])
        env = pipeline_environment(repository.snapshot.read, config, repository.pipeline(pipeline))
        if not verdict.get("ok"):
            raise describe_failure(rel_file, verdict, env=env, config=config, output=_tail(output, 40))
        compiled = self.package_in(folder, repository, pipeline, config, out_dir)
        if not compiled.sdk_version and verdict.get("sdk_version"):
            compiled = replace(compiled, sdk_version=str(verdict["sdk_version"]))
        note = self._fallback_note(folder, rel_file, env.source_files)
        if note:
            compiled = replace(compiled, notes=(*compiled.notes, note))
        check_images(compiled, chosen, rel_file)
        return compiled

    def package_in(self, folder: str, repository: Repository, pipeline: str, config: RepoConfig,
                   out_dir: Path) -> CompiledPipeline:
        """The package the compile step left in `folder` (an object name prefix: `<folder>base-` for
        the merge base's) for `pipeline` of `repository`, written to `out_dir`; CompileError otherwise."""
        rel_file = pipeline_file(repository.root, repository.pipeline(pipeline), config)
        source = (repository.snapshot.read(rel_file) or b"").decode("utf-8", "replace")
        mode = resolve_mode(config.compile.mode, source, rel_file)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if mode is CompileMode.IMPORT:
            return self._driver_package(folder, rel_file, pipeline, out_dir)
        return self._script_package(folder, rel_file, pipeline, out_dir)

    def verdict_in(self, folder: str, rel_file: str) -> dict[str, Any] | None:
        """The compile step's verdict in `folder` (`{"ok": ...}`); None when it left none."""
        data = self._read(folder + RESULT, rel_file)
        try:
            verdict = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return verdict if isinstance(verdict, dict) else None

    def _fallback_note(self, folder: str, rel_file: str, source_files: tuple[str, ...]) -> str | None:
        """The note for an exact kfp pin the step replaced by the nearest release that installs."""
        try:
            chosen = json.loads(self._read(folder + ENVIRONMENT_FILE, rel_file) or b"null")
        except ValueError:
            chosen = None
        if not isinstance(chosen, dict) or not chosen.get("used"):
            return None
        return fallback_note(str(chosen.get("pinned")), str(chosen["used"]), source_files,
                             f"Python {chosen.get('python', '?')} of Cloud Build's compile step")

    def _driver_package(self, folder: str, rel_file: str, pipeline: str, out_dir: Path) -> CompiledPipeline:
        for suffix in (".yaml", ".json"):
            data = self._read(f"{folder}pipeline{suffix}", rel_file)
            if data is not None:
                target = out_dir / f"{pipeline}{suffix}"
                target.write_bytes(data)
                return _loaded(target, pipeline, rel_file)
        raise CompileError(rel_file, "Cloud Build's compile step reported success but uploaded no pipeline package",
                           hint="see the build's log")

    def _script_package(self, folder: str, rel_file: str, pipeline: str, out_dir: Path) -> CompiledPipeline:
        """The package the file wrote as a script: the one written file that is a pipeline package."""
        found: list[tuple[str, Path]] = []
        with tempfile.TemporaryDirectory(prefix="kfp-bot-script-") as tmp:
            for blob in self.cloud.client.list_blobs(self.cloud.bucket, prefix=folder + SCRIPT_PREFIX):
                name = blob.name[len(folder) + len(SCRIPT_PREFIX):]
                suffix = next((s for s in PACKAGE_SUFFIXES if name.endswith(s)), None)
                if suffix is None:
                    continue
                path = Path(tmp) / f"{len(found)}{suffix}"
                path.write_bytes(blob.download_as_bytes())
                try:
                    load_package(path, pipeline)
                except CompileError:
                    continue
                found.append((name, path))
            stems = {pipeline, Path(rel_file).stem}
            preferred = [f for f in found if any(f[0].endswith(f"{stem}{Path(f[1]).suffix}") for stem in stems)]
            chosen = preferred if len(preferred) == 1 else found
            if len(chosen) != 1:
                what = "no pipeline package" if not chosen else f"several pipeline packages ({', '.join(n for n, _ in chosen)})"
                raise CompileError(rel_file, f"ran as a script in Cloud Build and wrote {what}",
                                   hint=f"write one package, named after the pipeline ({pipeline}.yaml)")
            target = out_dir / f"{pipeline}{chosen[0][1].suffix}"
            target.write_bytes(chosen[0][1].read_bytes())
        return _loaded(target, pipeline, rel_file)

    def _read(self, name: str, rel_file: str) -> bytes | None:
        from google.api_core import exceptions as api_exceptions

        try:
            return self.cloud.client.bucket(self.cloud.bucket).blob(name).download_as_bytes()
        except api_exceptions.NotFound:
            return None
        except (api_exceptions.GoogleAPICallError, OSError) as exc:
            raise CompileError(rel_file, f"cannot read gs://{self.cloud.bucket}/{name}, written by Cloud Build's "
                                         f"compile step: {getattr(exc, 'message', None) or exc}",
                               hint=f"grant the bot's service account roles/storage.objectViewer on "
                                    f"gs://{self.cloud.bucket}") from None


def _loaded(path: Path, pipeline: str, rel_file: str) -> CompiledPipeline:
    try:
        return load_package(path, pipeline)
    except CompileError as exc:
        raise CompileError(rel_file, f"Cloud Build's compile step wrote an unreadable package: {exc.message}") from None


def head_commit(repo_dir: Path) -> str:
    """The commit checked out in `repo_dir` (the compile's artifacts are keyed by it)."""
    done = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "--verify", "HEAD^{commit}"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise CompileError(str(repo_dir), "not a git checkout: Cloud Build's compile is found by its commit")
    return done.stdout.strip()


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _literal(value: str) -> str:
    return value.replace("$", "$$")
