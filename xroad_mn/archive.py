"""Message-log archives (``mlog-*.zip``): written as X-Road's ``LogArchiveWriter`` writes them, and verified.

An archive holds one ASiC-E container per logged message and a final ``linkinginfo`` entry that chains every
container to the previous one and the archive to the previous archive::

    <prevDigest|-> <prevFile|-> SHA-512
    <digest_1> <entry_1>
    <digest_2> <entry_2>

with ``digest_i = hex(H(digest_{i-1} ‖ hex(H(entry_i bytes))))`` over the hex *text*, lower case, and
``digest_0`` the previous archive's last digest (empty for the first archive of a chain).

Write an archive, then verify it as the first of its chain::

    >>> from datetime import datetime, timezone
    >>> from xroad_mn.archive import asic_entry_name, verify_archive, write_archive
    >>> name = asic_entry_name("q-1", response=False, record_id=33)
    >>> name
    'q-1-request-11.asice'
    >>> t = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    >>> written = write_archive([(name, b"container bytes")], previous=None, start=t, end=t)
    >>> written.filename[:35]
    'mlog-20240501120000-20240501120000-'
    >>> verify_archive(written.data, first=True).last_digest == written.last_link.digest
    True

Verification follows X-Road's ``ArchiveHashChainVerifier`` and fails closed with ``archive_linking_failed``.
The containers themselves are checked by a caller-supplied hook (see :func:`verify_archive`).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.zipbounds import central_directory_entries

__all__ = [
    "ASIC_SUFFIX",
    "DEFAULT_HASH_ALGORITHM",
    "LINKING_INFO",
    "MAX_ARCHIVE_BYTES",
    "MAX_COMPRESSION_RATIO",
    "MAX_ENTRIES",
    "MAX_ENTRY_BYTES",
    "MAX_LINKING_INFO_BYTES",
    "MAX_QUERY_ID_LENGTH",
    "MAX_TOTAL_UNCOMPRESSED_BYTES",
    "ArchiveLink",
    "ArchiveVerification",
    "ContainerHook",
    "WrittenArchive",
    "archive_filename",
    "asic_entry_name",
    "build_linking_info",
    "escape_query_id",
    "linked_previous",
    "verify_archive",
    "verify_archive_chain",
    "write_archive",
]

LINKING_INFO: Final = "linkinginfo"
ASIC_SUFFIX: Final = ".asice"
DEFAULT_HASH_ALGORITHM: Final = "SHA-512"
MAX_QUERY_ID_LENGTH: Final = 226
"""X-Road truncates the escaped query id in a container's entry name to this many characters."""

MAX_ARCHIVE_BYTES: Final = 1024 * 1024 * 1024
"""Largest archive read (X-Road rotates at 32 MiB by default)."""
MAX_ENTRIES: Final = 100_000
"""Most entries an archive may hold (X-Road archives at most 10 000 records a batch)."""
MAX_ENTRY_BYTES: Final = 256 * 1024 * 1024
"""Largest uncompressed entry read."""
MAX_LINKING_INFO_BYTES: Final = 64 * 1024 * 1024
"""Largest ``linkinginfo`` read."""
MAX_TOTAL_UNCOMPRESSED_BYTES: Final = 512 * 1024 * 1024
"""Most bytes all entries of one archive may inflate to together (every entry is held in memory)."""
MAX_COMPRESSION_RATIO: Final = 100
"""Most an archive's entries may inflate to, as a multiple of the archive's size. X-Road stores entries
uncompressed (level 0) and containers are compressed ZIPs already, so real archives stay near 1."""

_ALGORITHMS: Final = {"SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
"""The hash algorithms X-Road's archive verifier accepts, by the name written in ``linkinginfo``."""

_URL_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")
_GROUP_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\\<>/:|*?]")
_DIGITS32: Final = "0123456789abcdefghijklmnopqrstuv"


def _fail(message: str, **details: str | int) -> XRoadError:
    return XRoadError(FaultCode.ARCHIVE_LINKING, message, details=details)


def _hex_hash(algorithm: str, data: bytes) -> str:
    return hashlib.new(_ALGORITHMS[algorithm], data).hexdigest()


def _algorithm(name: str) -> str:
    key = name.strip().upper().replace("_", "-")
    if key.startswith("SHA") and not key.startswith("SHA-"):
        key = "SHA-" + key[3:]
    if key not in _ALGORITHMS:
        raise _fail(f"unsupported linking hash algorithm {name!r} (supported: {', '.join(_ALGORITHMS)})")
    return key


# --- Names -------------------------------------------------------------------------------------------------


def escape_query_id(query_id: str) -> str:
    """Escape a query id for a file name as X-Road does (Java ``URLEncoder`` in UTF-8: space → ``+``)."""
    out: list[str] = []
    for ch in query_id:
        if ch in _URL_SAFE:
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _base32(value: int) -> str:
    """Java ``Long.toUnsignedString(value, 32)``: digits ``0-9a-v``."""
    value &= (1 << 64) - 1
    if value == 0:
        return "0"
    digits: list[str] = []
    while value:
        value, rem = divmod(value, 32)
        digits.append(_DIGITS32[rem])
    return "".join(reversed(digits))


def asic_entry_name(query_id: str, *, response: bool, record_id: int) -> str:
    """A record's container name in an archive: ``<query id>-request|response-<id in base 32>.asice``."""
    kind = "response" if response else "request"
    return f"{escape_query_id(query_id)[:MAX_QUERY_ID_LENGTH]}-{kind}-{_base32(record_id)}{ASIC_SUFFIX}"


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%d%H%M%S")


def archive_filename(start: datetime, end: datetime, last_digest: str, group: str | None = None) -> str:
    """``mlog-[<group>-]<start>-<end>-<first 16 of the last linking digest>.zip`` (times in UTC)."""
    prefix = f"{_GROUP_UNSAFE.sub('_', group)}-" if group else ""
    return f"mlog-{prefix}{_timestamp(start)}-{_timestamp(end)}-{last_digest[:16]}.zip"


# --- Writing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveLink:
    """The end of an archive chain: the last linking digest (lower-case hex) and the archive's file name."""

    digest: str
    filename: str


@dataclass(frozen=True, slots=True)
class WrittenArchive:
    """An archive produced by :func:`write_archive`."""

    filename: str
    data: bytes
    last_link: ArchiveLink


def _chain(algorithm: str, previous: str, entries: Sequence[tuple[str, bytes]]) -> list[str]:
    digests: list[str] = []
    last = previous
    for _, data in entries:
        last = _hex_hash(algorithm, (last + _hex_hash(algorithm, data)).encode("ascii"))
        digests.append(last)
    return digests


def build_linking_info(
    entries: Sequence[tuple[str, bytes]],
    *,
    previous: ArchiveLink | None,
    hash_algorithm: str = DEFAULT_HASH_ALGORITHM,
) -> tuple[bytes, str]:
    """The ``linkinginfo`` bytes for ``entries`` (in order) and the last linking digest."""
    algorithm = _algorithm(hash_algorithm)
    prev_digest = previous.digest if previous else ""
    prev_file = previous.filename if previous else ""
    digests = _chain(algorithm, prev_digest, entries)
    lines = [f"{prev_digest or '-'} {prev_file or '-'} {algorithm}"]
    lines.extend(f"{d} {name}" for d, (name, _) in zip(digests, entries, strict=True))
    return ("\n".join(lines) + "\n").encode("utf-8"), (digests[-1] if digests else prev_digest)


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    year = min(max(moment.year, 1980), 2107)
    return (year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def write_archive(
    entries: Sequence[tuple[str, bytes]],
    *,
    previous: ArchiveLink | None,
    start: datetime,
    end: datetime,
    group: str | None = None,
    hash_algorithm: str = DEFAULT_HASH_ALGORITHM,
) -> WrittenArchive:
    """Build an ``mlog-*.zip``: the containers in order, then ``linkinginfo``; deterministic for its inputs.

    Entries are written as Java's ``ZipOutputStream`` at level 0 writes them (DEFLATE method, no
    compression), each stamped with ``end``. ``previous`` is the last link of the previous archive of the same
    group, or ``None`` for the first archive of a chain.
    """
    if not entries:
        raise _fail("an archive needs at least one container")
    names = [name for name, _ in entries]
    if len(set(names)) != len(names) or LINKING_INFO in names:
        raise _fail("archive entry names must be unique and must not be 'linkinginfo'")
    for name in names:
        if not name.endswith(ASIC_SUFFIX) or any(c.isspace() for c in name) or "/" in name:
            raise _fail(f"invalid container entry name {name!r}", entry=name)
    linking_info, last = build_linking_info(entries, previous=previous, hash_algorithm=hash_algorithm)
    buffer = io.BytesIO()
    stamp = _zip_time(end)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=0) as zf:
        for name, data in [*entries, (LINKING_INFO, linking_info)]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=0)
    filename = archive_filename(start, end, last, group)
    return WrittenArchive(filename, buffer.getvalue(), ArchiveLink(last, filename))


# --- Verification ------------------------------------------------------------------------------------------

ContainerHook = Callable[[str, bytes], None]
"""Called with each container's entry name and bytes once its linking digest checked out; raises to reject."""


@dataclass(frozen=True, slots=True)
class ArchiveVerification:
    """What :func:`verify_archive` established about one archive."""

    last_digest: str
    entries: tuple[str, ...]
    hash_algorithm: str
    previous_digest: str | None
    """The previous archive's last digest as recorded in ``linkinginfo`` (``None`` for the first archive)."""
    previous_file: str | None
    linked: bool
    """True when the archive was checked against a given previous digest (or as the first of a chain)."""


@dataclass(frozen=True, slots=True)
class _LinkingInfo:
    previous_digest: str
    previous_file: str
    algorithm: str
    lines: tuple[tuple[str, str], ...]  # (digest, entry name)


def _parse_linking_info(data: bytes) -> _LinkingInfo:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(f"linkinginfo is not UTF-8 text: {e}") from e
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        raise _fail("linkinginfo is empty")
    head = lines[0].split()
    if len(head) != 3:
        raise _fail(
            "linkinginfo's first line must be '<previous digest|-> <previous file|-> <hash algorithm>'"
        )
    algorithm = _algorithm(head[2])
    hex_len = hashlib.new(_ALGORITHMS[algorithm]).digest_size * 2
    hex_re = re.compile(rf"[0-9a-f]{{{hex_len}}}")
    prev_digest = "" if head[0] == "-" else head[0]
    prev_file = "" if head[1] == "-" else head[1]
    if prev_digest and not hex_re.fullmatch(prev_digest):
        raise _fail(f"linkinginfo's previous digest is not a lower-case {algorithm} hex digest")
    if bool(prev_digest) != bool(prev_file):
        raise _fail(
            "linkinginfo names a previous archive without its digest, or a digest without its archive"
        )
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if len(parts) != 2:
            raise _fail(f"linkinginfo line {number} must be '<digest> <entry name>'", line=number)
        if not hex_re.fullmatch(parts[0]):
            raise _fail(f"linkinginfo line {number} has no lower-case {algorithm} hex digest", line=number)
        entries.append((parts[0], parts[1]))
    return _LinkingInfo(prev_digest, prev_file, algorithm, tuple(entries))


_LOCAL_HEADER: Final = b"PK\x03\x04"


def _entry_bytes(zip_bytes: bytes, info: zipfile.ZipInfo, limit: int) -> bytes:
    """An entry's bytes, read strictly: the local header agrees with the central directory, the compressed
    stream ends exactly where the entry does, and the size and CRC match. At most ``limit`` + 1 bytes are
    ever inflated."""
    name = info.filename
    offset = info.header_offset
    header = zip_bytes[offset : offset + 30]
    if len(header) != 30 or header[:4] != _LOCAL_HEADER:
        raise _fail(f"entry {name!r} has no local file header", entry=name)
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    local_name = zip_bytes[offset + 30 : offset + 30 + name_len]
    if local_name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"):
        raise _fail(f"entry {name!r} has a different name in its local header", entry=name)
    if info.flag_bits & 0x1:
        raise _fail(f"entry {name!r} is encrypted", entry=name)
    start = offset + 30 + name_len + extra_len
    raw = zip_bytes[start : start + info.compress_size]
    if len(raw) != info.compress_size:
        raise _fail(f"entry {name!r} is truncated", entry=name)
    if info.compress_type == zipfile.ZIP_STORED:
        data = raw
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflater.decompress(raw, limit + 1)
        if len(data) > limit:
            raise _fail(f"entry {name!r} inflates to more than {limit} bytes", entry=name)
        if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
            raise _fail(f"entry {name!r} has a damaged compressed stream", entry=name)
    else:
        raise _fail(f"entry {name!r} uses an unsupported compression method", entry=name)
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise _fail(f"entry {name!r} is damaged: its size or CRC does not match", entry=name)
    return data


def _read_entries(zip_bytes: bytes) -> list[tuple[str, bytes]]:
    """Every entry, inflated; the bounds (size, entry count, declared sizes: each, together and as a multiple
    of the archive) are checked before anything is inflated, and no entry inflates past its declared size."""
    if len(zip_bytes) > MAX_ARCHIVE_BYTES:
        raise _fail(f"archive is larger than {MAX_ARCHIVE_BYTES} bytes")
    declared_entries = central_directory_entries(zip_bytes)
    if declared_entries is not None and declared_entries > MAX_ENTRIES:
        raise _fail(f"archive has more than {MAX_ENTRIES} entries")
    out: list[tuple[str, bytes]] = []
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as e:
        raise _fail(f"archive is not a readable zip file: {e}") from e
    if len(infos) > MAX_ENTRIES:
        raise _fail(f"archive has more than {MAX_ENTRIES} entries")
    total = 0
    for info in infos:
        if info.is_dir():
            raise _fail(f"unexpected directory {info.filename!r} in archive", entry=info.filename)
        limit = MAX_LINKING_INFO_BYTES if info.filename == LINKING_INFO else MAX_ENTRY_BYTES
        if info.file_size > limit:
            raise _fail(f"entry {info.filename!r} is larger than {limit} bytes", entry=info.filename)
        total += info.file_size
    if total > MAX_TOTAL_UNCOMPRESSED_BYTES:
        raise _fail(f"archive entries expand to {total} bytes, more than {MAX_TOTAL_UNCOMPRESSED_BYTES}")
    if total > MAX_COMPRESSION_RATIO * len(zip_bytes):
        raise _fail(
            f"archive entries expand to {total} bytes, more than {MAX_COMPRESSION_RATIO} times the "
            f"archive's {len(zip_bytes)} bytes"
        )
    for info in infos:
        try:
            out.append((info.filename, _entry_bytes(zip_bytes, info, info.file_size)))
        except zlib.error as e:
            raise _fail(f"entry {info.filename!r} cannot be decompressed: {e}", entry=info.filename) from e
    return out


def linked_previous(zip_bytes: bytes) -> str | None:
    """The file name of the archive ``zip_bytes`` links to in its ``linkinginfo`` (``None`` for the first of
    a chain), read without the other entries. ``malformed_archive`` style errors as :func:`verify_archive`."""
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            info = archive.getinfo(LINKING_INFO)
    except KeyError as e:
        raise _fail("archive has no linkinginfo entry") from e
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise _fail(f"archive is not a readable zip file: {e}") from e
    return _parse_linking_info(_entry_bytes(zip_bytes, info, MAX_LINKING_INFO_BYTES)).previous_file or None


def verify_archive(
    zip_bytes: bytes,
    *,
    previous_digest: str | None = None,
    first: bool = False,
    verify_container: ContainerHook | None = None,
) -> ArchiveVerification:
    """Verify one archive's linking chain and the integrity of every container; return its last digest.

    Give ``previous_digest`` (the last digest of the previous archive) or ``first=True`` to also check the
    link to the previous archive; with neither, the chain is checked from the digest ``linkinginfo`` records.

    Steps: 1. read the zip (entries intact: CRCs, sizes); 2. find ``linkinginfo`` and parse it; 3. there is at
    least one container and nothing else; 4. the link to the previous archive matches; 5. the containers and
    ``linkinginfo`` list the same names; 6. recompute the chain in zip order and compare every digest;
    7. hand each container to ``verify_container``.
    """
    if previous_digest is not None and first:
        raise _fail("give either a previous digest or 'first', not both")
    # 1. Read the zip.
    entries = _read_entries(zip_bytes)
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise _fail("archive has duplicate entry names")
    # 2. linkinginfo.
    linking_data = [data for name, data in entries if name == LINKING_INFO]
    if not linking_data:
        raise _fail("linking info is missing from the archive")
    info = _parse_linking_info(linking_data[0])
    # 3. Containers, and nothing else.
    containers = [(name, data) for name, data in entries if name != LINKING_INFO]
    extra = [name for name, _ in containers if not name.endswith(ASIC_SUFFIX)]
    if extra:
        raise _fail(f"archive holds entries that are not ASiC containers: {', '.join(extra)}", entry=extra[0])
    if not containers:
        raise _fail("there are no ASiC containers in the archive, at least one is expected")
    # 4. The link to the previous archive.
    expected_previous = (
        "" if first else (previous_digest.strip().lower() if previous_digest is not None else None)
    )
    if expected_previous is not None and expected_previous != info.previous_digest:
        raise _fail(
            "the previous digest given and the one in linking info differ: "
            f"given {expected_previous or '-'}, in linking info {info.previous_digest or '-'}"
        )
    # 5. The same names on both sides.
    listed = [name for _, name in info.lines]
    if len(set(listed)) != len(listed):
        raise _fail("linking info lists an entry twice")
    if set(listed) != {name for name, _ in containers}:
        missing = sorted(set(listed) - {n for n, _ in containers})
        unlisted = sorted({n for n, _ in containers} - set(listed))
        raise _fail(
            "file names in linking info and in the archive differ: "
            f"missing from archive {missing or '-'}, not in linking info {unlisted or '-'}"
        )
    # 6. Recompute the chain in zip order.
    recorded = {name: digest for digest, name in info.lines}
    computed = _chain(info.algorithm, info.previous_digest, containers)
    for (name, _), digest in zip(containers, computed, strict=True):
        if recorded[name] != digest:
            raise _fail(
                f"digests of {name} do not match: linking info {recorded[name]}, computed {digest}",
                entry=name,
            )
    # 7. The containers themselves.
    if verify_container is not None:
        for name, data in containers:
            verify_container(name, data)
    return ArchiveVerification(
        last_digest=computed[-1],
        entries=tuple(name for name, _ in containers),
        hash_algorithm=info.algorithm,
        previous_digest=info.previous_digest or None,
        previous_file=info.previous_file or None,
        linked=expected_previous is not None,
    )


def _check_linked_name(name: str, data: bytes, previous_name: str) -> None:
    """Name the archive missing before ``name`` when its ``linkinginfo`` links to another one than
    ``previous_name`` (the clearer error when an archive was removed from the middle of a chain)."""
    try:
        linked = linked_previous(data)
    except XRoadError:
        return
    if linked is not None and linked != previous_name:
        raise _fail(
            f"{name}: linking info names {linked} as the previous archive, not {previous_name}: "
            f"{linked} is missing from the chain",
            archive=name,
        )


def verify_archive_chain(
    archives: Iterable[tuple[str, bytes]],
    *,
    previous_digest: str | None = None,
    first: bool = False,
    verify_container: ContainerHook | None = None,
) -> list[ArchiveVerification]:
    """Verify ``(file name, bytes)`` archives in chain order: each must link to the last digest of the one
    before it.

    The first archive is checked against ``previous_digest`` / ``first`` as in :func:`verify_archive`; each
    later one must also name the file before it as its previous archive. A failure names the archive in its
    details. ``archives`` may be a generator, so only one archive is held at a time
    (:func:`xroad_mn.fileio.read_archives` reads files that way).
    """
    results: list[ArchiveVerification] = []
    prev, is_first = previous_digest, first
    previous_name: str | None = None
    for name, data in archives:
        try:
            result = verify_archive(
                data, previous_digest=prev, first=is_first, verify_container=verify_container
            )
        except XRoadError as e:
            if previous_name is not None:
                _check_linked_name(name, data, previous_name)
            raise XRoadError(e.code, f"{name}: {e.message}", details={**e.details, "archive": name}) from e
        if previous_name is not None and result.previous_file != previous_name:
            raise _fail(
                f"{name}: linking info names {result.previous_file or '-'} as the previous archive, "
                f"not {previous_name}",
                archive=name,
            )
        results.append(result)
        prev, is_first, previous_name = result.last_digest, False, name
    return results
