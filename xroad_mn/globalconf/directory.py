"""Signed configuration directories (PR-GCONF): parse, verify and build.

A directory is what ``GET /internalconf`` returns: an outer ``multipart/related`` whose first part is a
``multipart/mixed`` listing the configuration files (content identifier, location, hash) after a header-only
entry (``Expire-date``, ``Version``), and whose second part is the signature over the exact bytes of the
first part's body.

Example::

    >>> from datetime import datetime, UTC
    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.anchor import parse_anchor
    >>> from xroad_mn.globalconf.directory import (
    ...     parse_signed_directory, verify_part_content, verify_signed_directory,
    ... )
    >>> anchor = parse_anchor(Path("configuration-anchor.xml").read_bytes())  # doctest: +SKIP
    >>> directory = parse_signed_directory(Path("internalconf").read_bytes())  # doctest: +SKIP
    >>> verify_signed_directory(directory, anchor.verification_certs, at=datetime.now(UTC))  # doctest: +SKIP
    >>> for part in directory.parts:  # doctest: +SKIP
    ...     verify_part_content(part, Path("public", part.content_location.lstrip("/")).read_bytes())

Verification follows the configuration client's order:

1. find the verification certificate by ``Verification-certificate-hash`` among the trusted ones (the
   anchor's, plus after a key rotation the ``source`` certificates of the installed shared-params);
2. check the signature (RSA PKCS#1 v1.5 or ECDSA with DER signatures, :data:`SIGNATURE_ALGORITHMS`) over
   the signed byte range;
3. check ``Expire-date`` against the verification time;
4. check each downloaded file against its hash (:func:`verify_part_content`).

Building (:func:`build_signed_directory`) writes exactly the central server's layout with CRLF line ends.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from xroad_mn import algorithms
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf._xml import b64_text, decode_b64
from xroad_mn.keys import KeyOrSigner, key_type
from xroad_mn.mime import MimePart, boundary_of, parse_headers, split_header_params, split_multipart

__all__ = [
    "CONTENT_IDENTIFIERS",
    "DEFAULT_VERSION",
    "HASH_ALGORITHMS",
    "MAX_DIRECTORY_BYTES",
    "MAX_PARTS",
    "SIGNATURE_ALGORITHMS",
    "DirectoryPart",
    "PartSpec",
    "SignedDirectory",
    "build_signed_directory",
    "find_verification_certificate",
    "parse_signed_directory",
    "verify_part_content",
    "verify_signed_directory",
]

MAX_DIRECTORY_BYTES: Final = 1024 * 1024
"""Largest signed directory accepted (real ones are about 2 KiB)."""
MAX_PARTS: Final = 256
"""Most parts in one multipart level."""
MAX_HEADER_LINES: Final = 64
"""Most header lines in one MIME part."""
DEFAULT_VERSION: Final = 2
"""Version assumed when a directory has no ``Version`` header."""

CONTENT_IDENTIFIERS: Final = (
    "PRIVATE-PARAMETERS",
    "SHARED-PARAMETERS",
    "MONITORING",
    "NEXTUPDATE",
    "FETCHINTERVAL",
)
"""Content identifiers X-Road defines; installations may add others."""

HASH_ALGORITHMS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
        "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
        "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
    }
)
"""Hash algorithm URIs and their ``hashlib`` names."""
_HASH_URIS: Final = {v: k for k, v in HASH_ALGORITHMS.items()}

SIGNATURE_ALGORITHMS: Final[Mapping[str, algorithms.SignatureScheme]] = MappingProxyType(
    {
        uri: algorithms.SCHEMES[uri].with_der_ecdsa()
        for uri in (
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
        )
    }
)
"""Signature algorithm URIs (``Signature-Algorithm-Id``) and their schemes. ECDSA values are DER, not the
raw ``r‖s`` XML-DSig defines for these URIs: the central server signs with Java's ``SHA512withECDSA``."""
_SIGNING_HASHES: Final = ("sha1", "sha256", "sha384", "sha512")
_MALFORMED: Final = FaultCode.MALFORMED_GLOBALCONF
_LINE_END: Final = re.compile(rb"\r?\n")
_BOUNDARY_CHARS: Final = string.ascii_letters + string.digits
_BOUNDARY_OK: Final = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")


@dataclass(frozen=True)
class DirectoryPart:
    """One configuration file listed in the directory."""

    content_identifier: str
    instance: str
    content_location: str
    hash_algorithm: str
    """The ``Hash-algorithm-id`` URI."""
    hash: bytes
    headers: Mapping[str, str]
    """All headers of the entry, names in lower case."""

    @property
    def file_name(self) -> str:
        """The last path segment of ``content_location`` (``shared-params.xml``)."""
        return self.content_location.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SignedDirectory:
    """A parsed signed configuration directory. ``raw[signed_range[0]:signed_range[1]] == signed_data``."""

    raw: bytes
    signed_range: tuple[int, int]
    expire_date: datetime
    version: int
    parts: tuple[DirectoryPart, ...]
    signature: bytes
    signature_algorithm: str
    """The ``Signature-Algorithm-Id`` URI."""
    verification_cert_hash: bytes | None
    verification_cert_hash_algorithm: str
    """URI of the hash in ``Verification-certificate-hash`` (SHA-512 unless the header says otherwise)."""

    @property
    def signed_data(self) -> bytes:
        """The exact bytes the signature covers."""
        return self.raw[self.signed_range[0] : self.signed_range[1]]

    def parts_for(self, content_identifier: str, instance: str | None = None) -> tuple[DirectoryPart, ...]:
        """The parts with this content identifier (and instance, when given)."""
        return tuple(
            p
            for p in self.parts
            if p.content_identifier == content_identifier and (instance is None or p.instance == instance)
        )


# --------------------------------------------------------------------------------------------------------
# MIME plumbing (bytes in, offsets out: never re-serialise what is signed)


def _boundary(content_type: str | None, expected: str, what: str) -> str:
    if content_type is None:
        raise XRoadError(_MALFORMED, f"{what} has no Content-Type")
    media_type, params = split_header_params(content_type)
    if media_type.lower() != expected:
        raise XRoadError(_MALFORMED, f"{what} is {media_type[:60]!r}, expected {expected}")
    return boundary_of(params, code=_MALFORMED, what=what)


def _split_multipart(data: bytes, start: int, end: int, boundary: str, what: str) -> list[MimePart]:
    """A missing close delimiter is tolerated (the last part runs to the end), as X-Road's configuration
    client does: its own test directories (``test-conf-simple.txt``) omit both."""
    return split_multipart(
        data,
        boundary,
        code=_MALFORMED,
        what=what,
        start=start,
        end=end,
        max_parts=MAX_PARTS,
        max_header_lines=MAX_HEADER_LINES,
        close_optional=True,
    )


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise XRoadError(_MALFORMED, f"Expire-date {text[:40]!r} is not an ISO 8601 time") from e
    if value.tzinfo is None:
        raise XRoadError(_MALFORMED, f"Expire-date {text[:40]!r} has no time zone")
    return value.astimezone(UTC)


def _content_part(part: MimePart, index: int) -> DirectoryPart:
    h = part.headers
    what = f"configuration entry {index}"
    cid_header = h.get("content-identifier")
    location = h.get("content-location")
    alg = h.get("hash-algorithm-id")
    if not cid_header or not location or not alg:
        missing = [n for n, v in (("Content-identifier", cid_header), ("Content-location", location),
                                  ("Hash-algorithm-id", alg)) if not v]  # fmt: skip
        raise XRoadError(
            _MALFORMED, f"{what} has no {', '.join(missing)} header", details={"missing": missing[0]}
        )
    assert cid_header is not None
    assert location is not None
    assert alg is not None
    content_identifier, params = split_header_params(cid_header)
    instance = params.get("instance", "")
    if not content_identifier or not instance:
        raise XRoadError(_MALFORMED, f"{what} has no content identifier with an instance parameter")
    if alg not in HASH_ALGORITHMS:
        raise XRoadError(_MALFORMED, f"{what} has an unknown Hash-algorithm-id {alg[:80]!r}")
    try:
        body = part.body.decode("ascii")
    except UnicodeDecodeError as e:
        raise XRoadError(_MALFORMED, f"{what} hash is not base64") from e
    digest = decode_b64(body, _MALFORMED, f"{what} hash")
    if len(digest) != hashlib.new(HASH_ALGORITHMS[alg]).digest_size:
        raise XRoadError(_MALFORMED, f"{what} hash has the wrong length for {alg}")
    return DirectoryPart(content_identifier, instance, location, alg, digest, h)


def parse_signed_directory(data: bytes, content_type: str | None = None) -> SignedDirectory:
    """Parse a signed directory; a structural problem is ``malformed_global_conf``.

    ``data`` is the document as the central server stores and serves it, starting with its
    ``Content-Type`` header line. If ``content_type`` is given (the HTTP header), ``data`` is the bare body.
    LF or CRLF line ends, header names in any case, and quoted parameters (``'`` or ``"``) are accepted.
    """
    if len(data) > MAX_DIRECTORY_BYTES:
        raise XRoadError(_MALFORMED, f"signed directory is larger than {MAX_DIRECTORY_BYTES} bytes")
    if content_type is None:
        top, body_start = parse_headers(
            data, 0, len(data), code=_MALFORMED, what="signed directory", max_lines=MAX_HEADER_LINES
        )
        content_type = top.get("content-type")
    else:
        body_start = 0
    outer = _split_multipart(
        data,
        body_start,
        len(data),
        _boundary(content_type, "multipart/related", "signed directory"),
        "envelope",
    )
    if len(outer) < 2:
        raise XRoadError(_MALFORMED, "signed directory has no signature part")
    signed, sig_part = outer[0], outer[1]

    # 1. The signed part: multipart/mixed, a header-only entry first.
    inner_boundary = _boundary(signed.headers.get("content-type"), "multipart/mixed", "signed part")
    inner = _split_multipart(data, signed.body_start, signed.body_end, inner_boundary, "signed part")
    head = inner[0].headers
    expire_text = head.get("expire-date")
    if expire_text is None:
        raise XRoadError(
            _MALFORMED, "signed directory has no Expire-date header", details={"missing": "Expire-date"}
        )
    expire_date = _parse_time(expire_text)
    version_text = head.get("version")
    if version_text is None:
        version = DEFAULT_VERSION
    elif version_text.isdigit() and len(version_text) <= 3:
        version = int(version_text)
    else:
        raise XRoadError(_MALFORMED, f"Version {version_text[:20]!r} is not a number")
    parts = tuple(_content_part(p, i) for i, p in enumerate(inner[1:], start=1))

    # 2. The signature part.
    sh = sig_part.headers
    sig_alg = sh.get("signature-algorithm-id")
    if not sig_alg:
        raise XRoadError(_MALFORMED, "signature part has no Signature-Algorithm-Id")
    cert_hash: bytes | None = None
    cert_hash_alg = _HASH_URIS["sha512"]
    vch = sh.get("verification-certificate-hash")
    if vch:
        value, params = split_header_params(vch)
        cert_hash = decode_b64(value, _MALFORMED, "Verification-certificate-hash")
        cert_hash_alg = params.get("hash-algorithm-id", cert_hash_alg)
    try:
        sig_text = sig_part.body.decode("ascii")
    except UnicodeDecodeError as e:
        raise XRoadError(_MALFORMED, "signature value is not base64") from e
    signature = decode_b64(sig_text, _MALFORMED, "signature value")
    return SignedDirectory(
        raw=data,
        signed_range=(signed.body_start, signed.body_end),
        expire_date=expire_date,
        version=version,
        parts=parts,
        signature=signature,
        signature_algorithm=sig_alg,
        verification_cert_hash=cert_hash,
        verification_cert_hash_algorithm=cert_hash_alg,
    )


# --------------------------------------------------------------------------------------------------------
# Verification


def find_verification_certificate(
    directory: SignedDirectory, trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    """The trusted certificate named by ``Verification-certificate-hash``, or ``global_conf_invalid``."""
    if directory.verification_cert_hash is None:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            "signed directory names no verification certificate (Verification-certificate-hash)",
            details={"reason": "missing_verification_cert"},
        )
    alg = HASH_ALGORITHMS.get(directory.verification_cert_hash_algorithm)
    if alg is None:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            "unknown verification certificate hash algorithm "
            f"{directory.verification_cert_hash_algorithm[:80]!r}",
        )
    for cert in trusted:
        if hashlib.new(alg, cert.public_bytes(Encoding.DER)).digest() == directory.verification_cert_hash:
            return cert
    raise XRoadError(
        FaultCode.GLOBAL_CONF_INVALID,
        "the directory's verification certificate is not among the trusted ones",
        details={
            "reason": "missing_verification_cert",
            "verification_cert_hash": b64_text(directory.verification_cert_hash),
        },
    )


def _verify_signature(cert: x509.Certificate, directory: SignedDirectory) -> None:
    scheme = SIGNATURE_ALGORITHMS.get(directory.signature_algorithm)
    if scheme is None:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            f"unsupported Signature-Algorithm-Id {directory.signature_algorithm[:80]!r}",
        )
    algorithms.verify(
        cert,
        scheme,
        directory.signature,
        directory.signed_data,
        code=FaultCode.INVALID_SIGNATURE_VALUE,
        key_mismatch_code=FaultCode.GLOBAL_CONF_INVALID,
        what="signature of the configuration directory",
    )


def verify_signed_directory(
    directory: SignedDirectory,
    trusted_certs: Sequence[x509.Certificate],
    *,
    at: datetime,
) -> x509.Certificate:
    """Verify a directory's signature and freshness; returns the certificate that verified it.

    ``trusted_certs``: the anchor's verification certificates, plus — after a signing-key rotation — the
    ``source`` verification certificates of the previously installed shared-params (the right kind:
    internal for ``internalconf``, external for ``externalconf``). Raises ``global_conf_invalid`` (no
    matching certificate, unusable algorithm), ``invalid_signature_value`` or ``global_conf_outdated``.
    """
    if at.tzinfo is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "verification time must be timezone-aware")
    # 1. Certificate by Verification-certificate-hash.
    cert = find_verification_certificate(directory, trusted_certs)
    # 2. Signature over the exact signed byte range.
    if not directory.signature:
        raise XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, "signed directory has an empty signature value")
    _verify_signature(cert, directory)
    # 3. Expiry.
    if at > directory.expire_date:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_OUTDATED,
            f"global configuration expired at {directory.expire_date.isoformat()}",
            details={"expire_date": directory.expire_date.isoformat(), "at": at.isoformat()},
        )
    return cert


def verify_part_content(part: DirectoryPart, content: bytes) -> None:
    """Check a downloaded configuration file against the directory's hash, or ``global_conf_invalid``."""
    actual = hashlib.new(HASH_ALGORITHMS[part.hash_algorithm], content).digest()
    if actual != part.hash:
        raise XRoadError(
            FaultCode.GLOBAL_CONF_INVALID,
            f"{part.content_location} does not match its hash in the directory",
            details={
                "content_location": part.content_location,
                "content_identifier": part.content_identifier,
            },
        )


# --------------------------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class PartSpec:
    """A configuration file to list in a directory we build."""

    content_identifier: str
    instance: str
    content_location: str
    content: bytes


def _new_boundary() -> str:
    return "".join(secrets.choice(_BOUNDARY_CHARS) for _ in range(20))


def _signature_alg_uri(key: KeyOrSigner, hash_name: str) -> str:
    family = algorithms.Family.RSA if key_type(key) == "rsa" else algorithms.Family.ECDSA
    for uri, scheme in SIGNATURE_ALGORITHMS.items():
        if (scheme.family, scheme.hash) == (family, hash_name):
            return uri
    raise XRoadError(
        FaultCode.CANNOT_CREATE_SIGNATURE, f"no signature algorithm for {family} with {hash_name}"
    )


def _format_expire(value: datetime) -> str:
    if value.tzinfo is None:
        raise XRoadError(FaultCode.INTERNAL_ERROR, "expire date must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_signed_directory(
    parts: Sequence[PartSpec | tuple[str, str, str, bytes]],
    expire_date: datetime,
    version: int,
    signing_key: KeyOrSigner,
    signing_cert: x509.Certificate,
    *,
    hash_algorithm: str = "sha512",
    boundaries: tuple[str, str] | None = None,
) -> bytes:
    """Build and sign a directory exactly as the X-Road central server lays it out (CRLF line ends).

    ``parts`` are ``(content_identifier, instance, content_location, file_bytes)``. The signature is
    RSA PKCS#1 v1.5 or ECDSA (DER) with ``hash_algorithm`` (SHA-512 by default, like X-Road's
    ``confSignDigestAlgoId``); the certificate is named by the SHA-512 hash of its DER. ``signing_key`` is a
    private key or a :class:`~xroad_mn.algorithms.Signer` (a token's key).
    """
    if hash_algorithm not in _SIGNING_HASHES or hash_algorithm not in _HASH_URIS:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"unsupported hash algorithm {hash_algorithm!r}")
    outer_b, inner_b = boundaries if boundaries is not None else (_new_boundary(), _new_boundary())
    for b in (outer_b, inner_b):
        boundary_of({"boundary": b}, code=FaultCode.INTERNAL_ERROR, what=f"MIME boundary {b!r}")
    specs = [p if isinstance(p, PartSpec) else PartSpec(*p) for p in parts]
    crlf = "\r\n"
    inner: list[str] = [
        f"--{inner_b}",
        f"Expire-date: {_format_expire(expire_date)}",
        f"Version: {version}",
        "",
    ]
    for spec in specs:
        for text in (spec.content_identifier, spec.instance, spec.content_location):
            if not text or any(c in text for c in "\r\n;'\"") or not text.isascii():
                raise XRoadError(FaultCode.INTERNAL_ERROR, f"unusable directory entry value {text[:60]!r}")
        digest = hashlib.new(hash_algorithm, spec.content).digest()
        inner += [
            f"--{inner_b}",
            "Content-type: application/octet-stream",
            "Content-transfer-encoding: base64",
            f"Content-identifier: {spec.content_identifier}; instance='{spec.instance}'",
            f"Content-location: {spec.content_location}",
            f"Hash-algorithm-id: {_HASH_URIS[hash_algorithm]}",
            "",
            b64_text(digest),
        ]
    inner.append(f"--{inner_b}--")
    signed = (crlf.join(inner) + crlf).encode("ascii")

    algorithm_uri = _signature_alg_uri(signing_key, hash_algorithm)
    signature = algorithms.sign(signing_key, SIGNATURE_ALGORITHMS[algorithm_uri], signed)
    cert_hash = hashlib.sha512(signing_cert.public_bytes(Encoding.DER)).digest()

    head = (
        f"Content-Type: multipart/related; charset=UTF-8; boundary={outer_b}{crlf}{crlf}"
        f"--{outer_b}{crlf}"
        f"Content-Type: multipart/mixed; charset=UTF-8; boundary={inner_b}{crlf}{crlf}"
    ).encode("ascii")
    tail = crlf.join(
        [
            "",
            f"--{outer_b}",
            "Content-Type: application/octet-stream",
            "Content-Transfer-Encoding: base64",
            f"Signature-Algorithm-Id: {algorithm_uri}",
            f"Verification-certificate-hash: {b64_text(cert_hash)}; "
            f'hash-algorithm-id="{_HASH_URIS["sha512"]}"',
            "",
            base64.b64encode(signature).decode("ascii"),
            f"--{outer_b}--",
            "",
        ]
    ).encode("ascii")
    # signed ends with CRLF; the blank line before the outer delimiter is the delimiter's own CRLF.
    return head + signed + tail
