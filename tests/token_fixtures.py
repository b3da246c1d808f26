"""Helpers of the token tests: a CSR checked by openssl, and a token key certified by the dev CA."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.test_signature import Evidence, dev_trust
from trust_services.ocsp_responder import build_ocsp_response, status_lookup
from trust_services.pki import issue_certificate, member_subject, sign_profile_extensions
from xroad_mn.hashchain import MessagePart
from xroad_mn.ocsp import build_ocsp_request
from xroad_mn.signature import SigningKey, sign, sign_batch, verify_signature
from xroad_mn.tokens import KeyAlgorithm, KeyUsage, Token, build_csr, token_signer


def csr_verifies_with_openssl(csr: x509.CertificateSigningRequest, openssl: str, tmp_path: Path) -> None:
    path = tmp_path / "req.pem"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [openssl, "req", "-in", str(path), "-verify", "-noout"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "verify OK" in out.stdout + out.stderr


def certified_token_key(
    token: Token, algorithm: KeyAlgorithm, evidence: Evidence
) -> tuple[SigningKey, x509.Certificate]:
    """A signing key made in ``token``, certified by the dev CA from a CSR the token signed."""
    pki, now = evidence.pki, evidence.now
    key = token.generate_key("member sign", KeyUsage.SIGNING, algorithm)
    signer = token_signer(token, key.key_id)
    csr = build_csr(signer, member_subject(pki.member))
    cert = issue_certificate(
        pki.intermediate,
        subject=csr.subject,
        public_key=csr.public_key(),  # type: ignore[arg-type]
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        extensions=sign_profile_extensions(),
    )
    leaf_ocsp = build_ocsp_response(
        build_ocsp_request(cert, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, [cert.serial_number]),
        now=now,
    )
    intermediate_ocsp = evidence.key.ocsp_responses[1]
    return SigningKey(signer, cert, (leaf_ocsp, intermediate_ocsp), (pki.intermediate.certificate,)), cert


def assert_xades_through_token(token: Token, algorithm: KeyAlgorithm, evidence: Evidence) -> None:
    key, cert = certified_token_key(token, algorithm, evidence)
    trust = dev_trust(evidence.pki)
    one = [MessagePart("/message.xml", b"<message>one</message>")]
    single = sign(one, key, signing_time=evidence.now)
    verified = verify_signature(
        single.signature_xml, one, trust=trust, expected_member=evidence.pki.member, at=evidence.now
    )
    assert verified.signer_certificate == cert
    # One signature per drained batch, made in a worker thread as the node does.
    batch = [[MessagePart("/message.xml", f"<m>{i}</m>".encode())] for i in range(5)]
    signed = asyncio.run(asyncio.to_thread(sign_batch, batch, key, signing_time=evidence.now))
    assert len({s.signature_xml for s in signed}) == 1
    for parts, data in zip(batch, signed, strict=True):
        result = verify_signature(
            data.signature_xml,
            parts,
            trust=trust,
            expected_member=evidence.pki.member,
            at=evidence.now,
            hash_chain_result=data.hash_chain_result,
            hash_chain=data.hash_chain,
        )
        assert result.batch
