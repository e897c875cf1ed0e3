"""Import statements read out of a Python file's bytes, without running it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline_registry.import_statements import _INLINE, ImportStmt, _one_line_statements, _scan, extract_imports


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


_LINES = ["import a", "import a.b as c, d", "  import os  # (comment", "from . import x", "from ..p.q import y as z, w",
          "from m import *", "from m import (a,", "    b)", "import a \\", "    , b", "x = 'import s'",
          "from .m import a as b as c", "import e . f", "from m import a,", "if x: import y", "import é",
          "from\tm\timport\tn", "import a\r", '"""', "from m import a  # b \\", "import as", "def f():",
          "    from .a.b import c", "from . . x import y", "importlib.reload(x)", "from_x import y", "  # import z",
          "import a\r", "\timport b.c as d", ""]


@given(st.lists(st.sampled_from(_LINES), max_size=8))
def test_one_line_statements_read_as_the_statement_parser_reads_them(lines: list[str]) -> None:
    text = "\n".join(lines).encode()
    fast = _one_line_statements(text)
    assert fast is None or fast == _scan(text)
    if not _INLINE.search(text):
        assert extract_imports(text) == tuple(dict.fromkeys(_scan(text)))


def test_a_component_file_is_read_in_one_pass() -> None:
    text = b'"""Doc."""\nimport argparse\nfrom pathlib import Path\r\nfrom utils.io_helpers import read, write\n'
    assert _one_line_statements(text) == [ImportStmt(0, "argparse"), ImportStmt(0, "pathlib", ("Path",)),
                                          ImportStmt(0, "utils.io_helpers", ("read", "write"))]
