"""The package a compile produced: found on disk, stored under the pipeline's name, checked.

The driver's verdict is never trusted for where the package is: in import mode the driver writes
it to its own output folder; in script mode it is the one new or changed pipeline package in the
scratch copy. The stored package must carry at least one of the freshly built images.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from deploy.compiler.package import PACKAGE_SUFFIXES, CompiledPipeline, load_package
from deploy.errors import CompileError


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Package-like files under `root` with their modification time and size."""
    found = {}
    for path in root.rglob("*"):
        if path.name.endswith(PACKAGE_SUFFIXES) and path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return found


def written_package(scratch: Path, before: dict[str, tuple[int, int]], rel_file: str, name: str) -> Path:
    """The package a script wrote: the new or changed file that parses as a pipeline package."""
    after = snapshot(scratch)
    changed = sorted(p for p, stamp in after.items() if before.get(p) != stamp)
    packages = []
    for relative in changed:
        try:
            load_package(scratch / relative, name)
        except CompileError:
            continue
        packages.append(relative)
    if len(packages) > 1:
        stems = {name, Path(rel_file).stem}
        preferred = [p for p in packages if _stem(p) in stems]
        packages = preferred if len(preferred) == 1 else packages
    if not packages:
        wrote = f" (it wrote {', '.join(changed)}, none of them a pipeline package)" if changed else ""
        raise CompileError(rel_file, f"ran as a script but wrote no pipeline package{wrote}",
                           hint=f"make its __main__ block compile into the working directory, e.g. "
                                f"Compiler().compile(pipeline_func=..., package_path=\"{name}.yaml\"), "
                                f"or set compile.mode: import in .kfp-bot.yaml")
    if len(packages) > 1:
        raise CompileError(rel_file, f"ran as a script and wrote several pipeline packages: {', '.join(packages)}",
                           hint=f"write one package, named after the pipeline ({name}.yaml or {name}.json)")
    return scratch / packages[0]


def driver_package(out: Path, rel_file: str) -> Path:
    """The package the driver compiled in import mode (found on disk: the verdict is not trusted)."""
    found = [p for p in (out / "pipeline.yaml", out / "pipeline.json") if p.is_file() and not p.is_symlink()]
    if len(found) != 1:
        raise CompileError(rel_file, "the compiler reported success but wrote no pipeline package",
                           hint="see the compile output")
    return found[0]


def _stem(relative: str) -> str:
    name = Path(relative).name
    for suffix in sorted(PACKAGE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def store_package(produced: Path, out_dir: Path, name: str, rel_file: str) -> CompiledPipeline:
    """`produced` copied to `out_dir` under the pipeline's name, read back as a package."""
    suffix = next(s for s in sorted(PACKAGE_SUFFIXES, key=len, reverse=True) if produced.name.endswith(s))
    target = out_dir / f"{name}{suffix}"
    shutil.copyfile(produced, target)
    try:
        return load_package(target, name)
    except CompileError as exc:
        raise CompileError(rel_file, f"the compiler wrote an unreadable package: {exc.message}") from None


def check_images(compiled: CompiledPipeline, images: Mapping[str, str], rel_file: str) -> None:
    """Fail when none of the bot's images reached the package: the components are not loaded
    from their component.yaml, so a run would silently use stale images. A component folder
    the pipeline does not use (yet) is fine as long as some image made it in."""
    missing = sorted(f"{ref} ({folder})" for folder, ref in images.items() if ref not in compiled.images)
    if images and len(missing) == len(images):
        raise CompileError(rel_file, f"the compiled pipeline does not use the built image(s) {', '.join(missing)}",
                           hint="load each component from its component.yaml (load_component_from_file or "
                                "ComponentStore) so that the built image can be put into the pipeline")
