"""Deliberately bad certificates and signed objects, re-encoded from real ones with asn1crypto.

cryptography refuses to build what these are (an unassigned signature algorithm, odd RSA-PSS parameters,
an X25519 key in a signing certificate), so each takes a good DER object and edits one field. Every
verifier must answer them with an X-Road fault, never a library exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from asn1crypto import algos, keys, ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import strategies as st

from xroad_mn.algorithms import SCHEMES

__all__ = [
    "HOSTILE_SIGNATURE_ALGORITHMS",
    "HOSTILE_VARIANTS",
    "ODD_PSS_PARAMETERS",
    "UNKNOWN_SIGNATURE_OID",
    "dsa_public_key",
    "hostile",
    "ocsp_hostile",
    "oids",
    "with_ocsp_certificates",
    "with_ocsp_signature_algorithm",
    "with_public_key",
    "with_signature_algorithm",
    "x25519_public_key",
]

UNKNOWN_SIGNATURE_OID: Final = "1.3.6.1.4.1.55555.1.2.3"
"""An OID nobody assigned to a signature algorithm."""

_SHA256: Final = {"algorithm": "sha256"}
ODD_PSS_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "unknown-hash": {
        "hash_algorithm": {"algorithm": "1.3.6.1.4.1.55555.9"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": _SHA256},
        "salt_length": 32,
    },
    "unknown-mgf": {
        "hash_algorithm": _SHA256,
        "mask_gen_algorithm": {
            "algorithm": "1.3.6.1.4.1.55555.8",
            "parameters": algos.DigestAlgorithm(_SHA256),
        },
        "salt_length": 32,
    },
    "md5-mgf": {
        "hash_algorithm": _SHA256,
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "md5"}},
        "salt_length": 32,
    },
    "huge-salt": {
        "hash_algorithm": _SHA256,
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": _SHA256},
        "salt_length": 60000,
    },
    "salt-longer-than-the-key": {
        "hash_algorithm": _SHA256,
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": _SHA256},
        "salt_length": 400,
    },
    "odd-trailer": {
        "hash_algorithm": _SHA256,
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": _SHA256},
        "salt_length": 32,
        "trailer_field": 2,
    },
}
"""RSA-PSS parameter blocks no verifier can use: an unknown hash or mask generation, an MD5 mask, a salt
longer than any key (or than a 2048-bit key holds), a trailer field other than 0xBC."""


def _identifier(oid: str, pss: dict[str, Any] | None) -> algos.SignedDigestAlgorithm:
    if pss is None:
        return algos.SignedDigestAlgorithm({"algorithm": oid})
    return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams(pss)})


def _edit_certificate(
    cert: x509.Certificate, edit: Callable[[asn1_x509.Certificate], None]
) -> x509.Certificate:
    parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    edit(parsed)
    return x509.load_der_x509_certificate(parsed.dump(force=True))


def with_signature_algorithm(
    cert: x509.Certificate, oid: str = UNKNOWN_SIGNATURE_OID, *, pss: dict[str, Any] | None = None
) -> x509.Certificate:
    """``cert`` claiming another signature algorithm (``oid``, or RSA-PSS with ``pss`` parameters) in both
    of its signatureAlgorithm fields. Bad: no verifier knows the algorithm (or can use the parameters),
    and the signature bytes are still those of the original algorithm over the original TBS."""

    def edit(parsed: asn1_x509.Certificate) -> None:
        parsed["signature_algorithm"] = _identifier(oid, pss)
        parsed["tbs_certificate"]["signature"] = _identifier(oid, pss)

    return _edit_certificate(cert, edit)


def x25519_public_key() -> x25519.X25519PublicKey:
    return x25519.X25519PrivateKey.generate().public_key()


def with_public_key(cert: x509.Certificate, public_key: Any) -> x509.Certificate:
    """``cert`` carrying ``public_key`` (e.g. an X25519 key-agreement key, or DSA where RSA is expected).
    Bad: that key cannot have made the signatures the certificate is used to verify, and the issuer's
    signature no longer covers the TBS."""
    spki = keys.PublicKeyInfo.load(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))

    def edit(parsed: asn1_x509.Certificate) -> None:
        parsed["tbs_certificate"]["subject_public_key_info"] = spki

    return _edit_certificate(cert, edit)


def _edit_ocsp(response_der: bytes, edit: Callable[[ocsp.BasicOCSPResponse], None]) -> bytes:
    response = ocsp.OCSPResponse.load(response_der)
    basic = response["response_bytes"]["response"].parsed
    edit(basic)
    response["response_bytes"]["response"] = ocsp.BasicOCSPResponse.load(basic.dump(force=True))
    return bytes(response.dump(force=True))


def with_ocsp_certificates(response_der: bytes, certs: list[x509.Certificate]) -> bytes:
    """An OCSP response carrying ``certs`` instead of its own (the signature covers only the TBS)."""

    def edit(basic: ocsp.BasicOCSPResponse) -> None:
        basic["certs"] = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in certs]

    return _edit_ocsp(response_der, edit)


def with_ocsp_signature_algorithm(
    response_der: bytes, oid: str = UNKNOWN_SIGNATURE_OID, *, pss: dict[str, Any] | None = None
) -> bytes:
    """An OCSP response whose BasicOCSPResponse claims another signature algorithm. Bad: as for
    :func:`with_signature_algorithm`."""

    def edit(basic: ocsp.BasicOCSPResponse) -> None:
        basic["signature_algorithm"] = _identifier(oid, pss)

    return _edit_ocsp(response_der, edit)


RSASSA_PSS: Final = "1.2.840.113549.1.1.10"
HOSTILE_SIGNATURE_ALGORITHMS: Final = (
    "unknown-signature-oid",
    *(f"pss-{name}" for name in ODD_PSS_PARAMETERS),
)
"""Names of the signature-algorithm edits :func:`hostile` makes."""
HOSTILE_VARIANTS: Final = (*HOSTILE_SIGNATURE_ALGORITHMS, "x25519-key")
"""Names of every edit :func:`hostile` makes."""


def hostile(cert: x509.Certificate, variant: str) -> x509.Certificate:
    """``cert`` edited as ``variant`` names: an unknown signature OID, odd RSA-PSS parameters
    (``pss-<name of ODD_PSS_PARAMETERS>``) or an X25519 key (``x25519-key``)."""
    if variant == "unknown-signature-oid":
        return with_signature_algorithm(cert)
    if variant == "x25519-key":
        return with_public_key(cert, x25519_public_key())
    return with_signature_algorithm(cert, RSASSA_PSS, pss=ODD_PSS_PARAMETERS[variant.removeprefix("pss-")])


def ocsp_hostile(response_der: bytes, variant: str) -> bytes:
    """An OCSP response edited as ``variant`` (one of :data:`HOSTILE_SIGNATURE_ALGORITHMS`) names."""
    if variant == "unknown-signature-oid":
        return with_ocsp_signature_algorithm(response_der)
    return with_ocsp_signature_algorithm(
        response_der, RSASSA_PSS, pss=ODD_PSS_PARAMETERS[variant.removeprefix("pss-")]
    )


def dsa_public_key() -> Any:
    """A DSA public key (cryptography deprecates DSA and warns: callers ignore that warning)."""
    return dsa.generate_private_key(1024).public_key()


def oids() -> st.SearchStrategy[str]:
    """Dotted OIDs: known signature algorithms and random arcs."""
    arcs = st.lists(st.integers(0, 2**40), min_size=1, max_size=6).map(lambda a: ".".join(map(str, a)))
    random = st.tuples(st.sampled_from(["0", "1", "2"]), st.integers(0, 39), arcs).map(
        lambda t: ".".join(map(str, t))
    )
    return st.one_of(random, st.sampled_from(sorted(n for n in SCHEMES if n[:1].isdigit())))
