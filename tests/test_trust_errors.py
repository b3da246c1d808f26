"""Bad input to the trust services: always HTTP 400 (404 for an unknown serial) in X-Road's error format."""

from __future__ import annotations

import json
from collections.abc import Mapping

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trust_services.app import MAX_BODY_BYTES, RunningTrustService


def csr_der(*attributes: tuple[x509.ObjectIdentifier, str]) -> bytes:
    subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


MEMBER = ((NameOID.COUNTRY_NAME, "MN"), (NameOID.ORGANIZATION_NAME, "GOV"), (NameOID.COMMON_NAME, "5012345"))


def tampered_signature_csr() -> bytes:
    """A well-formed CSR whose self-signature no longer matches (last signature byte flipped)."""
    der = bytearray(csr_der(*MEMBER))
    der[-1] ^= 0x01
    return bytes(der)


async def expect_error(
    resp: aiohttp.ClientResponse, status: int, code: str, message_part: str = ""
) -> Mapping[str, str]:
    body = await resp.read()
    assert resp.status == status, body
    assert resp.headers["X-Road-Error"] == code
    assert resp.headers["Content-Type"].startswith("application/json")
    payload = json.loads(body)
    assert set(payload) == {"type", "message", "detail"}
    assert payload["type"] == code
    assert message_part.lower() in payload["message"].lower()
    assert "Traceback" not in payload["message"]
    return dict(payload)


CSR_CASES = {
    "not a CSR": (b"garbage, not a certificate request", "client.invalid_csr", "malformed"),
    "truncated PEM": (
        b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
        "client.invalid_csr",
        "malformed",
    ),
    "bad self-signature": (tampered_signature_csr(), "client.invalid_csr", "self-signature"),
    "space in member code": (
        csr_der(
            (NameOID.COUNTRY_NAME, "MN"),
            (NameOID.ORGANIZATION_NAME, "GOV"),
            (NameOID.COMMON_NAME, "50 12345"),
        ),
        "client.invalid_csr",
        "member code",
    ),
    "other instance": (
        csr_der(
            (NameOID.COUNTRY_NAME, "EE"), (NameOID.ORGANIZATION_NAME, "GOV"), (NameOID.COMMON_NAME, "5012345")
        ),
        "client.invalid_csr",
        "instance",
    ),
    "no member class": (
        csr_der((NameOID.COUNTRY_NAME, "MN"), (NameOID.COMMON_NAME, "5012345")),
        "client.invalid_csr",
        "member class",
    ),
    "extra attribute": (
        csr_der(*MEMBER, (NameOID.ORGANIZATIONAL_UNIT_NAME, "IT")),
        "client.invalid_csr",
        "not allowed",
    ),
    "empty body": (b"", "client.invalid_csr", "no certificate signing request"),
}


@pytest.mark.parametrize("case", list(CSR_CASES))
async def test_bad_csr_is_refused(trust_service: RunningTrustService, case: str) -> None:
    body, code, message = CSR_CASES[case]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{trust_service.urls.ca}?profile=sign", data=body, headers={"Content-Type": "application/pkcs10"}
        ) as resp,
    ):
        await expect_error(resp, 400, code, message)
    assert not any((trust_service.directory / "issued").iterdir())


async def test_auth_profile_needs_a_common_name(trust_service: RunningTrustService) -> None:
    body = csr_der((NameOID.ORGANIZATION_NAME, "GOV"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{trust_service.urls.ca}?profile=auth", data=body) as resp,
    ):
        await expect_error(resp, 400, "client.invalid_csr", "CN")


@pytest.mark.parametrize("query", ["", "?profile=", "?profile=tls"])
async def test_unknown_profile_is_refused(trust_service: RunningTrustService, query: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{trust_service.urls.ca}{query}", data=csr_der(*MEMBER)) as resp,
    ):
        await expect_error(resp, 400, "client.bad_request", "profile")


REVOCATION_CASES: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{serial: 1", "not JSON"),
    "not an object": (b"[1, 2]", "JSON object"),
    "serial missing": (b'{"reason": "keyCompromise"}', "serial"),
    "serial a string": (b'{"serial": "12", "reason": "keyCompromise"}', "serial"),
    "serial a boolean": (b'{"serial": true}', "serial"),
    "serial negative": (b'{"serial": -5}', "serial"),
    "reason unknown": (b'{"serial": 5, "reason": "bored"}', "reason"),
    "reason removeFromCRL": (b'{"serial": 5, "reason": "removeFromCRL"}', "reason"),
    "reason not a string": (b'{"serial": 5, "reason": 1}', "reason"),
    "unknown field": (b'{"serial": 5, "why": "x"}', "unknown"),
    "not UTF-8": (b'{"serial": "\xff"}', "not JSON"),
}


@pytest.mark.parametrize("case", list(REVOCATION_CASES))
async def test_bad_revocation_json_is_refused(trust_service: RunningTrustService, case: str) -> None:
    body, message = REVOCATION_CASES[case]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            trust_service.urls.revocations, data=body, headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        payload = await expect_error(resp, 400, resp.headers.get("X-Road-Error", ""), message)
    assert payload["type"] in {"client.invalid_body", "client.bad_request"}


async def test_revoking_an_unknown_serial_is_404(trust_service: RunningTrustService) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            trust_service.urls.revocations, json={"serial": 123456789, "reason": "keyCompromise"}
        ) as resp,
    ):
        await expect_error(resp, 404, "client.not_found", "123456789")
    async with aiohttp.ClientSession() as session, session.get(f"{trust_service.urls.ca}/123456789") as resp:
        await expect_error(resp, 404, "client.not_found")


async def test_garbage_ocsp_requests_are_refused(trust_service: RunningTrustService) -> None:
    async with aiohttp.ClientSession() as session:
        for body in (b"\x30\x03\x02\x01\x01", b"not DER at all", b""):
            async with session.post(
                trust_service.urls.ocsp, data=body, headers={"Content-Type": "application/ocsp-request"}
            ) as resp:
                await expect_error(resp, 400, "client.invalid_ocsp_request")
        async with session.get(f"{trust_service.urls.ocsp}/bm90IGFuIE9DU1AgcmVxdWVzdA==") as resp:
            await expect_error(resp, 400, "client.invalid_ocsp_request", "malformed")
        async with session.get(f"{trust_service.urls.ocsp}/%%%not-base64") as resp:
            await expect_error(resp, 400, "client.invalid_ocsp_request", "base64")


async def test_garbage_timestamp_queries_are_refused(trust_service: RunningTrustService) -> None:
    async with aiohttp.ClientSession() as session:
        for body in (b"\x30\x03\x02\x01\x01", b"garbage", b"\x30\x80", b""):
            async with session.post(
                trust_service.urls.tsa, data=body, headers={"Content-Type": "application/timestamp-query"}
            ) as resp:
                await expect_error(resp, 400, "client.invalid_timestamp_request")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ca/certificates?profile=sign", "application/pkcs10"),
        ("/ca/revocations", "application/json"),
        ("/ocsp", "application/ocsp-request"),
        ("/tsa", "application/timestamp-query"),
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
async def test_oversize_bodies_are_refused(
    trust_service: RunningTrustService, path: str, content_type: str, chunked: bool
) -> None:
    payload = b"\x30" * (MAX_BODY_BYTES + 1)

    async def stream() -> object:
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    data: object = stream() if chunked else payload
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{trust_service.urls.base}{path}", data=data, headers={"Content-Type": content_type}
        ) as resp,
    ):
        await expect_error(resp, 400, "client.request_too_large", "larger than")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ca/certificates?profile=sign", "application/json"),
        ("/ca/revocations", "text/plain"),
        ("/ocsp", "application/octet-stream"),
        ("/tsa", "text/plain"),
    ],
)
async def test_wrong_content_type_is_refused(
    trust_service: RunningTrustService, path: str, content_type: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{trust_service.urls.base}{path}", data=b"x", headers={"Content-Type": content_type}
        ) as resp,
    ):
        await expect_error(resp, 400, "client.invalid_content_type", content_type)


async def test_unknown_route_and_method_use_xroad_errors(trust_service: RunningTrustService) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{trust_service.urls.base}/nowhere") as resp:
            await expect_error(resp, 404, "client.not_found")
        async with session.delete(trust_service.urls.tsa) as resp:
            await expect_error(resp, 405, "client.invalid_http_method")
        async with session.get(
            f"{trust_service.urls.base}/nowhere", headers={"Accept": "application/xml"}
        ) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"].startswith("text/xml")
            assert b"<type>client.not_found</type>" in await resp.read()
