"""X-Road message signatures: XAdES in X-Road's profile (PR-SIGDOC), signing, batch signing and verification.

Signing produces the native dialect exactly: root ``asic:XAdESSignatures`` with the four namespace
declarations X-Road emits, inclusive C14N 1.0, ``rsa-sha512`` or ``ecdsa-sha512`` (raw ``r‖s``), SHA-512
digests, ids ``signature``, ``signature-reference-N``, ``signed-properties``, ``signature-value``, the
signing certificate's digest and issuer/serial, X-Road's signature policy, a ``DataObjectFormat``, the
intermediate CA certificates (when there are any) and the OCSP responses of the signing certificate.

Verification reads both dialects found in real X-Road output (native and EU-DSS style) and fails closed
with X-Road's fault codes.

Example::

    >>> from xroad_mn.hashchain import MessagePart
    >>> from xroad_mn.signature import SigningKey, sign, verify_signature
    >>> key = SigningKey(private_key, certificate, ocsp_responses=(ocsp_der,))  # doctest: +SKIP
    >>> data = sign([MessagePart("/message.xml", soap_bytes)], key)  # doctest: +SKIP
    >>> verified = verify_signature(  # doctest: +SKIP
    ...     data.signature_xml, [MessagePart("/message.xml", soap_bytes)],
    ...     trust=trust, expected_member=client.member, at=now)
    >>> verified.signer  # doctest: +SKIP
    MemberId(instance='MN', member_class='GOV', member_code='5012345')

Many messages share one signature with :func:`sign_batch`: one signature over a hash-chain result
(``/sig-hashchainresult.xml``), and one hash chain per message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from lxml import etree

from xroad_mn import algorithms
from xroad_mn.certs import load_der_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, TrustMaterial
from xroad_mn.hashchain import InputDigest, MessagePart, build_hash_chains, verify_hash_chain
from xroad_mn.identifiers import MemberId
from xroad_mn.validation import CertificateValidator, validator_for
from xroad_mn.xades import (
    ASIC_NS,
    ASIC_NS_OLD,
    C14N_INCLUSIVE,
    DIGEST_SHA512,
    DS_NS,
    XADES_NS,
    XSI_NS,
    PrivateKey,
    b64decode,
    b64encode,
    canonicalize,
    digest,
    parse_xml,
    signature_method_for,
    signature_scheme,
)

__all__ = [
    "MESSAGE_PART",
    "MIME_HASH_CHAIN_RESULT",
    "SIG_HASH_CHAIN",
    "SIG_HASH_CHAIN_RESULT",
    "IntegrityResult",
    "ParsedSignature",
    "SignatureData",
    "SigningKey",
    "VerifiedSignature",
    "embed_timestamp",
    "parse_signature",
    "sign",
    "sign_batch",
    "timestamp_input",
    "verify_integrity",
    "verify_signature",
    "verify_signer",
]

MESSAGE_PART: Final = "/message.xml"
SIG_HASH_CHAIN_RESULT: Final = "/sig-hashchainresult.xml"
SIG_HASH_CHAIN: Final = "/sig-hashchain.xml"
MIME_TEXT_XML: Final = "text/xml"
MIME_HASH_CHAIN_RESULT: Final = "application/hash-chain-result"
SIGNED_PROPERTIES_TYPE: Final = "http://uri.etsi.org/01903#SignedProperties"
MANIFEST_TYPE: Final = "http://www.w3.org/2000/09/xmldsig#Manifest"

SIG_POLICY_ID: Final = "urn:oid:1.3.6.1.4.1.3516.16.2"
SIG_POLICY_DESCRIPTION: Final = "Profile for High Performance Digital Signatures (version 1.2)"
SIG_POLICY_HASH: Final = (
    "BuO0EDNfkxSVlUbxCzmQPzX1AUF1/xx9ytWHk3/6SAOePxQiniEfDYk+90QeYb3lWpV3Izhuz9fKaYyE+lTcXw=="
)
SIG_POLICY_URI: Final = "https://repo.cyber.ee/dsig-profile-1.2.pdf"

MAX_SIGNATURE_BYTES: Final = 4 * 1024 * 1024
"""Largest signature document accepted (a real one is about 10 KiB)."""
MAX_REFERENCES: Final = 1000
"""Most ``ds:Reference`` elements a signature may carry."""
MAX_BATCH: Final = 100_000
"""Most messages one batch signature may cover."""

_ID_SIGNATURE: Final = "signature"
_ID_SIGNED_PROPERTIES: Final = "signed-properties"
_ID_SIGNATURE_VALUE: Final = "signature-value"
_ASIC_NAMESPACES: Final = (ASIC_NS, ASIC_NS_OLD)

Dialect = Literal["native", "dss"]


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


def _xades(name: str) -> str:
    return f"{{{XADES_NS}}}{name}"


# --------------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True, slots=True)
class SigningKey:
    """What signing needs: the member's sign key and certificate, intermediates and fresh OCSP responses.

    ``ocsp_responses`` are DER ``OCSPResponse``s for the signing certificate (and each intermediate);
    X-Road rejects a signature without them. ``intermediates`` are the CA certificates between the signing
    certificate and the approved top CA, nearest first.
    """

    private_key: PrivateKey
    certificate: x509.Certificate
    ocsp_responses: tuple[bytes, ...]
    intermediates: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True, slots=True)
class SignatureData:
    """A signature as X-Road stores and sends it: the XAdES XML plus, for batch signatures, the hash chain."""

    signature_xml: bytes
    hash_chain_result: bytes | None = None
    hash_chain: bytes | None = None

    @property
    def is_batch(self) -> bool:
        return self.hash_chain_result is not None


@dataclass(frozen=True, slots=True)
class DataReference:
    """A ``ds:Reference`` to a part: ``/message.xml``, ``/attachmentN`` or ``/sig-hashchainresult.xml``."""

    uri: str
    digest_method: str
    digest_value: bytes


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    """The parts of a signature document the verifier needs, after the structural checks."""

    dialect: Dialect
    signing_certificate: x509.Certificate
    extra_certificates: tuple[x509.Certificate, ...]
    ocsp_responses: tuple[bytes, ...]
    signing_time: datetime | None
    signature_method: str
    signature_value: bytes
    timestamp_token: bytes | None
    data_references: tuple[DataReference, ...]

    @property
    def is_batch(self) -> bool:
        """True when the signature covers a hash-chain result rather than the message parts."""
        return any(ref.uri == SIG_HASH_CHAIN_RESULT for ref in self.data_references)


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a successful verification established."""

    signer: MemberId
    signer_certificate: x509.Certificate
    signing_time: datetime | None
    approved_ca: ApprovedCA
    dialect: Dialect
    batch: bool
    timestamp_token: bytes | None
    unverified_parts: tuple[str, ...] = ()
    """Hash-chain data references whose data was not available (e.g. an attachment not logged)."""


# --------------------------------------------------------------------------------------------------
# Signing


def _format_time(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _cert_digest_block(parent: etree._Element, cert: x509.Certificate) -> None:
    cert_digest = _sub(parent, _xades("CertDigest"))
    _sub(cert_digest, _ds("DigestMethod"), Algorithm=DIGEST_SHA512)
    der = cert.public_bytes(serialization.Encoding.DER)
    _sub(cert_digest, _ds("DigestValue"), b64encode(digest(DIGEST_SHA512, der)))
    issuer_serial = _sub(parent, _xades("IssuerSerial"))
    _sub(issuer_serial, _ds("X509IssuerName"), cert.issuer.rfc4514_string())
    _sub(issuer_serial, _ds("X509SerialNumber"), str(cert.serial_number))


def _build_document(
    key: SigningKey, *, reference_uri: str, reference_digest: bytes, mime_type: str, signing_time: datetime
) -> bytes:
    method = signature_method_for(key.private_key)
    root = etree.Element(
        f"{{{ASIC_NS}}}XAdESSignatures",
        nsmap={"asic": ASIC_NS, "ds": DS_NS, "xades": XADES_NS, "xsi": XSI_NS},
    )
    sig = _sub(root, _ds("Signature"), Id=_ID_SIGNATURE)
    signed_info = _sub(sig, _ds("SignedInfo"))
    _sub(signed_info, _ds("CanonicalizationMethod"), Algorithm=C14N_INCLUSIVE)
    _sub(signed_info, _ds("SignatureMethod"), Algorithm=method)
    ref0 = _sub(signed_info, _ds("Reference"), Id="signature-reference-0", URI=reference_uri)
    _sub(ref0, _ds("DigestMethod"), Algorithm=DIGEST_SHA512)
    _sub(ref0, _ds("DigestValue"), b64encode(reference_digest))
    ref1 = _sub(
        signed_info,
        _ds("Reference"),
        Id="signature-reference-1",
        Type=SIGNED_PROPERTIES_TYPE,
        URI=f"#{_ID_SIGNED_PROPERTIES}",
    )
    _sub(ref1, _ds("DigestMethod"), Algorithm=DIGEST_SHA512)
    sp_digest = _sub(ref1, _ds("DigestValue"))
    sig_value = _sub(sig, _ds("SignatureValue"), Id=_ID_SIGNATURE_VALUE)
    x509_data = _sub(_sub(sig, _ds("KeyInfo")), _ds("X509Data"))
    _sub(
        x509_data, _ds("X509Certificate"), b64encode(key.certificate.public_bytes(serialization.Encoding.DER))
    )

    qualifying = _sub(_sub(sig, _ds("Object")), _xades("QualifyingProperties"), Target=f"#{_ID_SIGNATURE}")
    signed_props = _sub(qualifying, _xades("SignedProperties"), Id=_ID_SIGNED_PROPERTIES)
    ssp = _sub(signed_props, _xades("SignedSignatureProperties"))
    _sub(ssp, _xades("SigningTime"), _format_time(signing_time))
    _cert_digest_block(_sub(_sub(ssp, _xades("SigningCertificate")), _xades("Cert")), key.certificate)
    policy_id = _sub(_sub(ssp, _xades("SignaturePolicyIdentifier")), _xades("SignaturePolicyId"))
    sig_policy_id = _sub(policy_id, _xades("SigPolicyId"))
    _sub(sig_policy_id, _xades("Identifier"), SIG_POLICY_ID, Qualifier="OIDAsURN")
    _sub(sig_policy_id, _xades("Description"), SIG_POLICY_DESCRIPTION)
    policy_hash = _sub(policy_id, _xades("SigPolicyHash"))
    _sub(policy_hash, _ds("DigestMethod"), Algorithm=DIGEST_SHA512)
    _sub(policy_hash, _ds("DigestValue"), SIG_POLICY_HASH)
    qualifier = _sub(_sub(policy_id, _xades("SigPolicyQualifiers")), _xades("SigPolicyQualifier"))
    _sub(qualifier, _xades("SPURI"), SIG_POLICY_URI)
    sdop = _sub(signed_props, _xades("SignedDataObjectProperties"))
    dof = _sub(sdop, _xades("DataObjectFormat"), ObjectReference="#signature-reference-0")
    _sub(dof, _xades("MimeType"), mime_type)

    usp = _sub(_sub(qualifying, _xades("UnsignedProperties")), _xades("UnsignedSignatureProperties"))
    if key.intermediates:
        refs = _sub(
            _sub(usp, _xades("CompleteCertificateRefs"), Id="complete-certificate-refs"), _xades("CertRefs")
        )
        for i, cert in enumerate(key.intermediates, start=1):
            _cert_digest_block(_sub(refs, _xades("Cert"), URI=f"#encapsulated-cert-{i}"), cert)
        values = _sub(usp, _xades("CertificateValues"))
        for i, cert in enumerate(key.intermediates, start=1):
            der = cert.public_bytes(serialization.Encoding.DER)
            _sub(values, _xades("EncapsulatedX509Certificate"), b64encode(der), Id=f"encapsulated-cert-{i}")
    ocsp_values = _sub(_sub(usp, _xades("RevocationValues")), _xades("OCSPValues"))
    for i, response in enumerate(key.ocsp_responses, start=1):
        _sub(ocsp_values, _xades("EncapsulatedOCSPValue"), b64encode(response), Id=f"ocsp-response-{i}")

    # Digests and the signature are computed on the element in its document: inclusive C14N renders the
    # wrapper's namespace declarations into the signed bytes, exactly as a verifier will see them.
    sp_digest.text = b64encode(digest(DIGEST_SHA512, canonicalize(signed_props, C14N_INCLUSIVE)))
    value = algorithms.sign(
        key.private_key, signature_scheme(method), canonicalize(signed_info, C14N_INCLUSIVE)
    )
    sig_value.text = b64encode(value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=False))


def _part_digest(part: MessagePart, algorithm: str = DIGEST_SHA512) -> bytes:
    if part.data is not None:
        return digest(algorithm, part.data)
    if part.digest is not None:
        return part.digest
    raise XRoadError(
        FaultCode.CANNOT_CREATE_SIGNATURE, f"message part {part.name!r} has neither data nor digest"
    )


def _check_key(key: SigningKey) -> None:
    if not key.ocsp_responses:
        raise XRoadError(
            FaultCode.CANNOT_CREATE_SIGNATURE, "the signing certificate's OCSP response is required to sign"
        )


def sign(
    parts: Sequence[MessagePart], key: SigningKey, *, signing_time: datetime | None = None
) -> SignatureData:
    """Sign one message given as named parts (``/message.xml`` first, then ``/attachmentN``).

    A message of one part is signed directly (``Reference URI="/message.xml"``). A message with attachments
    or a REST body is signed in the hash-chain form, as X-Road does, even when it is alone.
    """
    if not parts:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, "nothing to sign: no message parts")
    if len(parts) > 1:
        return sign_batch([parts], key, signing_time=signing_time)[0]
    _check_key(key)
    part = parts[0]
    xml = _build_document(
        key,
        reference_uri=part.name,
        reference_digest=_part_digest(part),
        mime_type=MIME_TEXT_XML,
        signing_time=signing_time or datetime.now(UTC),
    )
    return SignatureData(xml)


def sign_batch(
    messages: Sequence[Sequence[MessagePart]], key: SigningKey, *, signing_time: datetime | None = None
) -> list[SignatureData]:
    """Sign many messages with one signature over a hash tree (X-Road's batch signature).

    Returns one :class:`SignatureData` per message, in order: the shared signature XML, the shared
    ``/sig-hashchainresult.xml`` bytes and the message's own ``/sig-hashchain.xml`` bytes.
    """
    if not messages or any(not parts for parts in messages):
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, "nothing to sign: a message without parts")
    if len(messages) > MAX_BATCH:
        raise XRoadError(FaultCode.CANNOT_CREATE_SIGNATURE, f"batch of {len(messages)} exceeds {MAX_BATCH}")
    if len(messages) == 1 and len(messages[0]) == 1:
        return [sign(messages[0], key, signing_time=signing_time)]
    _check_key(key)
    built = build_hash_chains(messages, chain_uri=SIG_HASH_CHAIN)
    xml = _build_document(
        key,
        reference_uri=SIG_HASH_CHAIN_RESULT,
        reference_digest=digest(DIGEST_SHA512, built.result_xml),
        mime_type=MIME_HASH_CHAIN_RESULT,
        signing_time=signing_time or datetime.now(UTC),
    )
    return [SignatureData(xml, built.result_xml, chain) for chain in built.chains]


# --------------------------------------------------------------------------------------------------
# Parsing


def _malformed(message: str) -> XRoadError:
    return XRoadError(FaultCode.MALFORMED_SIGNATURE, message)


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _expect_sequence(el: etree._Element, allowed: Sequence[tuple[str, int, int | None]], what: str) -> None:
    """Schema-style check of ``el``'s children: ``(tag, min, max)`` in order."""
    kids = _children(el)
    pos = 0
    for tag, low, high in allowed:
        count = 0
        while pos < len(kids) and kids[pos].tag == tag and (high is None or count < high):
            pos += 1
            count += 1
        if count < low:
            raise _malformed(
                f"{what} does not follow the signature schema: missing {etree.QName(tag).localname}"
            )
    if pos != len(kids):
        raise _malformed(
            f"{what} does not follow the signature schema: unexpected element {etree.QName(kids[pos]).text}"
        )


def _load_cert(text: str | None, what: str) -> x509.Certificate:
    der = b64decode(text, what=what)
    try:
        return load_der_certificate(der)
    except ValueError as e:
        raise _malformed(f"{what} is not a DER certificate") from e


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise _malformed(f"SigningTime {text!r} is not an ISO 8601 time") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _find_signature(root: etree._Element) -> tuple[etree._Element, Dialect]:
    qname = etree.QName(root)
    if qname.namespace in _ASIC_NAMESPACES and qname.localname == "XAdESSignatures":
        sigs = [c for c in _children(root) if c.tag == _ds("Signature")]
        if len(sigs) != 1 or len(_children(root)) != 1:
            raise _malformed(f"XAdESSignatures must hold exactly one ds:Signature, found {len(sigs)}")
        return sigs[0], "native"
    if root.tag == _ds("Signature"):
        return root, "dss"
    raise _malformed(f"unexpected signature root element {qname.text}")


def _by_id(root: etree._Element, ident: str) -> etree._Element:
    found = [el for el in root.iter() if isinstance(el.tag, str) and el.get("Id") == ident]
    if len(found) != 1:
        raise _malformed(f"reference #{ident} resolves to {len(found)} elements")
    return found[0]


def _reference_transforms(ref: etree._Element) -> list[str]:
    transforms = ref.find(_ds("Transforms"))
    if transforms is None:
        return []
    return [t.get("Algorithm", "") for t in transforms.iterchildren(_ds("Transform"))]


@dataclass(frozen=True, slots=True)
class _Document:
    root: etree._Element
    signature: etree._Element
    signed_info: etree._Element
    parsed: ParsedSignature


def _parse(signature_xml: bytes) -> _Document:
    if len(signature_xml) > MAX_SIGNATURE_BYTES:
        raise _malformed(f"signature document of {len(signature_xml)} bytes exceeds {MAX_SIGNATURE_BYTES}")
    root = parse_xml(signature_xml, what="signature document", code=FaultCode.INVALID_XML)
    sig, dialect = _find_signature(root)
    _expect_sequence(
        sig,
        [
            (_ds("SignedInfo"), 1, 1),
            (_ds("SignatureValue"), 1, 1),
            (_ds("KeyInfo"), 0, 1),
            (_ds("Object"), 0, None),
        ],
        "ds:Signature",
    )
    signed_info = sig.find(_ds("SignedInfo"))
    assert signed_info is not None
    _expect_sequence(
        signed_info,
        [
            (_ds("CanonicalizationMethod"), 1, 1),
            (_ds("SignatureMethod"), 1, 1),
            (_ds("Reference"), 1, MAX_REFERENCES),
        ],
        "ds:SignedInfo",
    )
    for ref in signed_info.iterchildren(_ds("Reference")):
        _expect_sequence(
            ref,
            [(_ds("Transforms"), 0, 1), (_ds("DigestMethod"), 1, 1), (_ds("DigestValue"), 1, 1)],
            "ds:Reference",
        )
    method_el = signed_info.find(_ds("SignatureMethod"))
    assert method_el is not None
    signature_method = method_el.get("Algorithm", "")

    cert_el = sig.find(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if cert_el is None:
        raise _malformed("signature carries no signing certificate (ds:KeyInfo/ds:X509Data)")
    signing_cert = _load_cert(cert_el.text, "signing certificate")
    try:
        signing_cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise _malformed("the signing certificate's public key cannot be read") from e

    # Exactly one ds:Object/xades:QualifyingProperties (and in X-Road's own dialect exactly one ds:Object):
    # the signing time, signing certificate and unsigned properties are all read from it, so no second copy
    # may stand beside the one the SignedProperties reference covers (XML signature wrapping).
    objects = sig.findall(_ds("Object"))
    if dialect == "native" and len(objects) > 1:
        raise _malformed(f"signature must hold one ds:Object, found {len(objects)}")
    qualifyings = [q for obj in objects for q in obj.iterchildren(_xades("QualifyingProperties"))]
    if not qualifyings:
        raise _malformed("signature has no ds:Object/xades:QualifyingProperties")
    if len(qualifyings) != 1:
        raise _malformed(f"signature must hold one xades:QualifyingProperties, found {len(qualifyings)}")
    qualifying = qualifyings[0]
    if qualifying.get("Target") != f"#{sig.get('Id')}":
        raise _malformed("xades:QualifyingProperties does not target this ds:Signature")

    data_refs: list[DataReference] = []
    signed_props_refs = 0
    signed_props: etree._Element | None = None
    for ref in signed_info.iterchildren(_ds("Reference")):
        uri = ref.get("URI", "")
        ref_type = ref.get("Type")
        if ref_type == MANIFEST_TYPE:
            raise _malformed("legacy ds:Manifest signatures are not supported")
        if ref_type == SIGNED_PROPERTIES_TYPE:
            signed_props_refs += 1
            target = _by_id(root, uri[1:]) if uri.startswith("#") else None
            if target is None or target.tag != _xades("SignedProperties"):
                raise _malformed("the SignedProperties reference does not point to xades:SignedProperties")
            if target.getparent() is not qualifying:
                raise _malformed(
                    "the referenced xades:SignedProperties is not in this signature's "
                    "xades:QualifyingProperties"
                )
            signed_props = target
            continue
        if not uri.startswith("/") or _reference_transforms(ref):
            raise _malformed(f"unsupported data reference {uri!r}")
        method = ref.find(_ds("DigestMethod"))
        assert method is not None
        data_refs.append(
            DataReference(
                uri,
                method.get("Algorithm", ""),
                b64decode(ref.findtext(_ds("DigestValue")), what="DigestValue"),
            )
        )
    if signed_props_refs != 1:
        raise _malformed(f"signature must reference its SignedProperties once, found {signed_props_refs}")
    if not data_refs:
        raise _malformed("signature references no message part")

    # The signed signature properties come from the element the signature's reference covers.
    assert signed_props is not None
    ssp = signed_props.find(_xades("SignedSignatureProperties"))
    if ssp is None:
        raise _malformed("signature has no xades:SignedSignatureProperties")
    signing_time = _parse_time(ssp.findtext(_xades("SigningTime")))
    _check_signing_certificate(ssp, signing_cert)

    usp = qualifying.find(f"{_xades('UnsignedProperties')}/{_xades('UnsignedSignatureProperties')}")
    extra_certs, ocsp_responses, token = _parse_unsigned(usp)
    value = b64decode(sig.findtext(_ds("SignatureValue")), what="SignatureValue")
    parsed = ParsedSignature(
        dialect=dialect,
        signing_certificate=signing_cert,
        extra_certificates=extra_certs,
        ocsp_responses=ocsp_responses,
        signing_time=signing_time,
        signature_method=signature_method,
        signature_value=value,
        timestamp_token=token,
        data_references=tuple(data_refs),
    )
    return _Document(root, sig, signed_info, parsed)


def _check_signing_certificate(ssp: etree._Element, cert: x509.Certificate) -> None:
    block = ssp.find(_xades("SigningCertificate"))
    if block is None:
        block = ssp.find(_xades("SigningCertificateV2"))
    if block is None:
        raise _malformed("signature has no xades:SigningCertificate")
    der = cert.public_bytes(serialization.Encoding.DER)
    for cert_el in block.iterchildren(_xades("Cert")):
        method = cert_el.find(f"{_xades('CertDigest')}/{_ds('DigestMethod')}")
        value = cert_el.findtext(f"{_xades('CertDigest')}/{_ds('DigestValue')}")
        if method is None or value is None:
            raise _malformed("xades:Cert has no CertDigest")
        if digest(method.get("Algorithm", ""), der) == b64decode(value, what="CertDigest"):
            return
    raise XRoadError(
        FaultCode.INCORRECT_CERTIFICATE, "xades:SigningCertificate does not name the signing certificate"
    )


def _parse_unsigned(
    usp: etree._Element | None,
) -> tuple[tuple[x509.Certificate, ...], tuple[bytes, ...], bytes | None]:
    if usp is None:
        raise _malformed("signature has no OCSP responses (xades:UnsignedSignatureProperties missing)")
    token: bytes | None = None
    ts = usp.find(_xades("SignatureTimeStamp"))
    if ts is not None:
        encapsulated = ts.find(_xades("EncapsulatedTimeStamp"))
        # X-Road 6.0-era signatures put the token straight into SignatureTimeStamp.
        text = encapsulated.text if encapsulated is not None else ts.text
        token = b64decode(text, what="EncapsulatedTimeStamp")

    extra: dict[str, x509.Certificate] = {}
    values = usp.find(_xades("CertificateValues"))
    if values is not None:
        for i, el in enumerate(_children(values)):
            if el.tag != _xades("EncapsulatedX509Certificate"):
                raise _malformed(f"unexpected element {etree.QName(el).text} in xades:CertificateValues")
            ident = el.get("Id")
            if not ident:
                raise _malformed("an encapsulated certificate has no Id")
            extra[ident] = _load_cert(el.text, f"encapsulated certificate {i}")
    refs = usp.find(f"{_xades('CompleteCertificateRefs')}/{_xades('CertRefs')}")
    if refs is not None:
        for cert_ref in refs.iterchildren(_xades("Cert")):
            uri = cert_ref.get("URI", "")
            cert = extra.get(uri[1:]) if uri.startswith("#") else None
            if cert is None:
                raise _malformed(f"certificate reference {uri!r} has no encapsulated certificate")
            _check_cert_ref(cert_ref, cert)
    elif extra:
        raise _malformed("encapsulated certificates without xades:CompleteCertificateRefs")

    responses = [
        b64decode(el.text, what="EncapsulatedOCSPValue")
        for el in usp.iterfind(
            f"{_xades('RevocationValues')}/{_xades('OCSPValues')}/{_xades('EncapsulatedOCSPValue')}"
        )
    ]
    if not responses:
        raise _malformed("signature carries no OCSP response for its signing certificate")
    return tuple(extra.values()), tuple(responses), token


def _check_cert_ref(cert_ref: etree._Element, cert: x509.Certificate) -> None:
    method = cert_ref.find(f"{_xades('CertDigest')}/{_ds('DigestMethod')}")
    value = cert_ref.findtext(f"{_xades('CertDigest')}/{_ds('DigestValue')}")
    if method is None or value is None:
        raise _malformed("certificate reference has no CertDigest")
    der = cert.public_bytes(serialization.Encoding.DER)
    if digest(method.get("Algorithm", ""), der) != b64decode(value, what="CertDigest"):
        raise _malformed("digest of an encapsulated certificate does not match its reference")
    # The reference's IssuerSerial must name the same certificate (XAdES 7.4.1 identifies it by both).
    issuer_serial = cert_ref.find(_xades("IssuerSerial"))
    if issuer_serial is None:
        return
    serial_text = (issuer_serial.findtext(_ds("X509SerialNumber")) or "").strip()
    if not serial_text.isdigit() or int(serial_text) != cert.serial_number:
        raise _malformed("the serial number of a certificate reference does not match its certificate")
    issuer_text = issuer_serial.findtext(_ds("X509IssuerName"))
    if issuer_text is None or not _same_name(issuer_text, cert.issuer):
        raise _malformed("the issuer name of a certificate reference does not match its certificate")


_DN_SEPARATOR_SPACE: Final = re.compile(r"(?<!\\)([,+])\s+")
_DN_ATTRIBUTE_ALIASES: Final = MappingProxyType(
    {
        "E": NameOID.EMAIL_ADDRESS,
        "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
        "SERIALNUMBER": NameOID.SERIAL_NUMBER,
        "S": NameOID.STATE_OR_PROVINCE_NAME,
        "T": NameOID.TITLE,
        "GIVENNAME": NameOID.GIVEN_NAME,
        "SURNAME": NameOID.SURNAME,
        "BUSINESSCATEGORY": NameOID.BUSINESS_CATEGORY,
    }
)


def _same_name(text: str, name: x509.Name) -> bool:
    """True when the distinguished name string ``text`` (RFC 4514, either RDN order, Java's ``", "``
    separators and short names such as ``E=`` allowed) names ``name``."""
    try:
        parsed = x509.Name.from_rfc4514_string(
            _DN_SEPARATOR_SPACE.sub(r"\1", text.strip()), attr_name_overrides=_DN_ATTRIBUTE_ALIASES
        )
    except ValueError as e:
        raise _malformed(f"cannot parse the distinguished name {text!r}: {e}") from e

    def pairs(n: x509.Name) -> list[tuple[str, str]]:
        return sorted((a.oid.dotted_string, str(a.value)) for a in n)

    return pairs(parsed) == pairs(name)


def parse_signature(signature_xml: bytes) -> ParsedSignature:
    """Parse a signature document of either dialect and check its structure (no cryptography)."""
    return _parse(signature_xml).parsed


# --------------------------------------------------------------------------------------------------
# Verification


def _check_references(
    doc: _Document,
    parts: Sequence[MessagePart],
    hash_chain_result: bytes | None,
    hash_chain: bytes | None,
) -> tuple[str, ...]:
    """Check every data reference and the signed properties; return the hash chain's unverified parts."""
    parsed = doc.parsed
    by_name = {p.name: p for p in parts}
    if not parts:
        raise XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, "no message parts given to verify against")
    if len(by_name) != len(parts):
        raise XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, "message parts have duplicate names")
    referenced: set[str] = set()
    unverified: tuple[str, ...] = ()
    for ref in parsed.data_references:
        if ref.uri == SIG_HASH_CHAIN_RESULT:
            if hash_chain_result is None or hash_chain is None:
                raise _malformed("batch signature without its hash chain and hash-chain result")
            if digest(ref.digest_method, hash_chain_result) != ref.digest_value:
                raise XRoadError(
                    FaultCode.INVALID_SIGNATURE_VALUE,
                    "digest of the hash-chain result does not match the signature",
                )
            inputs: dict[str, bytes | InputDigest | None] = {
                p.name: p.data if p.data is not None else (InputDigest(p.digest) if p.digest else None)
                for p in parts
            }
            checked = verify_hash_chain(
                hash_chain_result, hash_chain, inputs, expected_chain_uri=SIG_HASH_CHAIN
            )
            unverified = checked.unverified
            referenced.update(checked.verified)
            continue
        part = by_name.get(ref.uri)
        if part is None:
            raise XRoadError(FaultCode.INVALID_SIGNATURE_VALUE, f"signed part {ref.uri!r} was not given")
        if part.data is not None:
            actual = digest(ref.digest_method, part.data)
        elif part.digest is not None:
            actual = part.digest
        else:
            raise XRoadError(
                FaultCode.INVALID_SIGNATURE_VALUE, f"part {ref.uri!r} has neither data nor digest"
            )
        if actual != ref.digest_value:
            raise XRoadError(
                FaultCode.INVALID_SIGNATURE_VALUE, f"digest of {ref.uri} does not match the signature"
            )
        referenced.add(ref.uri)
    unreferenced = sorted(set(by_name) - referenced)
    if unreferenced:
        raise XRoadError(
            FaultCode.INVALID_SIGNATURE_VALUE,
            f"message parts not covered by the signature: {', '.join(unreferenced)}",
        )

    for ref_el in doc.signed_info.iterchildren(_ds("Reference")):
        if ref_el.get("Type") != SIGNED_PROPERTIES_TYPE:
            continue
        target = _by_id(doc.root, ref_el.get("URI", "")[1:])
        transforms = [t for t in _reference_transforms(ref_el) if t]
        if len(transforms) > 1:
            raise _malformed("SignedProperties reference has more than one transform")
        # Without a transform a same-document reference is canonicalised with inclusive C14N 1.0.
        data = canonicalize(target, transforms[0] if transforms else C14N_INCLUSIVE)
        method = ref_el.find(_ds("DigestMethod"))
        assert method is not None
        expected = b64decode(ref_el.findtext(_ds("DigestValue")), what="DigestValue")
        if digest(method.get("Algorithm", ""), data) != expected:
            raise XRoadError(
                FaultCode.INVALID_SIGNATURE_VALUE, "digest of the signed properties does not match"
            )
    return unverified


@dataclass(frozen=True, slots=True)
class IntegrityResult:
    """Steps 0-2 done: the document's structure, every digest and the signature value are right."""

    parsed: ParsedSignature
    unverified_parts: tuple[str, ...]


def verify_integrity(
    signature_xml: bytes,
    parts: Sequence[MessagePart],
    *,
    hash_chain_result: bytes | None = None,
    hash_chain: bytes | None = None,
) -> IntegrityResult:
    """Steps 0-2 of :func:`verify_signature`: structure, references and digests, signature value.

    Says nothing about who signed: follow with :func:`verify_signer`.
    """
    # 0. Structure: one signature of a known dialect, signing certificate, OCSP responses present.
    doc = _parse(signature_xml)
    parsed = doc.parsed
    # 1. References and digests: every message part (or the hash chain) and the signed properties.
    unverified = _check_references(doc, parts, hash_chain_result, hash_chain)
    # 2. Signature value over the canonicalised SignedInfo.
    c14n_el = doc.signed_info.find(_ds("CanonicalizationMethod"))
    assert c14n_el is not None
    signed_bytes = canonicalize(doc.signed_info, c14n_el.get("Algorithm", ""))
    cert = parsed.signing_certificate
    algorithms.verify(
        cert,
        signature_scheme(parsed.signature_method),
        parsed.signature_value,
        signed_bytes,
        code=FaultCode.INVALID_SIGNATURE_VALUE,
        key_mismatch_code=FaultCode.MALFORMED_SIGNATURE,
        what="signature value",
    )
    return IntegrityResult(parsed, unverified)


def verify_signer(
    integrity: IntegrityResult,
    *,
    trust: TrustMaterial | CertificateValidator,
    expected_member: MemberId,
    at: datetime,
) -> VerifiedSignature:
    """Steps 3-5 of :func:`verify_signature`: the signer, its certificate chain and OCSP at ``at``.

    ``trust`` is the trust material, or a :class:`~xroad_mn.validation.CertificateValidator` over it that
    remembers the signers it validated (share one to verify many messages of the same signers).
    """
    parsed = integrity.parsed
    # 3-5. Signing key usage and member binding (by the profile of a CA of the expected signer's instance),
    #      chain to a CA that instance approves at `at`, OCSP of every certificate of the path.
    signer = validator_for(trust).validate_signer(
        parsed.signing_certificate,
        intermediates=parsed.extra_certificates,
        ocsp_responses=parsed.ocsp_responses,
        at=at,
        expected_member=expected_member,
    )
    return VerifiedSignature(
        signer=signer.member,
        signer_certificate=parsed.signing_certificate,
        signing_time=parsed.signing_time,
        approved_ca=signer.approved_ca,
        dialect=parsed.dialect,
        batch=parsed.is_batch,
        timestamp_token=parsed.timestamp_token,
        unverified_parts=integrity.unverified_parts,
    )


def verify_signature(
    signature_xml: bytes,
    parts: Sequence[MessagePart],
    *,
    trust: TrustMaterial | CertificateValidator,
    expected_member: MemberId,
    at: datetime,
    hash_chain_result: bytes | None = None,
    hash_chain: bytes | None = None,
) -> VerifiedSignature:
    """Verify a signature over message ``parts`` at time ``at``; raise :class:`XRoadError` on any failure.

    ``parts`` are the named message parts (``/message.xml``, ``/attachmentN``) as raw bytes or SHA-512
    digests; a batch signature also needs its ``hash_chain_result`` and the message's ``hash_chain``.
    ``expected_member`` is the member that must have signed (the client for a request, the service
    provider for a response); subsystems sign with their member's key. ``trust`` may be a
    :class:`~xroad_mn.validation.CertificateValidator` shared across messages (see :func:`verify_signer`).

    Steps: 0. structure; 1. references and digests (hash chain for batch signatures); 2. signature value;
    3. signing key usage and member binding; 4. chain to an approved CA at ``at``; 5. OCSP authorised,
    fresh (``thisUpdate`` within ``ocspFreshnessSeconds`` of ``at``) and good.
    """
    integrity = verify_integrity(
        signature_xml, parts, hash_chain_result=hash_chain_result, hash_chain=hash_chain
    )
    return verify_signer(integrity, trust=trust, expected_member=expected_member, at=at)


# --------------------------------------------------------------------------------------------------
# Single time-stamp


def timestamp_input(signature_xml: bytes) -> bytes:
    """The bytes a single time-stamp covers: the decoded ``ds:SignatureValue`` (X-Road, not XAdES)."""
    return _parse(signature_xml).parsed.signature_value


def embed_timestamp(signature_xml: bytes, token_der: bytes) -> bytes:
    """Insert ``xades:SignatureTimeStamp/xades:EncapsulatedTimeStamp`` as the first unsigned property.

    The document is edited as bytes, so every signed byte and namespace declaration stays as it was.
    """
    doc = _parse(signature_xml)
    if doc.parsed.timestamp_token is not None:
        raise _malformed("signature already carries a time-stamp")
    usp = doc.signature.find(
        f"{_ds('Object')}/{_xades('QualifyingProperties')}/{_xades('UnsignedProperties')}/{_xades('UnsignedSignatureProperties')}"
    )
    if usp is None:
        raise _malformed("signature has no xades:UnsignedSignatureProperties")
    prefix = usp.prefix
    qual = f"{prefix}:" if prefix else ""
    pattern = re.compile(rb"<" + re.escape(qual.encode()) + rb"UnsignedSignatureProperties(\s[^>]*)?(/?)>")
    matches = list(pattern.finditer(signature_xml))
    if len(matches) != 1:
        raise _malformed("cannot locate xades:UnsignedSignatureProperties in the signature bytes")
    match = matches[0]
    stamp = (
        f"<{qual}SignatureTimeStamp><{qual}EncapsulatedTimeStamp>{b64encode(token_der)}"
        f"</{qual}EncapsulatedTimeStamp></{qual}SignatureTimeStamp>"
    ).encode()
    if match.group(2):
        opening = match.group(0)[:-2] + b">"
        insert = opening + stamp + f"</{qual}UnsignedSignatureProperties>".encode()
    else:
        insert = match.group(0) + stamp
    return signature_xml[: match.start()] + insert + signature_xml[match.end() :]
