"""The limits a webhook value must fit: checked on raw bytes (depth) and on parsed values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.bounds import (
    MAX_DEPTH,
    MAX_ID,
    BoundsError,
    check_depth,
    check_int,
    check_login,
    check_ref,
    check_repo_name,
    check_sha,
    check_text,
)


def nested(depth: int, *, inside: bytes = b"1") -> bytes:
    return b'{"a":' * depth + inside + b"}" * depth


@pytest.mark.parametrize("body", [
    b"{}", b"[]", b'{"a": [1, {"b": "[[[[[[[[[["}]}', nested(MAX_DEPTH, inside=b"[]")[5:-1],
    b'{"quote": "\\"[[[[", "x": [[]]}', json.dumps({"deep": "[" * 1000}).encode(),
])
def test_bodies_within_the_depth_pass(body: bytes) -> None:
    check_depth(body)


@pytest.mark.parametrize(("body", "deepest"), [
    (nested(MAX_DEPTH + 1), MAX_DEPTH + 1),
    (b"[" * 100_000, 100_000),  # never closed: the parser would recurse all the same
    (b'{"ok": "[[[", "deep": ' + b"[" * 70 + b"]" * 70 + b"}", 71),
])
def test_bodies_nested_past_the_limit_are_refused_before_parsing(body: bytes, deepest: int) -> None:
    with pytest.raises(BoundsError) as caught:
        check_depth(body)

    assert str(caught.value) == f"nests objects or arrays deeper than {MAX_DEPTH} levels ({deepest})"


def test_ids_fit_in_a_signed_64_bit_integer() -> None:
    assert check_int(MAX_ID, 1, MAX_ID) == 2**63 - 1
    with pytest.raises(BoundsError, match=r"must be between 1 and 9223372036854775807, got 9223372036854775808"):
        check_int(2**63, 1, MAX_ID)
    with pytest.raises(BoundsError, match="got 0"):
        check_int(0, 1, MAX_ID)


@pytest.mark.parametrize(("value", "problem"), [
    ("title \ud800 half a pair", "is not valid Unicode text (lone surrogate at character 6)"),
    ("nul\x00inside", "contains a NUL character (at 3)"),
])
def test_text_that_no_database_can_store_is_refused(value: str, problem: str) -> None:
    with pytest.raises(BoundsError) as caught:
        check_text(value)

    assert str(caught.value) == problem


def test_text_of_any_language_and_emoji_passes() -> None:
    assert check_text("Ajoute l'étape d'évaluation 🚀\n\tdétails") == "Ajoute l'étape d'évaluation 🚀\n\tdétails"


@pytest.mark.parametrize("value", ["a" * 40, "0123456789abcdef" * 4])
def test_commit_shas_of_both_object_formats_pass(value: str) -> None:
    assert check_sha(value) == value


@pytest.mark.parametrize("value", ["a" * 39, "A" * 40, "g" * 40, "HEAD", "main", "a" * 41, "--upload-pack=x" + "a" * 25])
def test_anything_else_is_not_a_sha(value: str) -> None:
    with pytest.raises(BoundsError, match="is not a commit SHA"):
        check_sha(value)


@pytest.mark.parametrize("value", ["main", "feature/new-model", "release-1.2", "refs/heads/main", "refs/tags/v1.0"])
def test_branch_names_git_accepts_pass(value: str) -> None:
    assert check_ref(value) == value


@pytest.mark.parametrize("value", ["", "a..b", "x.lock", "has space", "tilde~1", "colon:x", "end/", "end.",
                                   ".hidden", "a//b", "at@{1}", "ctl\x01", "-\ud800"])
def test_branch_names_git_refuses_are_refused(value: str) -> None:
    with pytest.raises(BoundsError):
        check_ref(value)


@pytest.mark.parametrize(("check", "good", "bad"), [
    (check_login, ["octocat", "kfp-bot[bot]", "a", "user_emu"], ["", "-lead", "has space", "x" * 300, "a/b"]),
    (check_repo_name, ["octo-org/kfp-monorepo", "a/b.c_d"], ["", "noslash", "a/b/c", "a b/c", "/etc/passwd", "../x", "a/.."]),
])
def test_logins_and_repository_names(check, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert check(value) == value
    for value in bad:
        with pytest.raises(BoundsError):
            check(value)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet='[]{}"\\ab', max_size=6)
_JSON = st.recursive(st.none() | st.integers() | _TRICKY_TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
                     max_leaves=12)


@given(_JSON, st.integers(min_value=0, max_value=4))
def test_the_depth_is_that_of_the_parsed_value_whatever_the_strings_hold(value: object, limit: int) -> None:
    body = json.dumps(value).encode()
    if _depth(value) <= limit:
        check_depth(body, limit)
    else:
        with pytest.raises(BoundsError, match=rf"\({_depth(value)}\)$"):
            check_depth(body, limit)
