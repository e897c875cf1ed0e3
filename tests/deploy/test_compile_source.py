"""What a pipeline file's source says about its compile (deploy/compiler/source.py)."""

from __future__ import annotations

import pytest

from deploy.compiler.source import resolve_mode
from pipeline_registry.repo_config import CompileMode


@pytest.mark.parametrize(("tail", "mode"), [
    ("", CompileMode.IMPORT),
    ("if __name__ == '__main__':\n    kfp.compiler.Compiler().compile(p, 'p.yaml')\n", CompileMode.SCRIPT),
    ("if '__main__' == __name__:\n    Compiler().compile(p, 'p.yaml')\n", CompileMode.SCRIPT),
    ("def main():\n    compiler.Compiler().compile(p, 'p.json')\n\nif __name__ == '__main__':\n    main()\n",
     CompileMode.SCRIPT),
    ("if __name__ == '__main__':\n    print(p)\n", CompileMode.IMPORT),
])
def test_auto_mode_runs_files_that_compile_themselves_as_scripts(tail: str, mode: CompileMode) -> None:
    source = "import kfp\nfrom kfp import compiler\n\ndef p():\n    pass\n\n" + tail

    assert resolve_mode(CompileMode.AUTO, source, "p.py") is mode
    assert resolve_mode(CompileMode.IMPORT, source, "p.py") is CompileMode.IMPORT
