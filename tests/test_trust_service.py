"""The trust services over real HTTP, checked with the real openssl CLI: CA, OCSP, TSA, persistence."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from asn1crypto import core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trust_services.app import RunningTrustService, TrustSettings, run_trust_service
from xroad_mn.certs import XROAD_MN_PROFILE, profile_for, verify_signing_key_usage
from xroad_mn.identifiers import MemberId

pytestmark = pytest.mark.needs_tool("openssl")

SIGN_SUBJECT = "/C=MN/O=GOV/CN=5012345"


async def run(openssl: str, *args: str | Path, cwd: Path) -> tuple[int, str, str]:
    """Run openssl without blocking the event loop that serves the trust services."""
    proc = await asyncio.create_subprocess_exec(
        openssl,
        *(str(a) for a in args),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def openssl_csr(openssl: str, workdir: Path, subject: str, name: str = "leaf") -> Path:
    """A CSR made by ``openssl req`` (new RSA-2048 key)."""
    csr = workdir / f"{name}.csr"
    rc, _, err = await run(
        openssl,
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        workdir / f"{name}.key",
        "-subj",
        subject,
        "-out",
        csr,
        cwd=workdir,
    )
    assert rc == 0, err
    return csr


def cryptography_csr(
    subject: x509.Name,
    *,
    alt_names: Sequence[x509.GeneralName] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    private_key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(alt_names)), critical=False)
    return builder.sign(private_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


async def issue(
    session: aiohttp.ClientSession, service: RunningTrustService, csr: bytes, profile: str
) -> bytes:
    async with session.post(
        f"{service.urls.ca}?profile={profile}", data=csr, headers={"Content-Type": "application/pkcs10"}
    ) as resp:
        body = await resp.read()
        assert resp.status == 201, body
        assert resp.headers["Content-Type"].startswith("application/x-pem-file")
        assert resp.headers["Location"].endswith(f"/ca/certificates/{resp.headers['X-Serial-Number']}")
        return body


async def revoke(
    session: aiohttp.ClientSession, service: RunningTrustService, serial: int, reason: str
) -> None:
    async with session.post(service.urls.revocations, json={"serial": serial, "reason": reason}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert body["serial"] == serial
        assert body["reason"] == reason


async def openssl_ocsp_status(openssl: str, service: RunningTrustService, leaf: Path, workdir: Path) -> str:
    rc, out, err = await run(
        openssl,
        "ocsp",
        "-issuer",
        service.directory / "ca.pem",
        "-cert",
        leaf,
        "-url",
        service.urls.ocsp,
        "-VAfile",
        service.directory / "ocsp.pem",
        cwd=workdir,
    )
    assert rc == 0, err
    assert "Response verify OK" in err
    return out


async def test_sign_profile_issues_verifiable_member_certificate(
    trust_service: RunningTrustService, openssl: str, tmp_path: Path
) -> None:
    csr = await openssl_csr(openssl, tmp_path, SIGN_SUBJECT)
    async with aiohttp.ClientSession() as session:
        pem = await issue(session, trust_service, csr.read_bytes(), "sign")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pem)

    rc, out, err = await run(
        openssl, "verify", "-CAfile", trust_service.directory / "ca.pem", leaf, cwd=tmp_path
    )
    assert rc == 0, err
    assert out.strip() == f"{leaf}: OK"

    cert = x509.load_pem_x509_certificate(pem)
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.content_commitment
    assert not (key_usage.value.digital_signature)
    assert not (key_usage.value.key_encipherment)
    verify_signing_key_usage(cert)
    # A verifier using our (EJBCA-layout) profile maps the certificate back to the member in the CSR.
    assert profile_for(XROAD_MN_PROFILE, "MN").member_id(cert) == MemberId("MN", "GOV", "5012345")
    assert 0 < cert.serial_number < 2**63


async def test_auth_profile_issues_tls_client_and_server_certificate(
    trust_service: RunningTrustService, openssl: str, tmp_path: Path
) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GOV"),
            x509.NameAttribute(NameOID.COMMON_NAME, "ss1"),
        ]
    )
    csr = cryptography_csr(subject, alt_names=[x509.DNSName("ss1.example.mn")])
    async with aiohttp.ClientSession() as session:
        pem = await issue(session, trust_service, csr, "auth")
    leaf = tmp_path / "auth.pem"
    leaf.write_bytes(pem)
    for purpose in ("sslserver", "sslclient"):
        rc, out, err = await run(
            openssl,
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            trust_service.directory / "ca.pem",
            leaf,
            cwd=tmp_path,
        )
        assert rc == 0, err
        assert out.strip().endswith(": OK")
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject == subject
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature
    assert key_usage.key_encipherment
    assert not key_usage.content_commitment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ss1.example.mn"]


async def test_ocsp_reports_good_then_revoked(
    trust_service: RunningTrustService, openssl: str, tmp_path: Path
) -> None:
    csr = await openssl_csr(openssl, tmp_path, SIGN_SUBJECT)
    async with aiohttp.ClientSession() as session:
        pem = await issue(session, trust_service, csr.read_bytes(), "sign")
        leaf = tmp_path / "leaf.pem"
        leaf.write_bytes(pem)
        serial = x509.load_pem_x509_certificate(pem).serial_number

        out = await openssl_ocsp_status(openssl, trust_service, leaf, tmp_path)
        assert f"{leaf}: good" in out

        await revoke(session, trust_service, serial, "keyCompromise")
        out = await openssl_ocsp_status(openssl, trust_service, leaf, tmp_path)
        assert f"{leaf}: revoked" in out
        assert "Reason: keyCompromise" in out


async def test_ocsp_get_form_and_unknown_serial(trust_service: RunningTrustService) -> None:
    ca = x509.load_pem_x509_certificate((trust_service.directory / "ca.pem").read_bytes())
    csr = cryptography_csr(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GOV"),
                x509.NameAttribute(NameOID.COMMON_NAME, "7000001"),
            ]
        )
    )
    async with aiohttp.ClientSession() as session:
        leaf = x509.load_pem_x509_certificate(await issue(session, trust_service, csr, "sign"))
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA256()).build()
        encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
        async with session.get(f"{trust_service.urls.ocsp}/{encoded}") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/ocsp-response"
            response = ocsp.load_der_ocsp_response(await resp.read())
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial_number
    assert response.next_update_utc is None
    responder = x509.load_pem_x509_certificate((trust_service.directory / "ocsp.pem").read_bytes())
    assert response.responder_name == responder.subject
    assert response.certificates == [responder]

    # A certificate this CA never issued (another key, another serial) is "unknown".
    stranger = x509.load_pem_x509_certificate((trust_service.directory / "tsa.pem").read_bytes())
    other = (
        x509.CertificateBuilder()
        .subject_name(stranger.subject)
        .issuer_name(ca.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(424242)
        .not_valid_before(stranger.not_valid_before_utc)
        .not_valid_after(stranger.not_valid_after_utc)
        .sign(rsa.generate_private_key(65537, 2048), hashes.SHA256())
    )
    request = ocsp.OCSPRequestBuilder().add_certificate(other, ca, hashes.SHA1()).build()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            trust_service.urls.ocsp,
            data=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        ) as resp,
    ):
        assert resp.status == 200
        unknown = ocsp.load_der_ocsp_response(await resp.read())
    assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


async def test_revocations_and_issued_certificates_survive_a_restart(openssl: str, tmp_path: Path) -> None:
    from trust_services.store import init_trust_dir

    directory = tmp_path / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    settings = TrustSettings(dir=directory, port=0)
    csr = await openssl_csr(openssl, tmp_path, SIGN_SUBJECT)
    leaf = tmp_path / "leaf.pem"

    async with run_trust_service(settings) as first, aiohttp.ClientSession() as session:
        pem = await issue(session, first, csr.read_bytes(), "sign")
        leaf.write_bytes(pem)
        serial = x509.load_pem_x509_certificate(pem).serial_number
        await revoke(session, first, serial, "superseded")
    assert (directory / "issued" / f"{serial}.pem").read_bytes() == pem
    assert json.loads((directory / "revocations.json").read_text())[str(serial)]["reason"] == "superseded"

    async with run_trust_service(settings) as second, aiohttp.ClientSession() as session:
        out = await openssl_ocsp_status(openssl, second, leaf, tmp_path)
        assert f"{leaf}: revoked" in out
        assert "Reason: superseded" in out
        async with session.get(f"{second.urls.ca}/{serial}") as resp:
            assert resp.status == 200
            assert await resp.read() == pem
        # Revoking again is a conflict, not a second entry.
        async with session.post(
            second.urls.revocations, json={"serial": serial, "reason": "keyCompromise"}
        ) as resp:
            assert resp.status == 409
            assert resp.headers["X-Road-Error"] == "client.conflict"


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
async def test_tsa_reply_verifies_with_openssl(
    trust_service: RunningTrustService, openssl: str, tmp_path: Path, digest: str
) -> None:
    data = tmp_path / "f"
    data.write_bytes(b"X-Road message log batch\n" * 10)
    rc, _, err = await run(
        openssl, "ts", "-query", "-data", data, f"-{digest}", "-cert", "-out", "req.tsq", cwd=tmp_path
    )
    assert rc == 0, err
    query_der = (tmp_path / "req.tsq").read_bytes()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            trust_service.urls.tsa, data=query_der, headers={"Content-Type": "application/timestamp-query"}
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/timestamp-reply"
        (tmp_path / "reply.tsr").write_bytes(await resp.read())

    tsa_pem = trust_service.directory / "tsa.pem"
    rc, out, err = await run(
        openssl,
        "ts",
        "-verify",
        "-in",
        "reply.tsr",
        "-data",
        data,
        "-CAfile",
        tsa_pem,
        "-partial_chain",
        cwd=tmp_path,
    )
    assert rc == 0, err
    assert "Verification: OK" in out
    # Against the query: the imprint and the nonce must match what was asked.
    rc, out, err = await run(
        openssl,
        "ts",
        "-verify",
        "-in",
        "reply.tsr",
        "-queryfile",
        "req.tsq",
        "-CAfile",
        tsa_pem,
        "-partial_chain",
        cwd=tmp_path,
    )
    assert rc == 0, err
    assert "Verification: OK" in out

    query = tsp.TimeStampReq.load(query_der)
    reply = tsp.TimeStampResp.load((tmp_path / "reply.tsr").read_bytes())
    assert reply["status"]["status"].native == "granted"
    signed_data = reply["time_stamp_token"]["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    assert query["nonce"].native is not None
    assert tst_info["nonce"].native == query["nonce"].native
    assert tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native == digest
    # certReq was set, so the TSA certificate is in the token.
    included = [c.dump() for c in signed_data["certificates"]]
    tsa_der = x509.load_pem_x509_certificate(tsa_pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert included == [tsa_der]


async def test_tsa_rejects_sha1_with_bad_alg(
    trust_service: RunningTrustService, openssl: str, tmp_path: Path
) -> None:
    data = tmp_path / "f"
    data.write_bytes(b"payload")
    rc, _, err = await run(openssl, "ts", "-query", "-data", data, "-sha1", "-out", "req.tsq", cwd=tmp_path)
    assert rc == 0, err
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            trust_service.urls.tsa,
            data=(tmp_path / "req.tsq").read_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
        ) as resp,
    ):
        assert resp.status == 200
        body = await resp.read()
    reply = core.Sequence.load(body)
    assert len(reply) == 1, "a rejection carries no time-stamp token"
    status = tsp.PKIStatusInfo.load(reply[0].dump())
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {"bad_alg"}
    assert "sha1" in status["status_string"].native[0]


async def test_serve_command_prints_urls_and_serves(openssl: str, tmp_path: Path) -> None:
    """``python -m xroad_mn trust serve --port 0`` starts, prints the URLs and stops on SIGTERM."""
    import sys

    from trust_services.store import init_trust_dir

    directory = tmp_path / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "xroad_mn",
        "trust",
        "serve",
        "--dir",
        str(directory),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        urls: dict[str, str] = {}
        while len(urls) < 3:
            line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
            assert line, "serve exited before printing its URLs"
            name, _, url = line.strip().partition(" ")
            if name in ("CA", "OCSP", "TSA"):
                urls[name] = url.strip()
        assert urls["CA"].startswith("http://127.0.0.1:")
        assert urls["CA"].endswith("/ca/certificates")
        async with (
            aiohttp.ClientSession() as session,
            session.get(urls["CA"].replace("certificates", "ca.pem")) as resp,
        ):
            assert resp.status == 200
            assert await resp.read() == (directory / "ca.pem").read_bytes()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=30)
    assert proc.returncode == 0


async def _post_query(url: str, query_der: bytes) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=query_der, headers={"Content-Type": "application/timestamp-query"}) as resp,
    ):
        assert resp.status == 200
        return await resp.read()


def _token_certificates(reply_der: bytes) -> list[bytes]:
    signed_data = tsp.TimeStampResp.load(reply_der)["time_stamp_token"]["content"]
    certificates = signed_data["certificates"]
    return [] if certificates.native is None else [c.dump() for c in certificates]


async def test_tsa_issue_acceptance_commands_verify(
    trust_service: RunningTrustService, openssl: str, tmp_path: Path
) -> None:
    """The issue's exact check: ``openssl ts -query -data f -sha512`` (no ``-cert``) posted to /tsa, then
    ``openssl ts -verify -in reply.tsr -data f -CAfile DIR/tsa.pem -partial_chain`` prints OK."""
    (tmp_path / "f").write_bytes(b"X-Road message log batch\n")
    rc, _, err = await run(openssl, "ts", "-query", "-data", "f", "-sha512", "-out", "req.tsq", cwd=tmp_path)
    assert rc == 0, err
    reply = await _post_query(trust_service.urls.tsa, (tmp_path / "req.tsq").read_bytes())
    (tmp_path / "reply.tsr").write_bytes(reply)
    tsa_pem = trust_service.directory / "tsa.pem"
    rc, out, err = await run(
        openssl,
        "ts",
        "-verify",
        "-in",
        "reply.tsr",
        "-data",
        "f",
        "-CAfile",
        tsa_pem,
        "-partial_chain",
        cwd=tmp_path,
    )
    assert rc == 0, err
    assert "Verification: OK" in out
    # The default ("always"): the certificate travels in the token although certReq was not set.
    assert not tsp.TimeStampReq.load((tmp_path / "req.tsq").read_bytes())["cert_req"].native
    tsa_der = x509.load_pem_x509_certificate(tsa_pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert _token_certificates(reply) == [tsa_der]


async def test_tsa_on_request_mode_is_strict_rfc_3161(openssl: str, tmp_path: Path) -> None:
    from trust_services.store import init_trust_dir

    directory = tmp_path / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    settings = TrustSettings(dir=directory, port=0, tsa_include_certificate="on_request")
    tsa_pem = directory / "tsa.pem"
    tsa_der = x509.load_pem_x509_certificate(tsa_pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    (tmp_path / "f").write_bytes(b"payload\n")
    verify = ("ts", "-verify", "-in", "reply.tsr", "-data", "f", "-CAfile", tsa_pem, "-partial_chain")
    async with run_trust_service(settings) as service:
        # No certReq: RFC 3161 says the certificate MUST NOT be in the token.
        rc, _, err = await run(
            openssl, "ts", "-query", "-data", "f", "-sha512", "-out", "req.tsq", cwd=tmp_path
        )
        assert rc == 0, err
        reply = await _post_query(service.urls.tsa, (tmp_path / "req.tsq").read_bytes())
        (tmp_path / "reply.tsr").write_bytes(reply)
        assert _token_certificates(reply) == []
        rc, out, _ = await run(openssl, *verify, cwd=tmp_path)
        assert rc != 0
        assert "Verification: OK" not in out
        rc, out, err = await run(openssl, *verify, "-untrusted", tsa_pem, cwd=tmp_path)
        assert rc == 0, err
        assert "Verification: OK" in out

        # certReq set (-cert): the certificate is included and the plain command verifies.
        rc, _, err = await run(
            openssl, "ts", "-query", "-data", "f", "-sha512", "-cert", "-out", "req.tsq", cwd=tmp_path
        )
        assert rc == 0, err
        reply = await _post_query(service.urls.tsa, (tmp_path / "req.tsq").read_bytes())
        (tmp_path / "reply.tsr").write_bytes(reply)
        assert _token_certificates(reply) == [tsa_der]
        rc, out, err = await run(openssl, *verify, cwd=tmp_path)
        assert rc == 0, err
        assert "Verification: OK" in out
