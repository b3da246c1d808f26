"""OCSP: requests as X-Road sends them; verification of real X-Road responses, of our responder's and of
openssl's; the cache; fetching over real HTTP."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from lxml import etree

from tests.crafted import (
    HOSTILE_SIGNATURE_ALGORITHMS,
    HOSTILE_VARIANTS,
    dsa_public_key,
    hostile,
    ocsp_hostile,
    oids,
    with_ocsp_certificates,
    with_ocsp_signature_algorithm,
    with_public_key,
)
from trust_services.ocsp_responder import build_ocsp_response, status_lookup
from trust_services.pki import CertifiedKey, DevPki, build_dev_pki
from xroad_mn.certs import load_certificate, profile_for
from xroad_mn.confclient.installed import load_trust_material
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.trust import ApprovedCA, OcspResponder, TrustMaterial
from xroad_mn.ocsp import (
    OCSP_REQUEST_CONTENT_TYPE,
    OCSP_RESPONSE_CONTENT_TYPE,
    OcspCache,
    OcspStatus,
    build_ocsp_request,
    fetch_ocsp_response,
    verify_ocsp_response,
)
from xroad_mn.transport.ocsp import AiohttpOcspTransport
from xroad_mn.validation import verify_chain

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
SIGNING_TIME_2024 = datetime(2024, 11, 27, 4, 14, 3, tzinfo=UTC)
THIS_UPDATE_2024 = datetime(2024, 11, 27, 3, 56, 29, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(NOW)


def trust_of(pki: DevPki, *, listed: tuple[x509.Certificate, ...] = ()) -> TrustMaterial:
    ca = ApprovedCA(
        name="dev",
        top_ca=pki.root.certificate,
        intermediates=(pki.intermediate.certificate,),
        ocsp_responders=(),
        certificate_profile_info="xroad_mn",
        authentication_only=False,
        instance=pki.instance,
        intermediate_ocsp_responders=(tuple(OcspResponder("http://ocsp.test/", c) for c in listed),),
    )
    return TrustMaterial(pki.instance, (ca,), (), 3600, None)


def respond(
    pki: DevPki, cert: CertifiedKey, *, responder: CertifiedKey | None = None, now: datetime = NOW
) -> bytes:
    issued = {c.certificate.serial_number for c in pki.issued_by_intermediate}
    return build_ocsp_response(
        build_ocsp_request(cert.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=responder or pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, issued),
        now=now,
    )


def verify(
    pki: DevPki,
    response: bytes,
    cert: CertifiedKey,
    *,
    at: datetime = NOW,
    trust: TrustMaterial | None = None,
    verify_next_update: bool = True,
    responder_certs: tuple[x509.Certificate, ...] = (),
) -> OcspStatus:
    return verify_ocsp_response(
        response,
        cert=cert.certificate,
        issuer=pki.intermediate.certificate,
        trust=trust or trust_of(pki),
        at=at,
        freshness_seconds=3600,
        verify_next_update=verify_next_update,
        responder_certs=responder_certs,
    )


def expect(code: str, words: str, call: Callable[[], object]) -> XRoadError:
    with pytest.raises(XRoadError, match=words) as e:
        call()
    assert e.value.code == code
    return e.value


# ------------------------------------------------------------------------------------------------------------
# Requests


def test_request_is_sha1_certid_without_nonce(pki: DevPki) -> None:
    request = ocsp.load_der_ocsp_request(
        build_ocsp_request(pki.member_sign.certificate, pki.intermediate.certificate)
    )
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    assert request.serial_number == pki.member_sign.certificate.serial_number
    assert len(request.extensions) == 0


def test_request_is_what_openssl_builds(pki: DevPki, openssl: str, tmp_path: Path) -> None:
    cert, issuer = tmp_path / "cert.pem", tmp_path / "issuer.pem"
    cert.write_bytes(pki.member_sign.certificate.public_bytes(serialization.Encoding.PEM))
    issuer.write_bytes(pki.intermediate.certificate.public_bytes(serialization.Encoding.PEM))
    out = tmp_path / "req.der"
    subprocess.run(
        [openssl, "ocsp", "-issuer", issuer, "-cert", cert, "-no_nonce", "-reqout", out],
        check=True,
        capture_output=True,
    )
    assert build_ocsp_request(pki.member_sign.certificate, pki.intermediate.certificate) == out.read_bytes()


# ------------------------------------------------------------------------------------------------------------
# Real X-Road responses


def asice_evidence(interop_dir: Path) -> tuple[x509.Certificate, bytes]:
    path = interop_dir / "asic/asic-core/valid-signed-message-with-attachments.asice"
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("META-INF/signatures.xml"), etree.XMLParser(resolve_entities=False))
    cert_text = root.findtext(f".//{{{DS_NS}}}X509Certificate")
    ocsp_text = root.findtext(f".//{{{XADES_NS}}}EncapsulatedOCSPValue")
    assert cert_text is not None
    assert ocsp_text is not None
    return load_certificate(cert_text.encode()), base64.b64decode("".join(ocsp_text.split()))


@pytest.fixture(scope="module")
def dev2024(interop_dir: Path) -> TrustMaterial:
    return load_trust_material(interop_dir / "globalconf/dirs/globalconf_good2_v3")


def test_real_response_verifies_at_signing_time(interop_dir: Path, dev2024: TrustMaterial) -> None:
    signer, response = asice_evidence(interop_dir)
    ca = dev2024.approved_cas[0]
    status = verify_ocsp_response(
        response,
        cert=signer,
        issuer=ca.top_ca,
        trust=dev2024,
        at=SIGNING_TIME_2024,
        freshness_seconds=dev2024.ocsp_freshness_seconds,
    )
    assert status.this_update == THIS_UPDATE_2024
    assert status.next_update is None
    assert status.responder.subject.rfc4514_string() == "CN=Test OCSP,O=Test"
    assert status.serial_number == 4


def test_real_response_stale(interop_dir: Path, dev2024: TrustMaterial) -> None:
    signer, response = asice_evidence(interop_dir)
    issuer = dev2024.approved_cas[0].top_ca
    # At its own freshness (3600 s) it is stale 3601 s after thisUpdate ...
    late = THIS_UPDATE_2024 + timedelta(seconds=3601)
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "too old",
        lambda: verify_ocsp_response(
            response, cert=signer, issuer=issuer, trust=dev2024, at=late, freshness_seconds=3600
        ),
    )
    # ... and with a tighter freshness already at signing time (17 minutes after thisUpdate).
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "too old",
        lambda: verify_ocsp_response(
            response, cert=signer, issuer=issuer, trust=dev2024, at=SIGNING_TIME_2024, freshness_seconds=600
        ),
    )
    # An hour before thisUpdate it is still accepted: X-Road's OcspVerifier sets no upper bound, and real
    # evidence (asic-core/valid-signed-message.asice) carries thisUpdate a day after producedAt.
    verify_ocsp_response(
        response,
        cert=signer,
        issuer=issuer,
        trust=dev2024,
        at=THIS_UPDATE_2024 - timedelta(hours=1),
        freshness_seconds=3600,
    )


def test_real_response_wrong_issuer_or_cert(interop_dir: Path, dev2024: TrustMaterial) -> None:
    signer, response = asice_evidence(interop_dir)
    admin_ca1 = load_certificate((interop_dir / "certs/derived-from-p12/AdminCA1.pem").read_bytes())
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "does not apply",
        lambda: verify_ocsp_response(
            response,
            cert=signer,
            issuer=admin_ca1,
            trust=dev2024,
            at=SIGNING_TIME_2024,
            freshness_seconds=3600,
        ),
    )
    other = load_certificate(
        (interop_dir / "certs/derived-from-globalconf/dev2024-good2_v3-tsa-0.pem").read_bytes()
    )
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "does not apply",
        lambda: verify_ocsp_response(
            response,
            cert=other,
            issuer=dev2024.approved_cas[0].top_ca,
            trust=dev2024,
            at=SIGNING_TIME_2024,
            freshness_seconds=3600,
        ),
    )


def test_real_response_tampered(interop_dir: Path, dev2024: TrustMaterial) -> None:
    signer, response = asice_evidence(interop_dir)
    parsed = ocsp.load_der_ocsp_response(response)
    sig = parsed.signature
    tampered = response.replace(sig, sig[:-1] + bytes([sig[-1] ^ 1]))
    assert tampered != response
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "Signature on OCSP response is not valid",
        lambda: verify_ocsp_response(
            tampered,
            cert=signer,
            issuer=dev2024.approved_cas[0].top_ca,
            trust=dev2024,
            at=SIGNING_TIME_2024,
            freshness_seconds=3600,
        ),
    )


def producer_from_p12(openssl: str, p12: Path) -> x509.Certificate:
    out = subprocess.run(
        [openssl, "pkcs12", "-legacy", "-in", p12, "-passin", "pass:test", "-nokeys", "-clcerts"],
        check=True,
        capture_output=True,
    ).stdout
    return load_certificate(out[out.index(b"-----BEGIN CERTIFICATE-----") :])


def test_real_2013_response_signed_by_the_ca_itself(interop_dir: Path, openssl: str) -> None:
    # INDEX: proxy-core-test.ocsp, signed by AdminCA1 itself, good for serial 3E5F51C4793DB444 (producer).
    producer = producer_from_p12(openssl, interop_dir / "certs/proxy-core/producer.p12")
    assert producer.serial_number == 0x3E5F51C4793DB444
    params = interop_dir / "globalconf/signed/confproxy/test-conf-simple/V2/PROXY1/EE/shared-params.xml"
    trust = TrustMaterial.from_shared_params(params.read_bytes())
    admin_ca1 = load_certificate((interop_dir / "certs/derived-from-p12/AdminCA1.pem").read_bytes())
    assert any(ca.top_ca == admin_ca1 for ca in trust.approved_cas)
    response = (interop_dir / "certs/ocsp/proxy-core-test.ocsp").read_bytes()
    at = datetime(2013, 2, 7, 9, 30, tzinfo=UTC)
    status = verify_ocsp_response(
        response,
        cert=producer,
        issuer=admin_ca1,
        trust=trust,
        at=at,
        freshness_seconds=trust.ocsp_freshness_seconds,
    )
    assert status.responder == admin_ca1
    # The sha1WithRSA-signed producer certificate chains to the approved AdminCA1 (EJBCA profile).
    ca = verify_chain(producer, intermediates=(), trust=trust, at=at)
    # Its subject is CN=producer only: the EJBCA profile (C, O, CN) names no member from it.
    profile = profile_for(ca.certificate_profile_info, ca.instance)
    expect(FaultCode.INCORRECT_CERTIFICATE, "country code", lambda: profile.member_id(producer))
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "too old",
        lambda: verify_ocsp_response(
            response,
            cert=producer,
            issuer=admin_ca1,
            trust=trust,
            at=at + timedelta(hours=1),
            freshness_seconds=3600,
        ),
    )


# ------------------------------------------------------------------------------------------------------------
# Our responder (trust_services.ocsp_responder) and our PKI


def test_good(pki: DevPki) -> None:
    status = verify_ocsp_response(
        respond(pki, pki.member_sign),
        cert=pki.member_sign.certificate,
        issuer=pki.intermediate.certificate,
        trust=trust_of(pki),
        at=NOW,
        freshness_seconds=3600,
    )
    assert status.this_update == NOW
    assert status.serial_number == pki.member_sign.certificate.serial_number
    assert status.responder == pki.ocsp_responder.certificate
    verify(pki, respond(pki, pki.member_sign_ec), pki.member_sign_ec)


def test_revoked_names_time_and_reason(pki: DevPki) -> None:
    response = respond(pki, pki.revoked_sign)
    err = expect(FaultCode.CERT_VALIDATION, "revoked", lambda: verify(pki, response, pki.revoked_sign))
    assert "key_compromise" in err.message
    revoked_at, _ = pki.revocations[pki.revoked_sign.certificate.serial_number]
    assert err.details["revocation_time"] == revoked_at.isoformat()


def test_unknown_status(pki: DevPki) -> None:
    # A CA that does not know the serial answers UNKNOWN.
    response = build_ocsp_response(
        build_ocsp_request(pki.member_sign.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, set()),
        now=NOW,
    )
    expect(FaultCode.CERT_VALIDATION, "UNKNOWN", lambda: verify(pki, response, pki.member_sign))


def test_certid_names_the_issuer_of_the_certificate(pki: DevPki) -> None:
    # A foreign certificate's CertID hashes its own issuer's name: no answer about it applies here.
    stranger = build_dev_pki(NOW, instance="XX").member_sign
    response = build_ocsp_response(
        build_ocsp_request(stranger.certificate, pki.intermediate.certificate),
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup(pki.revocations, {stranger.certificate.serial_number}),
        now=NOW,
    )
    expect(FaultCode.INCORRECT_VALIDATION_INFO, "does not apply", lambda: verify(pki, response, stranger))


def test_freshness_boundaries(pki: DevPki) -> None:
    response = respond(pki, pki.member_sign)
    verify(pki, response, pki.member_sign, at=NOW + timedelta(seconds=3600))
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "too old",
        lambda: verify(pki, response, pki.member_sign, at=NOW + timedelta(seconds=3601)),
    )
    # No upper bound on thisUpdate, as in X-Road (see test_real_response_stale).
    verify(pki, response, pki.member_sign, at=NOW - timedelta(minutes=6))


def test_ca_itself_may_respond(pki: DevPki) -> None:
    verify(pki, respond(pki, pki.member_sign, responder=pki.intermediate), pki.member_sign)


def test_unauthorized_responder_unless_listed(pki: DevPki) -> None:
    # The TSA has no id-kp-OCSPSigning and was issued by the root, not by the member's CA.
    response = respond(pki, pki.member_sign, responder=pki.tsa)
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO, "not authorized", lambda: verify(pki, response, pki.member_sign)
    )
    verify(pki, response, pki.member_sign, trust=trust_of(pki, listed=(pki.tsa.certificate,)))


def test_responder_cert_must_be_found(pki: DevPki) -> None:
    # Strip the embedded responder certificate: the verifier finds it only when listed or given.
    single = ocsp.load_der_ocsp_response(respond(pki, pki.member_sign))
    stripped = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=pki.member_sign.certificate,
            issuer=pki.intermediate.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=single.this_update_utc,
            next_update=None,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.ocsp_responder.certificate)
        .sign(pki.ocsp_responder.private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "Could not find OCSP certificate",
        lambda: verify(pki, stripped, pki.member_sign),
    )
    verify(pki, stripped, pki.member_sign, responder_certs=(pki.ocsp_responder.certificate,))
    verify(pki, stripped, pki.member_sign, trust=trust_of(pki, listed=(pki.ocsp_responder.certificate,)))


def _with_next_update(pki: DevPki, next_update: datetime) -> bytes:
    return (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=pki.member_sign.certificate,
            issuer=pki.intermediate.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - timedelta(minutes=10),
            next_update=next_update,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, pki.ocsp_responder.certificate)
        .certificates([pki.ocsp_responder.certificate])
        .sign(pki.ocsp_responder.private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def test_next_update(pki: DevPki) -> None:
    past = _with_next_update(pki, NOW - timedelta(minutes=1))
    expect(FaultCode.INCORRECT_VALIDATION_INFO, "nextUpdate", lambda: verify(pki, past, pki.member_sign))
    verify(pki, past, pki.member_sign, verify_next_update=False)
    verify(pki, _with_next_update(pki, NOW + timedelta(minutes=1)), pki.member_sign)


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x0a\x01\x01", b"garbage"])
def test_unusable_responses(pki: DevPki, data: bytes) -> None:
    with pytest.raises(XRoadError) as e:
        verify(pki, data, pki.member_sign)
    assert e.value.code == FaultCode.INCORRECT_VALIDATION_INFO


def test_non_successful_status(pki: DevPki) -> None:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    data = response.public_bytes(serialization.Encoding.DER)
    expect(FaultCode.INCORRECT_VALIDATION_INFO, "TRY_LATER", lambda: verify(pki, data, pki.member_sign))


def test_openssl_responder_is_accepted(openssl: str, tmp_path: Path) -> None:
    """An independent responder: `openssl ocsp -index` answers with thisUpdate = the real clock."""
    now = datetime.now(UTC)
    live = build_dev_pki(now)
    files = {
        "ca.pem": live.intermediate.certificate,
        "rsigner.pem": live.ocsp_responder.certificate,
        "cert.pem": live.member_sign.certificate,
    }
    for name, cert in files.items():
        (tmp_path / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "rkey.pem").write_bytes(
        live.ocsp_responder.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    expiry = live.member_sign.certificate.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    subject = "/" + "/".join(a.rfc4514_string() for a in live.member_sign.certificate.subject)
    serial = f"{live.member_sign.certificate.serial_number:X}"
    (tmp_path / "index.txt").write_text(f"V\t{expiry}\t\t{serial}\tunknown\t{subject}\n")
    (tmp_path / "req.der").write_bytes(
        build_ocsp_request(live.member_sign.certificate, live.intermediate.certificate)
    )
    responder_args = ["-index", "index.txt", "-CA", "ca.pem", "-rsigner", "rsigner.pem", "-rkey", "rkey.pem"]
    subprocess.run(
        [openssl, "ocsp", *responder_args, "-reqin", "req.der", "-respout", "resp.der"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    status = verify_ocsp_response(
        (tmp_path / "resp.der").read_bytes(),
        cert=live.member_sign.certificate,
        issuer=live.intermediate.certificate,
        trust=trust_of(live),
        at=datetime.now(UTC),
        freshness_seconds=3600,
    )
    assert status.responder == live.ocsp_responder.certificate


# ------------------------------------------------------------------------------------------------------------
# Cache


def test_cache_serves_only_fresh_entries(pki: DevPki) -> None:
    cache = OcspCache()
    response = respond(pki, pki.member_sign)
    status = verify_ocsp_response(
        response,
        cert=pki.member_sign.certificate,
        issuer=pki.intermediate.certificate,
        trust=trust_of(pki),
        at=NOW,
        freshness_seconds=3600,
    )
    cache.put(pki.member_sign.certificate, response, status)
    assert (
        cache.get(pki.member_sign.certificate, at=NOW + timedelta(minutes=59), freshness_seconds=3600)
        == response
    )
    assert cache.get(pki.member_sign_ec.certificate, at=NOW, freshness_seconds=3600) is None
    assert (
        cache.get(pki.member_sign.certificate, at=NOW + timedelta(minutes=61), freshness_seconds=3600) is None
    )
    assert len(cache) == 0


def test_cache_is_bounded_and_evicts(pki: DevPki) -> None:
    cache = OcspCache(max_entries=2)
    status = verify_ocsp_response(
        respond(pki, pki.member_sign),
        cert=pki.member_sign.certificate,
        issuer=pki.intermediate.certificate,
        trust=trust_of(pki),
        at=NOW,
        freshness_seconds=3600,
    )
    for ck in (pki.member_sign, pki.member_sign_ec, pki.member_auth):
        cache.put(ck.certificate, b"r", status)
    assert len(cache) == 2
    assert cache.get(pki.member_sign.certificate, at=NOW, freshness_seconds=3600) is None
    assert cache.evict_stale(at=NOW + timedelta(hours=2), freshness_seconds=3600) == 2
    assert len(cache) == 0


# ------------------------------------------------------------------------------------------------------------
# Transport over real HTTP


@pytest.fixture
async def responder_url(pki: DevPki) -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.content_type)
        if request.path == "/broken":
            return web.Response(status=503, text="down")
        body = await request.read()
        issued = {c.certificate.serial_number for c in pki.issued_by_intermediate}
        der = build_ocsp_response(
            body,
            issuer=pki.intermediate,
            responder=pki.ocsp_responder,
            status_of=status_lookup(pki.revocations, issued),
            now=NOW,
        )
        return web.Response(body=der, content_type=OCSP_RESPONSE_CONTENT_TYPE)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_fetch_verifies_and_caches(pki: DevPki, responder_url: tuple[str, list[str]]) -> None:
    url, seen = responder_url
    cache = OcspCache()
    async with aiohttp.ClientSession() as session:
        transport = AiohttpOcspTransport(f"{url}/ocsp", session)
        trust = trust_of(pki)
        first = await fetch_ocsp_response(
            pki.member_sign.certificate,
            pki.intermediate.certificate,
            transport=transport,
            trust=trust,
            at=NOW,
            cache=cache,
        )
        second = await fetch_ocsp_response(
            pki.member_sign.certificate,
            pki.intermediate.certificate,
            transport=transport,
            trust=trust,
            at=NOW,
            cache=cache,
        )
        assert first == second
        assert seen == [OCSP_REQUEST_CONTENT_TYPE]
        with pytest.raises(XRoadError) as e:
            await fetch_ocsp_response(
                pki.revoked_sign.certificate,
                pki.intermediate.certificate,
                transport=transport,
                trust=trust,
                at=NOW,
                cache=cache,
            )
        assert e.value.code == FaultCode.CERT_VALIDATION
        assert len(cache) == 1


async def test_transport_errors(responder_url: tuple[str, list[str]]) -> None:
    url, _ = responder_url
    async with aiohttp.ClientSession() as session:
        with pytest.raises(XRoadError, match="HTTP 503") as e:
            await AiohttpOcspTransport(f"{url}/broken", session).send(b"x")
        assert e.value.code == FaultCode.OCSP_FAILED
        with pytest.raises(XRoadError, match="unreachable") as e:
            await AiohttpOcspTransport("http://127.0.0.1:1/ocsp", session).send(b"x")
        assert e.value.code == FaultCode.OCSP_FAILED


def test_real_2017_response_with_reversed_responder_name(interop_dir: Path) -> None:
    # sign-0.xml's response names its responder (CN=consumer, listed in EE's globalconf for CA "Cyber") with
    # the RDN sequence reversed and other string types; X-Road's X500Name.equals accepts that, so do we.
    trust = load_trust_material(interop_dir / "globalconf/dirs/globalconf_good_v2")
    root = etree.parse(
        str(interop_dir / "signatures/common-test/sign-0.xml"), etree.XMLParser(resolve_entities=False)
    ).getroot()
    cert_text = root.findtext(f".//{{{DS_NS}}}X509Certificate")
    ocsp_text = root.findtext(f".//{{{XADES_NS}}}EncapsulatedOCSPValue")
    assert cert_text is not None
    assert ocsp_text is not None
    signer = load_certificate(cert_text.encode())
    response = base64.b64decode("".join(ocsp_text.split()))
    issuer = trust.approved_cas[0].top_ca
    at = datetime(2017, 9, 9, 9, 15, 30, tzinfo=UTC)
    status = verify_ocsp_response(
        response,
        cert=signer,
        issuer=issuer,
        trust=trust,
        at=at,
        freshness_seconds=trust.ocsp_freshness_seconds,
    )
    assert status.responder.subject != ocsp.load_der_ocsp_response(response).responder_name
    # EE's freshness is 42 s.
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "too old",
        lambda: verify_ocsp_response(
            response,
            cert=signer,
            issuer=issuer,
            trust=trust,
            at=at + timedelta(seconds=60),
            freshness_seconds=42,
        ),
    )


# ------------------------------------------------------------------------------------------------------------
# Hostile responses and responders: every verdict is incorrect_validation_info


@pytest.mark.parametrize("variant", HOSTILE_SIGNATURE_ALGORITHMS)
def test_hostile_response_signature_algorithm_is_invalid(pki: DevPki, variant: str) -> None:
    response = ocsp_hostile(respond(pki, pki.member_sign), variant)
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO, "OCSP response", lambda: verify(pki, response, pki.member_sign)
    )


@pytest.mark.parametrize("variant", HOSTILE_VARIANTS)
def test_hostile_responder_certificate_is_invalid(pki: DevPki, variant: str) -> None:
    """A delegated responder whose certificate claims an unknown or unusable signature algorithm (so the CA
    cannot be shown to have issued it) or carries an X25519 key (which cannot have signed)."""
    responder = hostile(pki.ocsp_responder.certificate, variant)
    response = with_ocsp_certificates(respond(pki, pki.member_sign), [responder])
    words = "Signature on OCSP response is not valid" if variant == "x25519-key" else "not authorized"
    expect(FaultCode.INCORRECT_VALIDATION_INFO, words, lambda: verify(pki, response, pki.member_sign))


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_dsa_responder_where_rsa_signed_is_invalid(pki: DevPki) -> None:
    cert = with_public_key(pki.ocsp_responder.certificate, dsa_public_key())
    response = with_ocsp_certificates(respond(pki, pki.member_sign), [cert])
    expect(
        FaultCode.INCORRECT_VALIDATION_INFO,
        "Signature on OCSP response is not valid",
        lambda: verify(pki, response, pki.member_sign),
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(oid=oids())
def test_fuzz_response_signature_algorithm_oids(pki: DevPki, oid: str) -> None:
    """Any signatureAlgorithm OID on a response: a verdict, never a library exception."""
    response = with_ocsp_signature_algorithm(respond(pki, pki.member_sign), oid)
    with contextlib.suppress(XRoadError):
        verify(pki, response, pki.member_sign)
