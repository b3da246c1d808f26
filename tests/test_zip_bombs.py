"""Decompression bombs and oversized central directories: the archive verifier and the ASiC reader refuse
them with an X-Road fault before inflating or parsing them (peak memory measured with tracemalloc)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable

import pytest

from xroad_mn.archive import (
    LINKING_INFO,
    MAX_ENTRIES,
    MAX_TOTAL_UNCOMPRESSED_BYTES,
    build_linking_info,
    verify_archive,
)
from xroad_mn.asic import MAX_ENTRIES as MAX_ASIC_ENTRIES
from xroad_mn.asic import read_container
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.zipbounds import central_directory_entries

MIB = 1024 * 1024
SMALL: int = 16 * MIB
"""Peak memory a refusal may take: a fraction of what the bombs inflate to."""


def _zeros_entry(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """A deflated entry of ``size`` zero bytes, written in pieces so building it stays small."""
    chunk = bytes(MIB)
    info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        for _ in range(size // MIB):
            f.write(chunk)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """An archive of 1 MiB-ish that inflates to more than MAX_TOTAL_UNCOMPRESSED_BYTES, each entry under the
    per-entry limit (the 1.5 MB zip that once took 1.9 GB)."""
    per_entry = 200 * MIB
    count = MAX_TOTAL_UNCOMPRESSED_BYTES // per_entry + 1
    names = [f"q-{i}-request-{i}.asice" for i in range(count)]
    linking, _ = build_linking_info([(n, b"") for n in names], previous=None)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in names:
            _zeros_entry(zf, name, per_entry)
        zf.writestr(LINKING_INFO, linking)
    return buffer.getvalue()


def _peak(action: Callable[[], object]) -> tuple[XRoadError, int]:
    tracemalloc.start()
    try:
        with pytest.raises(XRoadError) as e:
            action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return e.value, peak


def test_archive_bomb_is_refused_without_inflating(bomb: bytes) -> None:
    assert len(bomb) < 2 * MIB
    err, peak = _peak(lambda: verify_archive(bomb, first=True))
    assert err.code == FaultCode.ARCHIVE_LINKING
    assert "expand to" in err.message
    assert peak < SMALL, peak


def _lying_sizes(data: bytes, size: int) -> bytes:
    """``data`` with every entry's uncompressed size, in the local headers and the central directory, set
    to ``size``: the entries inflate to far more than they declare."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            out[info.header_offset + 22 : info.header_offset + 26] = struct.pack("<I", size)
    position = out.find(b"PK\x01\x02")
    while position >= 0:
        out[position + 24 : position + 28] = struct.pack("<I", size)
        position = out.find(b"PK\x01\x02", position + 4)
    return bytes(out)


def test_entry_that_inflates_past_its_declared_size_is_stopped_there() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("q-request-1.asice", bytes(200 * MIB))
        zf.writestr(LINKING_INFO, b"- - SHA-512\n")
    lying = _lying_sizes(buffer.getvalue(), 10)
    err, peak = _peak(lambda: verify_archive(lying, first=True))
    assert err.code == FaultCode.ARCHIVE_LINKING
    assert peak < SMALL, peak


def _directory_only(count: int) -> bytes:
    """A ZIP of ``count`` central-directory records (one-byte names) and nothing else: small on disk,
    millions of objects for :mod:`zipfile`."""
    record = (
        struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"a"
    )
    directory = record * count
    end = struct.pack(
        "<4s4H2IH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(directory), 0, 0
    )
    return directory + end


@pytest.mark.parametrize(
    ("read", "limit", "code"),
    [
        (lambda data: verify_archive(data, first=True), MAX_ENTRIES, FaultCode.ARCHIVE_LINKING),
        (read_container, MAX_ASIC_ENTRIES, FaultCode.ASIC_INVALID_MIME_TYPE),
    ],
    ids=["archive", "asic"],
)
def test_too_many_entries_are_refused_before_parsing(
    read: Callable[[bytes], object], limit: int, code: str
) -> None:
    data = _directory_only(limit + 1)  # the end record's 16-bit count says less: the records are counted
    assert central_directory_entries(data) == limit + 1
    err, peak = _peak(lambda: read(data))
    assert err.code == code
    assert "entries" in err.message
    assert peak < SMALL, peak


def test_central_directory_entries_of_real_archives() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.asice", b"PK\x01\x02 inside an entry is not counted")
    assert central_directory_entries(buffer.getvalue()) == 3
    assert central_directory_entries(b"not a zip") is None
