"""PKCS#10 certificate requests signed through a token: only the public key and a sign function are needed.

``cryptography``'s ``CertificateSigningRequestBuilder`` wants a private key object, which a token never
hands out; here the ``CertificationRequestInfo`` is built with ``asn1crypto``, signed by the
:class:`~xroad_mn.algorithms.Signer`, and the result checked before it is returned::

    >>> from cryptography import x509
    >>> from cryptography.hazmat.primitives.asymmetric import rsa
    >>> from cryptography.x509.oid import NameOID
    >>> from xroad_mn.keys import PrivateKeySigner
    >>> signer = PrivateKeySigner(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    >>> subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ss1")])
    >>> build_csr(signer, subject).is_signature_valid
    True
"""

from __future__ import annotations

from typing import Final

from asn1crypto import core as asn1_core
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from xroad_mn.algorithms import SignatureScheme, sign
from xroad_mn.errors import FaultCode
from xroad_mn.keys import KeyOrSigner, key_type
from xroad_mn.tokens.base import signer_error

__all__ = ["build_csr"]

_ALGORITHMS: Final = {
    SignatureScheme.RSA_PKCS1_SHA256: "sha256_rsa",
    SignatureScheme.RSA_PKCS1_SHA384: "sha384_rsa",
    SignatureScheme.RSA_PKCS1_SHA512: "sha512_rsa",
    SignatureScheme.ECDSA_SHA256: "sha256_ecdsa",
    SignatureScheme.ECDSA_SHA384: "sha384_ecdsa",
    SignatureScheme.ECDSA_SHA512: "sha512_ecdsa",
}


def build_csr(
    signer: KeyOrSigner, subject: x509.Name, *, scheme: SignatureScheme | None = None
) -> x509.CertificateSigningRequest:
    """A CSR for ``signer``'s public key naming ``subject``, signed with ``scheme`` (SHA-256 by default).

    ``signer.failed_to_generate_certificate_request`` when the scheme does not fit the key (RSA-PSS is not
    offered: CAs X-Road works with expect PKCS#1 v1.5 requests) or the signature does not verify.
    """
    kind = key_type(signer)
    if scheme is None:
        scheme = SignatureScheme.RSA_PKCS1_SHA256 if kind == "rsa" else SignatureScheme.ECDSA_SHA256
    algorithm = _ALGORITHMS.get(scheme)
    if algorithm is None or scheme.key_type != kind:
        raise signer_error(FaultCode.CSR_FAILED, f"a CSR for a {kind.upper()} key cannot use {scheme.value}")
    spki = signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.load(subject.public_bytes()),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            "attributes": asn1_csr.CRIAttributes([]),
        }
    )
    tbs = info.dump()
    # RSA signature algorithm identifiers carry an explicit NULL (RFC 4055); ECDSA ones carry nothing.
    signature_algorithm = {"algorithm": algorithm, "parameters": asn1_core.Null() if kind == "rsa" else None}
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": signature_algorithm,
            "signature": sign(signer, scheme, tbs),
        }
    )
    try:
        csr = x509.load_der_x509_csr(request.dump())
        valid = csr.is_signature_valid
    except ValueError as e:
        raise signer_error(FaultCode.CSR_FAILED, f"the built request does not parse: {e}") from e
    if not valid:
        raise signer_error(FaultCode.CSR_FAILED, "the token's signature over the request does not verify")
    return csr
