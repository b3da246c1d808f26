"""Endpoints of REST services: an HTTP method (or ``*``) and a path pattern, matched as X-Road matches them.

Path patterns are X-Road's ``PathGlob``: ``*`` matches any characters within one path segment (never
``/``), ``**`` matches anything, ``/`` included; ``\\*`` is a literal star and ``\\\\`` a literal backslash
(a backslash before anything else stands for itself). The whole path must match::

    >>> path_matches("/people/*", "/people/42")
    True
    >>> path_matches("/people/*", "/people/42/documents")
    False
    >>> path_matches("/people/**", "/people/42/documents")
    True
    >>> endpoint_matches("*", "/people/**", "GET", "/people/42")
    True
    >>> endpoint_matches("POST", "/people", "GET", "/people")
    False

Matching runs the pattern's NFA over the path as a bit set, so its time is linear in the path's length
(no backtracking regular expression that a hostile pattern could stall). A service's *base endpoint*
``* **`` stands for the whole service.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final
from urllib.parse import unquote

__all__ = [
    "ANY_METHOD",
    "ANY_PATH",
    "MAX_PATH_PATTERN_CHARS",
    "METHODS",
    "endpoint_matches",
    "is_base_endpoint",
    "normalize_method",
    "path_matches",
    "remove_dot_segments",
    "validate_path_pattern",
]

ANY_METHOD: Final = "*"
ANY_PATH: Final = "**"
METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", ANY_METHOD})
"""The methods an endpoint may name (X-Road's ``EndpointType`` methods)."""
MAX_PATH_PATTERN_CHARS: Final = 255
"""Longest path pattern (X-Road's ``endpoint.path`` is ``varchar(255)``)."""
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class _Wild(Enum):
    STAR = "*"
    """Any characters but ``/``."""
    DOUBLE_STAR = "**"
    """Any characters."""


_Token = str | _Wild


def _tokens(pattern: str) -> tuple[_Token, ...]:
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            out.append(pattern[i + 1])
            i += 2
        elif c == "*" and pattern.startswith("**", i):
            out.append(_Wild.DOUBLE_STAR)
            i += 2
        elif c == "*":
            out.append(_Wild.STAR)
            i += 1
        else:
            out.append(c)
            i += 1
    return tuple(out)


def path_matches(pattern: str, path: str) -> bool:
    """Whether the whole of ``path`` matches the glob ``pattern`` (see the module's documentation)."""
    # Bit i of ``states`` is "token i is next to match"; bit n is "the whole pattern has matched".
    tokens = _tokens(pattern)
    literals: dict[str, int] = {}
    star = double_star = 0
    for i, token in enumerate(tokens):
        if token is _Wild.STAR:
            star |= 1 << i
        elif token is _Wild.DOUBLE_STAR:
            double_star |= 1 << i
        else:
            literals[token] = literals.get(token, 0) | 1 << i
    wild = star | double_star
    run = _longest_wild_run(tokens)

    def closure(states: int) -> int:
        for _ in range(run):  # a wildcard may match nothing: skip past it
            states |= (states & wild) << 1
        return states

    states = closure(1)
    for c in path:
        staying = states & (double_star if c == "/" else wild)
        states = ((states & literals.get(c, 0)) << 1) | staying
        if not states:
            return False
        states = closure(states)
    return bool(states >> len(tokens) & 1)


def _longest_wild_run(tokens: tuple[_Token, ...]) -> int:
    longest = current = 0
    for token in tokens:
        current = current + 1 if isinstance(token, _Wild) else 0
        longest = max(longest, current)
    return longest


def normalize_method(method: str) -> str:
    """``method`` in upper case when it is one an endpoint may name, else ``ValueError``."""
    upper = method.strip().upper()
    if upper not in METHODS:
        raise ValueError(f"{method[:20]!r} is not an HTTP method an endpoint may name")
    return upper


def validate_path_pattern(pattern: str) -> str:
    """``pattern`` when it can be an endpoint's path: ``**`` or starting with ``/``, at most
    :data:`MAX_PATH_PATTERN_CHARS`, no control characters, no query string; else ``ValueError``."""
    if len(pattern) > MAX_PATH_PATTERN_CHARS:
        raise ValueError(f"a path pattern is at most {MAX_PATH_PATTERN_CHARS} characters")
    if _CONTROL.search(pattern):
        raise ValueError("a path pattern contains control characters")
    if pattern != ANY_PATH and not pattern.startswith("/"):
        raise ValueError(f"path pattern {pattern[:80]!r} must start with / (or be {ANY_PATH})")
    if "?" in pattern or "#" in pattern:
        raise ValueError("a path pattern has no query string or fragment")
    return pattern


def remove_dot_segments(path: str) -> str:
    """``path`` with its ``.`` and ``..`` segments resolved (RFC 3986 §5.2.4), so that ``/public/../secret``
    is matched as ``/secret``."""
    out: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
        elif segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    result = "/".join(out)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def is_base_endpoint(method: str, pattern: str) -> bool:
    """Whether ``method pattern`` is a service's base endpoint ``* **`` (the whole service)."""
    return method == ANY_METHOD and pattern == ANY_PATH


def endpoint_matches(method: str, pattern: str, request_method: str, request_path: str) -> bool:
    """Whether a request ``request_method request_path`` falls under the endpoint ``method pattern``.

    Methods compare case-insensitively, ``*`` being any method; the path is percent-decoded (as X-Road's
    ``checkAccessRights`` decodes it), then matched after :func:`remove_dot_segments`. Decoding first makes
    ``/public/%2e%2e/secret`` the ``/secret`` an information system may take it for, never a path under
    ``/public/``::

        >>> endpoint_matches("GET", "/public/**", "GET", "/public/%2e%2e/secret")
        False
        >>> endpoint_matches("GET", "/people/Ab", "GET", "/people/%41b")
        True
    """
    if method != ANY_METHOD and method.upper() != request_method.upper():
        return False
    return path_matches(pattern, remove_dot_segments(unquote(request_path, errors="replace")))
