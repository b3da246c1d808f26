"""ASiC-E containers as X-Road's message log writes them, and their end-to-end verification.

A container (``application/vnd.etsi.asic-e+zip``) holds the logged message (``message.xml``: SOAP, or the
REST request/status line and headers), its attachments (``attachmentN``: SOAP attachments or the REST body),
the signature (``META-INF/signatures.xml``), the batch-signature hash chain (``sig-hashchainresult.xml``,
``sig-hashchain.xml``) and, for a batch time-stamp, the token (``META-INF/timestamp.tst``), its hash chain
(``ts-hashchainresult.xml``, ``ts-hashchain.xml``) and ``META-INF/ASiCManifest.xml``. A single time-stamp
lives inside the signature (``xades:SignatureTimeStamp``).

Writing follows X-Road's entry order with ``mimetype`` first (deflated, as Java writes it); reading is
order-tolerant. :func:`verify_container` checks a container the way X-Road's ``asicverifier`` does:
time-stamp first, then the signature and hash chains against the message and attachments, then the signer,
its certificate chain and OCSP response at the time-stamp's ``genTime``.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.asic import verify_container
    >>> from xroad_mn.confclient.installed import load_trust_material
    >>> trust = load_trust_material(Path("/etc/xroad/globalconf"))  # doctest: +SKIP
    >>> result = verify_container(Path("req.asice").read_bytes(), trust=trust)  # doctest: +SKIP
    >>> str(result.signer), result.timestamp_time.isoformat()  # doctest: +SKIP
    ('MEMBER:DEV/COM/4321', '2024-12-05T13:16:35+00:00')
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal
from urllib.parse import unquote

from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.hashchain import (
    HashChains,
    MessagePart,
    build_hash_chains,
    verify_hash_chain,
)
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import (
    SIG_HASH_CHAIN_RESULT,
    ParsedSignature,
    SignatureData,
    parse_signature,
    verify_integrity,
    verify_signer,
)
from xroad_mn.timestamp import TimestampInfo, verify_timestamp_token
from xroad_mn.validation import CertificateValidator, validator_for
from xroad_mn.xades import DIGEST_SHA512, DS_NS, b64decode, b64encode, digest, parse_xml
from xroad_mn.zipbounds import central_directory_entries

__all__ = [
    "ASIC_MANIFEST_NS",
    "MAX_TOTAL_UNCOMPRESSED_BYTES",
    "MIMETYPE",
    "AsicContainer",
    "BatchTimestamp",
    "ContainerVerification",
    "build_timestamp_hash_chains",
    "read_container",
    "signer_of_message",
    "verify_container",
    "write_container",
]

MIMETYPE: Final = "application/vnd.etsi.asic-e+zip"
ASIC_MANIFEST_NS: Final = "http://uri.etsi.org/2918/v1.2.1#"
"""The namespace of ``META-INF/ASiCManifest.xml`` exactly as X-Road writes it (``2918``, no ``0``)."""
MANIFEST_NS: Final = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"

ENTRY_MIMETYPE: Final = "mimetype"
ENTRY_MESSAGE: Final = "message.xml"
ENTRY_SIGNATURE: Final = "META-INF/signatures.xml"
ENTRY_SIG_HASH_CHAIN_RESULT: Final = "sig-hashchainresult.xml"
ENTRY_SIG_HASH_CHAIN: Final = "sig-hashchain.xml"
ENTRY_TS_HASH_CHAIN_RESULT: Final = "ts-hashchainresult.xml"
ENTRY_TS_HASH_CHAIN: Final = "ts-hashchain.xml"
ENTRY_MANIFEST: Final = "META-INF/manifest.xml"
ENTRY_ASIC_MANIFEST: Final = "META-INF/ASiCManifest.xml"
ENTRY_TIMESTAMP: Final = "META-INF/timestamp.tst"
TS_HASH_CHAIN_URI: Final = "/ts-hashchain.xml"
TS_DATA_REF: Final = "/META-INF/signatures.xml"

MAX_CONTAINER_BYTES: Final = 256 * 1024 * 1024
"""Largest container read (the message log refuses bodies above 10 MiB by default)."""
MAX_ENTRY_BYTES: Final = 128 * 1024 * 1024
"""Largest single entry, uncompressed."""
MAX_ENTRIES: Final = 10_000
"""Most entries a container may have."""
MAX_TOTAL_UNCOMPRESSED_BYTES: Final = 256 * 1024 * 1024
"""Most bytes the entries read from one container may expand to, together."""
_NEEDED_ENTRIES: Final = frozenset(
    {
        ENTRY_MIMETYPE,
        ENTRY_MESSAGE,
        ENTRY_SIG_HASH_CHAIN_RESULT,
        ENTRY_SIG_HASH_CHAIN,
        ENTRY_TS_HASH_CHAIN_RESULT,
        ENTRY_TS_HASH_CHAIN,
        ENTRY_MANIFEST,
        ENTRY_ASIC_MANIFEST,
        ENTRY_TIMESTAMP,
    }
)

_SIGNATURE_ENTRY: Final = re.compile(r"^META-INF/[^/]*signatures[^/]*\.xml$")
_ATTACHMENT_ENTRY: Final = re.compile(r"^attachment([1-9][0-9]*)$")
_SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"

TimestampKind = Literal["single", "batch"]


@dataclass(frozen=True, slots=True)
class BatchTimestamp:
    """A batch time-stamp: the token over ``ts-hashchainresult.xml`` and this signature's hash chain."""

    token: bytes
    hash_chain_result: bytes
    hash_chain: bytes


@dataclass(frozen=True, slots=True)
class AsicContainer:
    """The contents of one ASiC-E container."""

    message: bytes
    signature: SignatureData
    attachments: tuple[bytes, ...] = ()
    timestamp: BatchTimestamp | None = None
    message_media_type: str = "text/xml"

    def message_parts(self) -> list[MessagePart]:
        """The signed parts: ``/message.xml`` then ``/attachment1`` … in order."""
        parts = [MessagePart("/message.xml", self.message)]
        parts.extend(MessagePart(f"/attachment{i}", data) for i, data in enumerate(self.attachments, start=1))
        return parts


@dataclass(frozen=True, slots=True)
class ContainerVerification:
    """What :func:`verify_container` established."""

    signer: MemberId
    signing_time: datetime | None
    timestamp_time: datetime | None
    timestamp_kind: TimestampKind | None
    verification_time: datetime
    batch_signature: bool
    verified_parts: tuple[str, ...]
    unverified_parts: tuple[str, ...]
    """Hash-chain references whose data the container does not hold (an attachment that was not logged)."""


# --------------------------------------------------------------------------------------------------
# Writing


def build_timestamp_hash_chains(
    signature_xmls: Sequence[bytes], *, hash_algorithm: str = "sha512"
) -> HashChains:
    """The hash tree a batch time-stamp covers: one leaf per signature (``/META-INF/signatures.xml``).

    Time-stamp ``result_xml`` (the exact bytes of ``ts-hashchainresult.xml``); give each container its
    ``chains[i]`` as ``ts-hashchain.xml``. A single signature is time-stamped directly instead.
    """
    return build_hash_chains(
        [[MessagePart(TS_DATA_REF, xml)] for xml in signature_xmls],
        hash_algorithm=hash_algorithm,
        chain_uri=TS_HASH_CHAIN_URI,
    )


def _manifest(entries: Sequence[tuple[str, str]]) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<manifest:manifest xmlns:manifest="{MANIFEST_NS}" manifest:version="1.2">',
        f'    <manifest:file-entry manifest:media-type="{MIMETYPE}" manifest:full-path="/"/>',
    ]
    lines.extend(
        f'    <manifest:file-entry manifest:media-type="{media}" manifest:full-path="{path}"/>'
        for path, media in entries
    )
    lines.append("</manifest:manifest>")
    return ("\n".join(lines) + "\n").encode()


def _asic_manifest(ts_hash_chain_result: bytes) -> bytes:
    value = b64encode(digest(DIGEST_SHA512, ts_hash_chain_result))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<asic:ASiCManifest xmlns:asic="{ASIC_MANIFEST_NS}" xmlns:ds="{DS_NS}">\n'
        f'<asic:SigReference URI="{ENTRY_TIMESTAMP}" MimeType="vnd.etsi.timestamp-token"/>\n'
        f'<asic:DataObjectReference URI="{ENTRY_TS_HASH_CHAIN_RESULT}" MimeType="text/xml">\n'
        f'<ds:DigestMethod Algorithm="{DIGEST_SHA512}" />\n'
        f"<ds:DigestValue>{value}</ds:DigestValue>\n"
        "</asic:DataObjectReference>\n"
        "</asic:ASiCManifest>"
    ).encode()


def write_container(container: AsicContainer, *, created: datetime | None = None) -> bytes:
    """Serialise ``container`` as X-Road lays it out: ``mimetype`` first, then X-Road's entry order."""
    when = (created or datetime.now(UTC)).astimezone(UTC)
    stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)
    entries: list[tuple[str, bytes]] = [
        (ENTRY_MIMETYPE, MIMETYPE.encode()),
        (ENTRY_MESSAGE, container.message),
        (ENTRY_SIGNATURE, container.signature.signature_xml),
    ]
    listed: list[tuple[str, str]] = [(ENTRY_MESSAGE, container.message_media_type)]
    sig = container.signature
    if sig.hash_chain_result is not None and sig.hash_chain is not None:
        entries += [
            (ENTRY_SIG_HASH_CHAIN_RESULT, sig.hash_chain_result),
            (ENTRY_SIG_HASH_CHAIN, sig.hash_chain),
        ]
        listed += [(ENTRY_SIG_HASH_CHAIN_RESULT, "text/xml"), (ENTRY_SIG_HASH_CHAIN, "text/xml")]
    ts = container.timestamp
    if ts is not None:
        entries += [(ENTRY_TS_HASH_CHAIN_RESULT, ts.hash_chain_result), (ENTRY_TS_HASH_CHAIN, ts.hash_chain)]
        listed += [(ENTRY_TS_HASH_CHAIN_RESULT, "text/xml"), (ENTRY_TS_HASH_CHAIN, "text/xml")]
    listed += [
        (f"attachment{i}", "application/octet-stream") for i in range(1, len(container.attachments) + 1)
    ]
    entries.append((ENTRY_MANIFEST, _manifest(listed)))
    if ts is not None:
        entries += [(ENTRY_ASIC_MANIFEST, _asic_manifest(ts.hash_chain_result)), (ENTRY_TIMESTAMP, ts.token)]
    entries += [(f"attachment{i}", data) for i, data in enumerate(container.attachments, start=1)]

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()


# --------------------------------------------------------------------------------------------------
# Reading


_READ_ERRORS: Final = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    ValueError,
    OSError,
)
"""What :mod:`zipfile` raises on a corrupt archive (``zlib.error`` from a bad deflate stream, ``EOFError``
from a truncated one, ``NotImplementedError`` for an unknown version or compression method)."""


def _needed(name: str) -> bool:
    """Is ``name`` an entry verification reads? Nothing else is ever decompressed."""
    return (
        name in _NEEDED_ENTRIES
        or _SIGNATURE_ENTRY.match(name) is not None
        or _ATTACHMENT_ENTRY.match(name) is not None
    )


def _read_entries(data: bytes) -> dict[str, bytes]:
    """The entries X-Road's verifier reads (see :func:`_needed`), decompressed within the size limits."""
    if len(data) > MAX_CONTAINER_BYTES:
        raise XRoadError(FaultCode.ASIC_INVALID_MIME_TYPE, f"container exceeds {MAX_CONTAINER_BYTES} bytes")
    declared = central_directory_entries(data)  # before zipfile builds an object per entry
    if declared is not None and declared > MAX_ENTRIES:
        raise XRoadError(FaultCode.ASIC_INVALID_MIME_TYPE, f"container has more than {MAX_ENTRIES} entries")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _READ_ERRORS as e:
        raise XRoadError(
            FaultCode.ASIC_MIME_TYPE_NOT_FOUND, "not an ASiC container (not a ZIP archive)"
        ) from e
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise XRoadError(
                FaultCode.ASIC_INVALID_MIME_TYPE, f"container has more than {MAX_ENTRIES} entries"
            )
        names: set[str] = set()
        wanted: list[zipfile.ZipInfo] = []
        for info in infos:
            if info.filename in names:
                raise XRoadError(FaultCode.ASIC_INVALID_MIME_TYPE, f"duplicate entry {info.filename}")
            names.add(info.filename)
            if info.filename.endswith("/") or not _needed(info.filename):  # is_dir() fails on ""
                continue
            if info.file_size > MAX_ENTRY_BYTES:
                raise XRoadError(FaultCode.ASIC_INVALID_MIME_TYPE, f"entry {info.filename} is too large")
            wanted.append(info)
        # The declared sizes bound what zipfile inflates (it stops at file_size and checks the CRC), so the
        # total is known before anything is decompressed.
        total = sum(info.file_size for info in wanted)
        if total > MAX_TOTAL_UNCOMPRESSED_BYTES:
            raise XRoadError(
                FaultCode.ASIC_INVALID_MIME_TYPE,
                f"container entries expand to {total} bytes, more than {MAX_TOTAL_UNCOMPRESSED_BYTES}",
            )
        entries: dict[str, bytes] = {}
        for info in wanted:
            try:
                with zf.open(info) as f:
                    content = f.read(info.file_size + 1)
            except _READ_ERRORS as e:
                raise XRoadError(
                    FaultCode.ASIC_INVALID_MIME_TYPE, f"entry {info.filename} cannot be read"
                ) from e
            if len(content) != info.file_size:
                raise XRoadError(
                    FaultCode.ASIC_INVALID_MIME_TYPE, f"entry {info.filename} is not its declared size"
                )
            entries[info.filename] = content
    return entries


def read_container(data: bytes) -> AsicContainer:
    """Read a container in any entry order; the signature is found as ``META-INF/*signatures*.xml``.

    Only the entries X-Road's verifier reads are decompressed, together at most
    :data:`MAX_TOTAL_UNCOMPRESSED_BYTES`.

    Raises ``asic_mime_type_not_found``, ``asic_invalid_mime_type``, ``asic_message_not_found``,
    ``asic_signature_not_found`` and, for incomplete batch material, ``asic_hash_chain*_not_found`` /
    ``asic_timestamp_not_found`` / ``asic_manifest_not_found``.
    """
    return _container_of(_read_entries(data))


def _container_of(entries: dict[str, bytes]) -> AsicContainer:
    # 1. mimetype, 2. message, 3. signature - in the order X-Road reports them missing.
    mimetype = entries.get(ENTRY_MIMETYPE)
    if mimetype is None:
        raise XRoadError(FaultCode.ASIC_MIME_TYPE_NOT_FOUND, "container has no mimetype entry")
    if mimetype.strip() != MIMETYPE.encode():
        raise XRoadError(FaultCode.ASIC_INVALID_MIME_TYPE, f"unexpected container mimetype {mimetype[:64]!r}")
    message = entries.get(ENTRY_MESSAGE)
    if message is None:
        raise XRoadError(FaultCode.ASIC_MESSAGE_NOT_FOUND, "container has no message.xml")
    signature_names = sorted(n for n in entries if _SIGNATURE_ENTRY.match(n))
    if not signature_names:
        raise XRoadError(FaultCode.ASIC_SIGNATURE_NOT_FOUND, "container has no META-INF/*signatures*.xml")
    if len(signature_names) > 1:
        raise XRoadError(
            FaultCode.MALFORMED_SIGNATURE, f"container has several signatures: {signature_names}"
        )
    signature_xml = entries[signature_names[0]]

    numbered = sorted(
        (int(m.group(1)), name) for name in entries if (m := _ATTACHMENT_ENTRY.match(name)) is not None
    )
    # Attachments are numbered from 1 without gaps; a missing one is simply not in the container.
    attachments: list[bytes] = []
    for expected, (number, name) in enumerate(numbered, start=1):
        if number != expected:
            break
        attachments.append(entries[name])

    sig_result = entries.get(ENTRY_SIG_HASH_CHAIN_RESULT)
    sig_chain = entries.get(ENTRY_SIG_HASH_CHAIN)
    timestamp: BatchTimestamp | None = None
    token = entries.get(ENTRY_TIMESTAMP)
    if token is not None:
        ts_result = entries.get(ENTRY_TS_HASH_CHAIN_RESULT)
        ts_chain = entries.get(ENTRY_TS_HASH_CHAIN)
        if ts_result is None:
            raise XRoadError(
                FaultCode.ASIC_HASH_CHAIN_RESULT_NOT_FOUND, "batch time-stamp without ts-hashchainresult.xml"
            )
        if ts_chain is None:
            raise XRoadError(FaultCode.ASIC_HASH_CHAIN_NOT_FOUND, "batch time-stamp without ts-hashchain.xml")
        timestamp = BatchTimestamp(token, ts_result, ts_chain)
    return AsicContainer(
        message=message,
        signature=SignatureData(signature_xml, sig_result, sig_chain),
        attachments=tuple(attachments),
        timestamp=timestamp,
    )


# --------------------------------------------------------------------------------------------------
# Who signed: the client of a request, the service provider of a response


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _member_from_xml_id(el: etree._Element) -> MemberId:
    values = {_local(c): (c.text or "").strip() for c in el if isinstance(c.tag, str)}
    instance = values.get("xRoadInstance") or values.get("sdsbInstance")
    member_class = values.get("memberClass")
    member_code = values.get("memberCode")
    if not (instance and member_class and member_code):
        raise XRoadError(FaultCode.INVALID_MESSAGE, "message header does not name a member")
    return MemberId(instance, member_class, member_code)


def _soap_signer(message: bytes) -> MemberId:
    root = parse_xml(message, what="message.xml", code=FaultCode.INVALID_SOAP)
    header = root.find(f"{{{_SOAP_NS}}}Header")
    body = root.find(f"{{{_SOAP_NS}}}Body")
    if header is None or body is None:
        raise XRoadError(FaultCode.INVALID_SOAP, "message.xml is not a SOAP envelope with header and body")
    first = next((c for c in body if isinstance(c.tag, str)), None)
    is_response = first is not None and _local(first).endswith("Response")
    wanted = "service" if is_response else "client"
    el = next((c for c in header if isinstance(c.tag, str) and _local(c) == wanted), None)
    if el is None:
        raise XRoadError(FaultCode.MISSING_HEADER_FIELD, f"message header has no {wanted}")
    return _member_from_xml_id(el)


def _rest_signer(message: bytes) -> MemberId:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as e:
        raise XRoadError(FaultCode.INVALID_MESSAGE, "REST message.xml is not UTF-8") from e
    lines = text.split("\r\n")
    is_response = bool(lines) and lines[0][:1].isdigit()
    wanted = "x-road-service" if is_response else "x-road-client"
    value = None
    for line in lines[2:]:
        name, sep, rest = line.partition(":")
        if sep and name.strip().lower() == wanted:
            value = rest.strip()  # the last header wins, as in X-Road
    if not value:
        raise XRoadError(FaultCode.MISSING_HEADER, f"REST message has no {wanted} header")
    parts = [unquote(p) for p in value.split("/")]
    minimum = 5 if is_response else 3
    if len(parts) < minimum:
        raise XRoadError(FaultCode.INVALID_MESSAGE, f"{wanted} header {value!r} does not name a member")
    return MemberId(parts[0], parts[1], parts[2])


def signer_of_message(message: bytes) -> MemberId:
    """The member that must have signed ``message.xml``: a request's client, a response's service provider.

    SOAP responses are recognised by a body element named ``…Response``; REST responses by a status line.
    """
    if message.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return _soap_signer(message)
    return _rest_signer(message)


# --------------------------------------------------------------------------------------------------
# Verification


def _verify_asic_manifest(entries_manifest: bytes | None, ts_result: bytes) -> None:
    if entries_manifest is None:
        raise XRoadError(
            FaultCode.ASIC_MANIFEST_NOT_FOUND, "batch time-stamp without META-INF/ASiCManifest.xml"
        )
    root = parse_xml(entries_manifest, what="ASiCManifest.xml")
    refs = [el for el in root.iter() if isinstance(el.tag, str) and _local(el) == "DataObjectReference"]
    ref = next((r for r in refs if r.get("URI", "").lstrip("/") == ENTRY_TS_HASH_CHAIN_RESULT), None)
    if ref is None:
        raise XRoadError(
            FaultCode.MALFORMED_SIGNATURE, "ASiCManifest.xml does not reference ts-hashchainresult.xml"
        )
    method = ref.find(f"{{{DS_NS}}}DigestMethod")
    value = ref.findtext(f"{{{DS_NS}}}DigestValue")
    if method is None or value is None:
        raise XRoadError(FaultCode.MALFORMED_SIGNATURE, "ASiCManifest.xml reference has no digest")
    if digest(method.get("Algorithm", ""), ts_result) != b64decode(value, what="ASiCManifest DigestValue"):
        raise XRoadError(
            FaultCode.MALFORMED_SIGNATURE, "time-stamp hash chain result does not match ASiCManifest.xml"
        )


def _verify_batch_timestamp(
    ts: BatchTimestamp,
    signature_xml: bytes,
    asic_manifest: bytes | None,
    validator: CertificateValidator,
    at: datetime | None,
) -> TimestampInfo:
    # a. The hash chain binds this container's signature document to the time-stamped result.
    try:
        _verify_asic_manifest(asic_manifest, ts.hash_chain_result)
        checked = verify_hash_chain(
            ts.hash_chain_result,
            ts.hash_chain,
            {TS_DATA_REF: signature_xml},
            expected_chain_uri=TS_HASH_CHAIN_URI,
        )
    except XRoadError as e:
        if e.has_code(FaultCode.MALFORMED_HASH_CHAIN):
            raise XRoadError(
                FaultCode.MALFORMED_SIGNATURE, f"time-stamp hash chain is malformed: {e.message}"
            ) from e
        raise
    if TS_DATA_REF not in checked.verified:
        raise XRoadError(
            FaultCode.INVALID_HASH_CHAIN_REF, "time-stamp hash chain does not cover the signature"
        )
    # b. The token stamps the exact bytes of ts-hashchainresult.xml: one token and result are shared by every
    #    container of the batch, so a shared validator verifies them once.
    key = (
        "batch-timestamp",
        hashlib.sha256(ts.token).digest(),
        hashlib.sha256(ts.hash_chain_result).digest(),
        at,
    )
    return validator.remembered(
        key,
        lambda: verify_timestamp_token(
            ts.token, data=ts.hash_chain_result, tsa_certs=validator.trust.tsa_certificates, at=at
        ),
    )


def verify_container(
    data: bytes,
    *,
    trust: TrustMaterial | CertificateValidator,
    at: datetime | None = None,
    expected_member: MemberId | None = None,
) -> ContainerVerification:
    """Verify an ASiC-E container end to end; raise :class:`XRoadError` with X-Road's fault code if invalid.

    ``at`` pins the time at which the time-stamp is checked (default: its own ``genTime``); a container
    without any time-stamp is verified at ``at`` and is refused when ``at`` is not given.
    ``expected_member`` overrides the signer derived from ``message.xml``. ``trust`` may be a
    :class:`~xroad_mn.validation.CertificateValidator` shared across containers: it validates each signer
    (chain and OCSP) once for all the containers it signed under one time-stamp.
    """
    validator = validator_for(trust)
    # 0. Container structure: mimetype, message, signature (and complete batch material).
    entries = _read_entries(data)  # the archive is read once
    container = _container_of(entries)
    entries_manifest = entries.get(ENTRY_ASIC_MANIFEST) if container.timestamp else None
    signature = container.signature
    parsed: ParsedSignature = parse_signature(signature.signature_xml)

    # 1. Time-stamp first: batch (hash chain, then token over ts-hashchainresult.xml) or single (token over
    #    the decoded SignatureValue). Its genTime becomes the verification time of everything after.
    ts_info: TimestampInfo | None = None
    kind: TimestampKind | None = None
    if container.timestamp is not None:
        ts_info = _verify_batch_timestamp(
            container.timestamp, signature.signature_xml, entries_manifest, validator, at
        )
        kind = "batch"
    elif parsed.timestamp_token is not None:
        ts_info = verify_timestamp_token(
            parsed.timestamp_token,
            data=parsed.signature_value,
            tsa_certs=validator.trust.tsa_certificates,
            at=at,
        )
        kind = "single"
    if ts_info is not None:
        when = ts_info.gen_time
    elif at is not None:
        when = at
    else:
        raise XRoadError(
            FaultCode.ASIC_TIMESTAMP_NOT_FOUND,
            "container has no time-stamp; give a verification time to check it",
        )

    # 2. Signature and hash chains against message.xml and the attachments.
    batch = parsed.is_batch
    if batch and signature.hash_chain_result is None:
        raise XRoadError(
            FaultCode.ASIC_HASH_CHAIN_RESULT_NOT_FOUND,
            f"batch signature without {ENTRY_SIG_HASH_CHAIN_RESULT}",
        )
    if batch and signature.hash_chain is None:
        raise XRoadError(
            FaultCode.ASIC_HASH_CHAIN_NOT_FOUND, f"batch signature without {ENTRY_SIG_HASH_CHAIN}"
        )
    parts = container.message_parts()
    integrity = verify_integrity(
        signature.signature_xml,
        parts,
        hash_chain_result=signature.hash_chain_result if batch else None,
        hash_chain=signature.hash_chain if batch else None,
    )
    # 3. Signer binding (a request's client, a response's provider), chain and OCSP at the genTime.
    signer = expected_member or signer_of_message(container.message)
    verified = verify_signer(integrity, trust=validator, expected_member=signer, at=when)
    verified_parts = tuple(p.name for p in parts)
    if not batch:
        verified_parts = tuple(r.uri for r in parsed.data_references if r.uri != SIG_HASH_CHAIN_RESULT)
    return ContainerVerification(
        signer=verified.signer,
        signing_time=verified.signing_time,
        timestamp_time=ts_info.gen_time if ts_info else None,
        timestamp_kind=kind,
        verification_time=when,
        batch_signature=batch,
        verified_parts=verified_parts,
        unverified_parts=verified.unverified_parts,
    )
