"""A local run's log file: bounded while written, read from its end, never outside the runs folder."""

from __future__ import annotations

from pathlib import Path

from deploy.runners.local_logs import LogFile, log_path, read_tail


def test_the_log_keeps_its_first_bytes_and_says_how_much_was_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "run-1.log"
    with LogFile(path, limit=100) as log:
        log.write(b"a" * 60 + b"\n")
        log.write(b"b" * 80 + b"\n")

    text = path.read_text()
    assert text.startswith("a" * 60 + "\n" + "b" * 39 + "\n[... 42 more bytes of output not kept")
    assert log.written == 100


def test_the_tail_starts_at_a_line_and_drops_terminal_colours(tmp_path: Path) -> None:
    path = tmp_path / "run-2.log"
    path.write_bytes(b"".join(f"\x1b[32mline {n}\x1b[0m\n".encode() for n in range(1000)))

    tail = read_tail(path, max_bytes=100)

    assert tail is not None and tail.cut and tail.size == path.stat().st_size
    assert tail.text.splitlines()[0].startswith("line ") and tail.text.endswith("line 999\n")
    assert "\x1b" not in tail.text
    assert read_tail(tmp_path / "missing.log") is None


def test_a_new_submission_of_a_run_starts_a_new_log(tmp_path: Path) -> None:
    path = tmp_path / "run-3.log"
    with LogFile(path) as log:
        log.write(b"first attempt\n")
    with LogFile(path) as log:
        log.write(b"second attempt\n")

    assert path.read_text() == "second attempt\n"


def test_only_a_plain_run_id_names_a_log(tmp_path: Path) -> None:
    assert log_path(tmp_path, "run-0123abcd") == tmp_path / "run-0123abcd.log"
    for hostile in ("../kfp-bot.db", "a/b", "", ".hidden", "x" * 200, "run\n1", "run-1\n"):
        assert log_path(tmp_path, hostile) is None
