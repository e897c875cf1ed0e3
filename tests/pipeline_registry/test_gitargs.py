"""Values bound for a git command line: what is accepted, and what is refused with the field named."""

from __future__ import annotations

import pytest

from pipeline_registry.gitargs import GitArgumentError, check_ref, check_sha, check_url, ref_problem


@pytest.mark.parametrize("value", ["a" * 40, "0123456789abcdef" * 4])
def test_full_sha1_and_sha256_ids_are_accepted(value: str) -> None:
    assert check_sha(value, "after") == value


@pytest.mark.parametrize("value", ["", "-" + "a" * 39, "a" * 39, "A" * 40, "a" * 40 + "\n", "HEAD",
                                   "a" * 20 + ".." + "a" * 18, "--upload-pack=x"])
def test_anything_else_is_not_a_sha(value: str) -> None:
    with pytest.raises(GitArgumentError, match=r"^pull_request\.head\.sha is not a full commit SHA") as caught:
        check_sha(value, "pull_request.head.sha")
    assert caught.value.field == "pull_request.head.sha"


@pytest.mark.parametrize("value", ["main", "refs/heads/feature/x-1", "release-2024.1", "user@host"])
def test_valid_ref_names(value: str) -> None:
    assert ref_problem(value) is None
    assert check_ref(value, "ref") == value


@pytest.mark.parametrize("value,problem", [
    ("", "is empty"), ("-x", "starts with '-'"), ("--upload-pack=x", "starts with '-'"),
    ("a..b", "'..'"), ("a@{1}", "'@{'"), ("@", "'@{'"), ("a b", "a space"), ("a\x01b", "control"),
    ("a\nb", "control"), ("a~1", "~"), ("a^", "~"), ("a:b", "~"), ("/a", "empty path component"),
    ("a/", "empty path component"), ("a//b", "empty path component"), ("a.", "ends with"),
    (".a", "starting with '.'"), ("a/.b", "starting with '.'"), ("a.lock", ".lock"),
])
def test_invalid_ref_names_say_why(value: str, problem: str) -> None:
    with pytest.raises(GitArgumentError, match=r"^pull_request\.head\.ref is not a valid git ref") as caught:
        check_ref(value, "pull_request.head.ref")
    assert problem in str(caught.value)


@pytest.mark.parametrize("value", ["https://github.com/o/r.git", "ssh://git@github.com/o/r.git",
                                   "file:///srv/r.git", "/srv/git/r"])
def test_urls_and_absolute_paths_are_accepted(value: str) -> None:
    assert check_url(value, "repository.clone_url") == value


@pytest.mark.parametrize("value,problem", [
    ("--upload-pack=touch /tmp/x", "starts with '-'"), ("-u", "starts with '-'"), ("", "is empty"),
    ("https://github.com/o/r\n--x", "control characters"), ("ext::sh -c touch% /tmp/x", "not an http(s)"),
    ("relative/path", "not an http(s)"), ("git@github.com:o/r.git", "not an http(s)"),
    ("fd::7", "not an http(s)"),
])
def test_other_locations_are_refused(value: str, problem: str) -> None:
    with pytest.raises(GitArgumentError, match=r"^repository\.clone_url ") as caught:
        check_url(value, "repository.clone_url")
    assert problem in str(caught.value)
