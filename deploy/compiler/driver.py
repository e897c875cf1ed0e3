"""Compile one pipeline file; runs INSIDE the sandboxed interpreter of the compile environment.

This file is copied out of the package and executed as a standalone script by the
repository's own Python (kfp 1.8.x or 2.x), so it imports nothing but the standard library
and kfp, and keeps to syntax that every supported interpreter accepts. It never prints its
verdict: user code is noisy, so the outcome is written as JSON to the file named by
`--result`, which the orchestrator (`compile.py`) reads after the process ends.

Modes:
  import  import the pipeline file as a module, find its one pipeline function and compile
          it with the SDK (kfp 2 compiler; with kfp 1.8 the kfp.v2 compiler when the file
          uses kfp.v2, else the v1 Argo compiler) into `--output`.
  script  run the file as `__main__`, as `python pipelines/<name>/<name>.py` would; the file
          writes its own package and the orchestrator detects it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import runpy
import sys
import traceback

MODULE_NAME = "__kfp_bot_pipeline__"
_EXTRA_PATH: list = []
_V2_IN_V1 = re.compile(r"\bkfp\.v2\b|^\s*from\s+kfp\s+import\s+.*\bv2\b", re.MULTILINE)


class Failure(Exception):
    """An expected failure, already described for the user."""

    def __init__(self, kind: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kfp-bot compile driver")
    parser.add_argument("--mode", choices=("import", "script"), required=True)
    parser.add_argument("--file", required=True, help="pipeline file, relative to the cwd")
    parser.add_argument("--result", required=True, help="where to write the JSON verdict")
    parser.add_argument("--output", help="folder for the compiled package (import mode)")
    parser.add_argument("--function", default=None, help="the pipeline function (import mode)")
    parser.add_argument("--python-path", action="append", default=[],
                        help="a folder put on the import path, relative to the cwd (repeatable)")
    args = parser.parse_args(argv)
    _EXTRA_PATH[:] = args.python_path

    driver_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != driver_dir]
    result: dict = {"ok": False, "kind": "internal", "message": "the driver did not finish"}
    try:
        if args.mode == "import":
            result = _import_mode(args.file, args.output, args.function)
        else:
            result = _script_mode(args.file)
        result["ok"] = True
    except Failure as exc:
        result = dict(ok=False, kind=exc.kind, message=exc.message, **exc.details)
    except MemoryError:
        result = {"ok": False, "kind": "memory", "message": "ran out of memory"}
    except BaseException as exc:  # anything else is reported, never swallowed
        result = _describe(exc, "exception")
    result["sdk_version"] = _sdk_version()
    _write(args.result, result)
    return 0


def _import_mode(rel_file: str, output: str | None, function: str | None = None) -> dict:
    if not output:
        raise Failure("internal", "--output is required in import mode")
    source = _read_source(rel_file)
    kfp = _import_kfp()
    major = int(str(kfp.__version__).split(".")[0])
    collected: list = []
    if major < 2:
        from kfp.dsl import _pipeline as v1_pipeline  # the hook dsl-compile itself uses

        def collect(func):
            collected.append(func)
            return func

        v1_pipeline._pipeline_decorator_handler = collect
    _prepare_path(rel_file)
    module = _load_module(rel_file)
    if major >= 2:
        name, func = _only_one(_v2_candidates(module), rel_file, function)
    else:
        name, func = _only_one(_v1_candidates(module, collected), rel_file, function)
    os.makedirs(output, exist_ok=True)
    try:
        if major >= 2:
            from kfp import compiler

            package = os.path.join(output, "pipeline.yaml")
            compiler.Compiler().compile(pipeline_func=func, package_path=package)
            used = "kfp2"
        elif _V2_IN_V1.search(source):
            from kfp.v2 import compiler as v2_compiler

            package = os.path.join(output, "pipeline.json")
            v2_compiler.Compiler().compile(pipeline_func=func, package_path=package)
            used = "kfp.v2"
        else:
            from kfp import compiler as v1_compiler

            package = os.path.join(output, "pipeline.yaml")
            v1_compiler.Compiler().compile(func, package)
            used = "kfp.v1"
    except MemoryError:
        raise
    except Exception as exc:
        raise Failure(**_failure_fields(exc, "compile")) from None
    return {"package": package, "function": name, "compiler": used}


def _script_mode(rel_file: str) -> dict:
    _read_source(rel_file)
    _prepare_path(rel_file)
    sys.argv = [rel_file]
    try:
        # `python file.py` gives the script an absolute __file__ (Python >= 3.9); so does this.
        runpy.run_path(os.path.abspath(rel_file), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise Failure("exit", "exited with status %s" % (exc.code,)) from None
    except (MemoryError, Failure):
        raise
    except Exception as exc:
        raise Failure(**_failure_fields(exc, "run")) from None
    return {}


def _read_source(rel_file: str) -> str:
    try:
        with open(rel_file, encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure("unreadable", "cannot read the pipeline file: %s" % (exc,)) from None
    try:
        compile(source, rel_file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise Failure(**_failure_fields(exc, "import")) from None
    return source


def _import_kfp():
    try:
        import kfp
    except ImportError as exc:
        raise Failure("no-sdk", "the kfp SDK cannot be imported in the compile environment: %s" % exc) from None
    return kfp


def _prepare_path(rel_file: str) -> None:
    # As `PYTHONPATH=<python_path> python <file>` run from the repository root would see it.
    root = os.getcwd()
    folder = os.path.dirname(os.path.abspath(rel_file))
    extra = [os.path.join(root, p) for p in _EXTRA_PATH]
    sys.path[:0] = [p for i, p in enumerate([folder, *extra, root]) if p not in [folder, *extra, root][:i]]


def _load_module(rel_file: str):
    spec = importlib.util.spec_from_file_location(MODULE_NAME, os.path.abspath(rel_file))
    if spec is None or spec.loader is None:
        raise Failure("unreadable", "cannot load the pipeline file as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except (MemoryError, Failure):
        raise
    except SystemExit as exc:
        raise Failure("exit", "called sys.exit(%s) while being imported" % (exc.code,)) from None
    except Exception as exc:
        raise Failure(**_failure_fields(exc, "import")) from None
    return module


def _is_graph_component(obj: object) -> bool:
    return any(cls.__name__ == "GraphComponent" for cls in type(obj).__mro__)


def _v2_candidates(module) -> list:
    found = _unique((name, obj) for name, obj in vars(module).items() if _is_graph_component(obj))
    local = [(n, o) for n, o in found
             if getattr(getattr(o, "pipeline_func", None), "__module__", None) == MODULE_NAME]
    return local or found


def _v1_candidates(module, collected: list) -> list:
    names = {id(obj): name for name, obj in vars(module).items()}
    decorated = [(names.get(id(f), getattr(f, "__name__", "?")), f) for f in collected]
    local = [(n, f) for n, f in decorated if getattr(f, "__module__", None) == MODULE_NAME]
    if local or decorated:
        return _unique(local or decorated)
    functions = [(n, o) for n, o in vars(module).items()
                 if callable(o) and getattr(o, "__module__", None) == MODULE_NAME
                 and not hasattr(o, "component_spec")]
    named = [(n, o) for n, o in functions if hasattr(o, "_component_human_name")]
    if named:
        return _unique(named)
    return _unique((n, o) for n, o in functions if n == "pipeline" or n.endswith("_pipeline"))


def _unique(pairs) -> list:
    seen: dict = {}
    for name, obj in pairs:
        seen.setdefault(id(obj), (name, obj))
    return list(seen.values())


def _only_one(candidates: list, rel_file: str, function=None) -> tuple:
    names = sorted(name for name, _ in candidates)
    if function:
        chosen = [pair for pair in candidates if pair[0] == function]
        if not chosen:
            raise Failure("no-pipeline", "defines no pipeline function '%s' (it defines: %s)"
                          % (function, ", ".join(names) or "none"), candidates=names)
        return chosen[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise Failure("no-pipeline", "defines no pipeline function")
    raise Failure("several-pipelines", "defines %d pipeline functions: %s" % (len(names), ", ".join(names)),
                  candidates=names)


def _failure_fields(exc: BaseException, phase: str) -> dict:
    if isinstance(exc, SyntaxError):
        where = _relative(exc.filename) if exc.filename else None
        return {"kind": "syntax", "message": "invalid syntax: %s" % (exc.msg,), "where": where,
                "line": exc.lineno, "text": (exc.text or "").strip()}
    fields = _describe(exc, "exception")
    fields.pop("ok", None)
    fields["phase"] = phase
    if isinstance(exc, ImportError):
        fields["kind"] = "import"
        fields["module"] = exc.name
    return fields


def _describe(exc: BaseException, kind: str) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    where, line = None, None
    for frame in frames:
        relative = _relative(frame.filename)
        if relative is not None:
            where, line = relative, frame.lineno
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    report = traceback.TracebackException.from_exception(exc)
    first = next((i for i, frame in enumerate(report.stack) if _relative(frame.filename)), None)
    if first:  # the driver's and importlib's own frames say nothing to the user
        report.stack = traceback.StackSummary.from_list(list(report.stack)[first:])
    return {"ok": False, "kind": kind, "message": last, "where": where, "line": line,
            "traceback": _relative_paths("".join(report.format()))}


def _relative(filename: str) -> str | None:
    if not filename or filename.startswith("<"):  # <frozen ...>, <string>: not a repository file
        return None
    root = os.getcwd()
    path = os.path.abspath(filename)
    if path.startswith(root + os.sep) and os.path.isfile(path):
        return os.path.relpath(path, root)
    return None


def _relative_paths(text: str) -> str:
    return text.replace(os.getcwd() + os.sep, "")


def _sdk_version() -> str | None:
    sdk = sys.modules.get("kfp")
    if sdk is None:
        try:
            sdk = importlib.import_module("kfp")
        except Exception:
            return None
    return str(getattr(sdk, "__version__", "")) or None


def _write(path: str, result: dict) -> None:
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=str)
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
