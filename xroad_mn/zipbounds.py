"""How many entries a ZIP file's central directory holds, read before :mod:`zipfile` parses it.

:class:`zipfile.ZipFile` builds one object per central-directory record before a caller can look at the
count, so a small hostile file with millions of records costs gigabytes. :func:`central_directory_entries`
reads the end-of-central-directory record (ZIP64 too) and counts record signatures in the directory, without
allocating per record, so readers refuse such a file first::

    >>> import io, zipfile
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as zf:
    ...     zf.writestr("a.txt", b"a")
    ...     zf.writestr("b.txt", b"b")
    >>> central_directory_entries(buffer.getvalue())
    2
"""

from __future__ import annotations

from typing import Final

__all__ = ["central_directory_entries"]

_EOCD: Final = b"PK\x05\x06"
_EOCD_BYTES: Final = 22
_ZIP64_LOCATOR: Final = b"PK\x06\x07"
_ZIP64_LOCATOR_BYTES: Final = 20
_ZIP64_EOCD: Final = b"PK\x06\x06"
_CENTRAL_RECORD: Final = b"PK\x01\x02"
_MAX_COMMENT_BYTES: Final = 0xFFFF


def _u(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "little")


def central_directory_entries(data: bytes) -> int | None:
    """The number of entries the central directory of ``data`` holds: the larger of the count the end
    record declares and the record signatures found in the directory. ``None`` when there is no end
    record (not a ZIP file; :mod:`zipfile` says why)."""
    start = max(0, len(data) - _EOCD_BYTES - _MAX_COMMENT_BYTES)
    eocd = data.rfind(_EOCD, start)
    if eocd < 0 or len(data) - eocd < _EOCD_BYTES:
        return None
    declared = _u(data, eocd + 10, 2)
    size = _u(data, eocd + 12, 4)
    end = eocd
    locator = eocd - _ZIP64_LOCATOR_BYTES
    if locator >= 0 and data[locator : locator + 4] == _ZIP64_LOCATOR:
        # ZIP64: the counts and sizes are in the ZIP64 end record, which ends where the locator starts.
        record = data.rfind(_ZIP64_EOCD, 0, locator)
        if record >= 0:
            declared = max(declared, _u(data, record + 32, 8))
            size = _u(data, record + 40, 8)
            end = record
    # zipfile reads the directory as the ``size`` bytes before the end record: count what it would parse.
    counted = data.count(_CENTRAL_RECORD, max(0, end - size), end)
    return max(declared, counted)
