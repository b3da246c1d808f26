"""Certificates given to the registry as files or JSON: PEM, DER and base64 DER all read back exactly."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from registry.operations import parse_certificate
from xroad_mn.errors import XRoadError

WHITESPACE = b" \t\n\r\x0b\x0c"


def _certificate_whose_der_ends_in_whitespace() -> x509.Certificate:
    """A DER encoding ends in the signature's last byte, which is whitespace for about 1 in 43 signatures."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whitespace")])
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for serial in range(1, 5000):
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        if cert.public_bytes(Encoding.DER)[-1:] in [bytes([b]) for b in WHITESPACE]:
            return cert
    raise AssertionError("no signature ended in a whitespace byte")


@pytest.mark.parametrize("form", ["der", "pem", "base64"])
def test_a_der_certificate_ending_in_a_whitespace_byte_reads_back_exactly(form: str) -> None:
    cert = _certificate_whose_der_ends_in_whitespace()
    der = cert.public_bytes(Encoding.DER)
    data = {"der": der, "pem": cert.public_bytes(Encoding.PEM), "base64": base64.b64encode(der) + b"\n"}[form]
    assert parse_certificate(data) == cert


def test_garbage_is_an_invalid_request() -> None:
    with pytest.raises(XRoadError) as exc:
        parse_certificate(b"\x30\x03garbage")
    assert exc.value.has_code("invalid_request")
