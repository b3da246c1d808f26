"""MIME header values as X-Road writes them: ``main; name=value; name='value'; name="value"``.

Both the signed global configuration directory and management requests carry such headers::

    >>> split_header_params("multipart/related; charset=UTF-8; boundary=xtop1234")
    ('multipart/related', {'charset': 'UTF-8', 'boundary': 'xtop1234'})
    >>> split_header_params("SHARED-PARAMETERS; instance='DEV'")
    ('SHARED-PARAMETERS', {'instance': 'DEV'})

Parameter names are lower-cased (MIME names are case-insensitive); a repeated name keeps its first value;
single and double quotes are both accepted, since X-Road's code writes ``'`` where the spec writes ``"``.
"""

from __future__ import annotations

__all__ = ["split_header_params"]


def split_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a header value into its main value (stripped, case kept) and its parameters."""
    pieces = value.split(";")
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, sep, val = piece.partition("=")
        if not sep:
            continue
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
        params.setdefault(name.strip().lower(), val)
    return pieces[0].strip(), params
