"""Import statements read out of a Python file's bytes, without running it."""

from __future__ import annotations

from pipeline_registry.import_statements import ImportStmt, extract_imports


def test_plain_from_relative_and_aliased_imports() -> None:
    text = (b"import os, utils.io as uio\n"
            b"from utils import metrics, plots as p\n"
            b"from . import sibling\n"
            b"from ..pkg.mod import *\n"
            b"from __future__ import annotations\n")
    assert extract_imports(text) == (
        ImportStmt(0, "os"), ImportStmt(0, "utils.io"),
        ImportStmt(0, "utils", ("metrics", "plots")),
        ImportStmt(1, "", ("sibling",)),
        ImportStmt(2, "pkg.mod", ("*",)),
        ImportStmt(0, "__future__", ("annotations",)),
    )


def test_multi_line_imports_and_imports_inside_functions() -> None:
    text = (b"from utils.io import (\n    read,  # reader\n    write,\n)\n"
            b"import a \\\n    , b\n"
            b"def component():\n    import numpy as np\n    from lib import scoring\n")
    assert extract_imports(text) == (
        ImportStmt(0, "utils.io", ("read", "write")), ImportStmt(0, "a"), ImportStmt(0, "b"),
        ImportStmt(0, "numpy"), ImportStmt(0, "lib", ("scoring",)))


def test_imports_after_semicolons_and_colons_are_found() -> None:
    text = b"import os; import lib.a\nif True: from lib import b\ntry: import lib.c\nexcept ImportError: pass\n"
    assert set(extract_imports(text)) == {ImportStmt(0, "os"), ImportStmt(0, "lib.a"),
                                          ImportStmt(0, "lib", ("b",)), ImportStmt(0, "lib.c")}


def test_import_words_in_prose_are_not_imports() -> None:
    text = b'"""\nfrom the data import nothing\nimport-ant notes\n"""\nx = "import os"\n'
    assert extract_imports(text) == ()
