"""Endpoint path globs as X-Road's PathGlob matches them, against its own test table and a reference
matcher, plus methods, pattern validation and dot-segment removal."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from security_server.endpoints import (
    endpoint_matches,
    is_base_endpoint,
    normalize_method,
    path_matches,
    remove_dot_segments,
    validate_path_pattern,
)

# X-Road's PathGlobTest (proxy/src/test/java/ee/ria/xroad/proxy/conf/PathGlobTest.java): glob, path, result.
XROAD_CASES = [
    ("**", "", True),
    ("***", "match/anything/*", True),
    ("**", "/a/b/c", True),
    ("/*/", "/a/", True),
    ("/*/", "/a/b/", False),
    ("", "", True),
    ("", " ", False),
    (".^$+{[]|()", ".^$+{[]|()", True),
    ("**/bar/**", "a/b/c/bar/e/f", True),
    ("**/bar/**", "a/b/c/foo/e/f", False),
    ("**\\*", "/what/ever*", True),
    ("**\\*", "/what/ever!", False),
    ("simple", "simple", True),
    ("simple", "prefix.simple.suffix", False),
    ("**/*/**", "something/bar/something/else", True),
    ("**/*/**", "/bar/", True),
    ("**/*/**", "//", True),
    ("**/*/**", "something/else", False),
    ("\\A", "\\A", True),
    ("\\*", "*", True),
    ("\\*", "\\*", False),
    ("\\\\", "\\", True),
    ("aa\\", "aa\\", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), XROAD_CASES)
def test_xroad_path_glob_cases(pattern: str, path: str, expected: bool) -> None:
    assert path_matches(pattern, path) is expected


def _reference(pattern: str, path: str) -> bool:
    """X-Road's own construction: the glob compiled to a regular expression (fine for short inputs)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(out), path, flags=re.DOTALL) is not None


_ALPHABET = st.sampled_from(["a", "b", "/", "*", "\\", ".", "-"])
_PATH_ALPHABET = st.sampled_from(["a", "b", "/", "*", "\\", ".", "-", "\n"])


@given(st.lists(_ALPHABET, max_size=10).map("".join), st.lists(_PATH_ALPHABET, max_size=12).map("".join))
def test_matches_like_the_regular_expression_xroad_builds(pattern: str, path: str) -> None:
    assert path_matches(pattern, path) is _reference(pattern, path)


_SEGMENT = st.text(st.characters(exclude_characters="/*\\", exclude_categories=["Cs"]), max_size=8)


@given(st.lists(_SEGMENT, max_size=5).map("/".join))
def test_a_pattern_without_wildcards_matches_only_itself(path: str) -> None:
    assert path_matches(path, path)
    assert not path_matches(path, path + "x")
    assert not path_matches(path + "x", path)


@given(st.text(max_size=40))
def test_double_star_matches_everything(path: str) -> None:
    assert path_matches("**", path)


@given(_SEGMENT, _SEGMENT)
def test_a_star_stays_within_one_segment(first: str, second: str) -> None:
    assert path_matches("/people/*", f"/people/{first}")
    assert not path_matches("/people/*", f"/people/{first}/{second}")
    assert path_matches("/people/**", f"/people/{first}/{second}")


def test_matching_time_is_linear_for_hostile_patterns() -> None:
    pattern = "**a" * 40 + "b"
    path = "a" * 20_000
    started = time.perf_counter()
    assert not path_matches(pattern, path)
    assert time.perf_counter() - started < 2  # a backtracking matcher would not finish in hours


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/../c", "/a/c"),
        ("/a/./b", "/a/b"),
        ("/..", "/"),
        ("/a/..", "/"),
        ("/a/b/.", "/a/b/"),
        ("/public/../secret", "/secret"),
        ("/a//b", "/a//b"),
        ("", ""),
    ],
)
def test_dot_segments_are_removed(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


def test_endpoint_matching_by_method_and_path() -> None:
    assert endpoint_matches("*", "**", "DELETE", "/anything")
    assert endpoint_matches("GET", "/people/*", "get", "/people/1")
    assert not endpoint_matches("GET", "/people/*", "POST", "/people/1")
    assert not endpoint_matches("GET", "/public/*", "GET", "/public/../secret")
    # Percent-decoded before the dot segments go: what the information system may make of the path.
    assert not endpoint_matches("GET", "/public/**", "GET", "/public/%2e%2e/secret")
    assert not endpoint_matches("GET", "/public/**", "GET", "/public/%2E%2E/%2E%2E/secret")
    assert endpoint_matches("GET", "/people/Ab", "GET", "/peo%70le/%41b")
    assert not endpoint_matches("GET", "/people/*", "GET", "/people/a%2Fb")
    assert endpoint_matches("GET", "/people/*", "GET", "/people/%ff")
    assert is_base_endpoint("*", "**")
    assert not is_base_endpoint("GET", "**")


def test_methods_and_path_patterns_are_checked() -> None:
    assert normalize_method(" patch ") == "PATCH"
    assert normalize_method("*") == "*"
    with pytest.raises(ValueError, match="not an HTTP method"):
        normalize_method("FETCH")
    assert validate_path_pattern("**") == "**"
    assert validate_path_pattern("/people/{id}") == "/people/{id}"
    for bad in ("people", "/a?x=1", "/a#b", "/a\nb", "/" + "a" * 255):
        with pytest.raises(ValueError, match="path pattern"):
            validate_path_pattern(bad)
