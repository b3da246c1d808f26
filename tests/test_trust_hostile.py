"""Hostile but well-formed input to the trust services: always a 4xx X-Road error, never a 500.

OCSP requests, CSRs and time-stamp queries are built field by field with asn1crypto (so they can say what
``cryptography``'s builders refuse to: a 5-byte SHA-1 hash, a negative serial, two nonces, an x400Address)
and sent to the real services on 127.0.0.1. The hypothesis tests draw those fields at random.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import structlog
from asn1crypto import core, tsp
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trust_services.app import RunningTrustService, TrustSettings, check_bind_address, run_trust_service
from trust_services.ca import (
    MAX_ALT_NAMES,
    Profile,
    ServerSubject,
    check_alt_names,
    issue_from_csr,
    server_from_subject,
)
from trust_services.ocsp_responder import MAX_NONCE_BYTES, parse_ocsp_request
from trust_services.pki import DevPki, build_dev_pki, server_subject
from trust_services.store import init_trust_dir
from xroad_mn.errors import XRoadError
from xroad_mn.wire.faults import http_status_of

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> DevPki:
    return build_dev_pki(NOW)


# --- Builders (asn1crypto, any field value) -----------------------------------------------------------


def ocsp_request(
    alg: str = "sha1",
    *,
    name_hash: bytes = b"\x00" * 20,
    key_hash: bytes = b"\x00" * 20,
    serial: int = 1,
    count: int = 1,
    extensions: Sequence[Mapping[str, object]] | None = None,
) -> bytes:
    cert_id = {
        "hash_algorithm": {"algorithm": alg},
        "issuer_name_hash": name_hash,
        "issuer_key_hash": key_hash,
        "serial_number": serial,
    }
    tbs: dict[str, object] = {"request_list": [{"req_cert": cert_id}] * count}
    if extensions is not None:
        tbs["request_extensions"] = list(extensions)
    return bytes(asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump())


def nonce(value: bytes) -> dict[str, object]:
    return {"extn_id": "nonce", "critical": False, "extn_value": core.OctetString(value)}


def tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length)."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


GENERAL_NAME_TAGS = {
    "otherName": 0xA0,
    "rfc822Name": 0x81,
    "dNSName": 0x82,
    "x400Address": 0xA3,
    "directoryName": 0xA4,
    "ediPartyName": 0xA5,
    "uniformResourceIdentifier": 0x86,
    "iPAddress": 0x87,
    "registeredID": 0x88,
}
OTHER_NAME = b"\x06\x03\x2a\x03\x04" + tlv(0xA0, tlv(0x0C, b"a"))  # 1.2.3.4, [0] UTF8String "a"
X400_ADDRESS = b"\x05\x00"
EDI_PARTY_NAME = tlv(0xA1, tlv(0x0C, b"party"))


SAN_OID = b"\x06\x03\x55\x1d\x11"  # 2.5.29.17
EXTENSION_REQUEST_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e"  # 1.2.840.113549.1.9.14
ECDSA_WITH_SHA256 = tlv(0x30, b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02")


def san_extension(*general_names: bytes, critical: bool = False) -> bytes:
    """A DER subjectAltName Extension holding ``general_names`` as given (no encoder checks them)."""
    flag = b"\x01\x01\xff" if critical else b""
    return tlv(0x30, SAN_OID + flag + tlv(0x04, tlv(0x30, b"".join(general_names))))


def raw_csr(subject: Mapping[str, str], extensions: Sequence[bytes] | None = None) -> bytes:
    """A correctly self-signed PKCS#10 request (EC P-256) with any subject and requested extensions (DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    attributes = b""
    if extensions is not None:
        attributes = tlv(0x30, EXTENSION_REQUEST_OID + tlv(0x31, tlv(0x30, b"".join(extensions))))
    name = asn1_x509.Name.build(dict(subject)).dump()
    info = tlv(0x30, b"\x02\x01\x00" + name + spki + tlv(0xA0, attributes))
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, info + ECDSA_WITH_SHA256 + tlv(0x03, b"\x00" + signature))


SERVER = {"country_name": "MN", "organization_name": "GOV", "common_name": "ss1"}


def csr(subject: x509.Name, alt_names: Sequence[x509.GeneralName] = ()) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(alt_names)), critical=False)
    key = ec.generate_private_key(ec.SECP256R1())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def auth(pki: DevPki, request: bytes) -> x509.Certificate:
    return issue_from_csr(request, Profile.AUTH, ca=pki.intermediate, instance="MN", now=NOW)


def refused(call: object, *args: object, **kwargs: object) -> XRoadError:
    assert callable(call)
    with pytest.raises(XRoadError) as exc:
        call(*args, **kwargs)
    assert http_status_of(exc.value) == 400, exc.value
    return exc.value


# --- OCSP ---------------------------------------------------------------------------------------------

OCSP_CASES: dict[str, tuple[bytes, str]] = {
    "sha1 with 5-byte hashes": (ocsp_request(name_hash=b"\0" * 5, key_hash=b"\0" * 5), "5 octets"),
    "sha256 with 20-byte hashes": (ocsp_request("sha256"), "sha256 hashes are 32"),
    "sha1 key hash too long": (ocsp_request(key_hash=b"\0" * 21), "issuer key hash is 21 octets"),
    "negative serial": (ocsp_request(serial=-5), "negative"),
    "no certificate": (ocsp_request(count=0), "names no certificate"),
    "two certificates": (ocsp_request(count=2), "2 certificates"),
    "two nonces": (ocsp_request(extensions=[nonce(b"a"), nonce(b"b")]), "more than once"),
    "empty nonce": (ocsp_request(extensions=[nonce(b"")]), "0 octets"),
    "33-octet nonce": (ocsp_request(extensions=[nonce(b"n" * 33)]), "33 octets"),
    "10000-octet nonce": (ocsp_request(extensions=[nonce(b"n" * 10000)]), "10000 octets"),
    "critical unknown extension": (
        ocsp_request(
            extensions=[
                {"extn_id": "1.2.3.4", "critical": True, "extn_value": core.ParsableOctetString(b"x")}
            ]
        ),
        "critical",
    ),
    "md5 CertID": (ocsp_request("md5", name_hash=b"\0" * 16, key_hash=b"\0" * 16), "not supported"),
}


@pytest.mark.parametrize("case", list(OCSP_CASES))
def test_hostile_ocsp_requests_are_invalid_ocsp_request(case: str) -> None:
    data, message = OCSP_CASES[case]
    error = refused(parse_ocsp_request, data)
    assert error.has_code("invalid_ocsp_request")
    assert message in error.message
    assert "more than one request" not in error.message


@pytest.mark.parametrize("length", [1, 16, MAX_NONCE_BYTES])
def test_nonces_of_1_to_32_octets_are_echoed(pki: DevPki, length: int) -> None:
    from trust_services.ocsp_responder import build_ocsp_response, status_lookup

    value = bytes(range(length))
    request = ocsp_request(name_hash=b"\1" * 20, key_hash=b"\2" * 20, serial=0, extensions=[nonce(value)])
    der = build_ocsp_response(
        request,
        issuer=pki.intermediate,
        responder=pki.ocsp_responder,
        status_of=status_lookup({}, set()),
        now=NOW,
    )
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == value


async def expect_x_road_400(resp: aiohttp.ClientResponse, code: str, message: str = "") -> None:
    body = await resp.read()
    assert resp.status == 400, body
    assert resp.headers["X-Road-Error"] == code
    payload = json.loads(body)
    assert payload["type"] == code
    assert message in payload["message"]


@pytest.mark.parametrize(
    "case", ["sha1 with 5-byte hashes", "sha256 with 20-byte hashes", "negative serial", "two nonces"]
)
async def test_hostile_ocsp_requests_over_http_post_and_get(
    trust_service: RunningTrustService, case: str
) -> None:
    data, message = OCSP_CASES[case]
    encoded = urllib.parse.quote(base64.b64encode(data).decode(), safe="")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            trust_service.urls.ocsp, data=data, headers={"Content-Type": "application/ocsp-request"}
        ) as resp:
            await expect_x_road_400(resp, "client.invalid_ocsp_request", message)
        async with session.get(f"{trust_service.urls.ocsp}/{encoded}") as resp:
            await expect_x_road_400(resp, "client.invalid_ocsp_request", message)


# --- Auth-profile CSRs ----------------------------------------------------------------------------------

CSR_CASES: dict[str, tuple[bytes, str]] = {
    "SAN extension twice": (
        raw_csr(SERVER, [san_extension(tlv(0x82, b"a.mn")), san_extension(tlv(0x82, b"b.mn"))]),
        "more than once",
    ),
    "x400Address SAN": (raw_csr(SERVER, [san_extension(tlv(0xA3, X400_ADDRESS))]), "unsupported type"),
    "ediPartyName SAN": (raw_csr(SERVER, [san_extension(tlv(0xA5, EDI_PARTY_NAME))]), "unsupported type"),
    "otherName SAN": (raw_csr(SERVER, [san_extension(tlv(0xA0, OTHER_NAME))]), "OtherName"),
    "wildcard DNS": (raw_csr(SERVER, [san_extension(tlv(0x82, b"*.gov.mn"))]), "wildcard"),
    "DNS with space": (raw_csr(SERVER, [san_extension(tlv(0x82, b"ss 1.gov.mn"))]), "not a host name"),
    "DNS empty label": (raw_csr(SERVER, [san_extension(tlv(0x82, b"ss1..mn"))]), "not a host name"),
    "DNS leading hyphen": (raw_csr(SERVER, [san_extension(tlv(0x82, b"-ss1.mn"))]), "not a host name"),
    "DNS label of 64": (raw_csr(SERVER, [san_extension(tlv(0x82, b"a" * 64 + b".mn"))]), "not a host name"),
    "DNS empty": (raw_csr(SERVER, [san_extension(tlv(0x82, b""))]), "not a host name"),
    "IP 0.0.0.0": (raw_csr(SERVER, [san_extension(tlv(0x87, bytes(4)))]), "unspecified"),
    "IP ::": (raw_csr(SERVER, [san_extension(tlv(0x87, bytes(16)))]), "unspecified"),
    "IP multicast": (raw_csr(SERVER, [san_extension(tlv(0x87, bytes([224, 0, 0, 1])))]), "multicast"),
    "IP broadcast": (raw_csr(SERVER, [san_extension(tlv(0x87, b"\xff" * 4))]), "broadcast"),
    "IP network": (
        raw_csr(SERVER, [san_extension(tlv(0x87, bytes([10, 0, 0, 0, 255, 0, 0, 0])))]),
        "network",
    ),
    "URI SAN": (raw_csr(SERVER, [san_extension(tlv(0x86, b"https://ss1.gov.mn/"))]), "not allowed"),
    "email SAN": (raw_csr(SERVER, [san_extension(tlv(0x81, b"admin@gov.mn"))]), "not allowed"),
    "registeredID SAN": (raw_csr(SERVER, [san_extension(tlv(0x88, b"\x2a\x03"))]), "not allowed"),
    "directoryName SAN": (
        raw_csr(SERVER, [san_extension(tlv(0xA4, asn1_x509.Name.build({"common_name": "x"}).dump()))]),
        "not allowed",
    ),
    "same DNS twice": (
        raw_csr(SERVER, [san_extension(tlv(0x82, b"ss1.mn"), tlv(0x82, b"ss1.mn"))]),
        "more than once",
    ),
    "too many names": (
        raw_csr(SERVER, [san_extension(*(tlv(0x82, f"h{i}.mn".encode()) for i in range(MAX_ALT_NAMES + 1)))]),
        "at most",
    ),
    "no O": (raw_csr({"country_name": "MN", "common_name": "ss1"}), "O (member class)"),
    "no CN": (raw_csr({"country_name": "MN", "organization_name": "GOV"}), "CN (server code)"),
    "other instance": (raw_csr({**SERVER, "country_name": "EE"}), "instance"),
    "OU": (raw_csr({**SERVER, "organizational_unit_name": "IT"}), "not allowed"),
    "server code with space": (raw_csr({**SERVER, "common_name": "ss 1"}), "server code"),
    "host name as CN": (raw_csr({**SERVER, "common_name": "ss1.gov.mn"}), ""),
    "member code with slash": (raw_csr({**SERVER, "serial_number": "MN/ss1/GOV"}), "member code"),
}


@pytest.mark.parametrize("case", list(CSR_CASES))
def test_auth_profile_refuses_what_a_security_server_certificate_must_not_say(pki: DevPki, case: str) -> None:
    data, message = CSR_CASES[case]
    if case == "host name as CN":  # dots are strict X-Road characters: a valid (odd) server code
        auth(pki, data)
        return
    error = refused(auth, pki, data)
    assert error.has_code("invalid_csr")
    assert message in error.message


@pytest.mark.parametrize(
    "case", ["SAN extension twice", "x400Address SAN", "ediPartyName SAN", "wildcard DNS"]
)
async def test_hostile_csrs_over_http(trust_service: RunningTrustService, case: str) -> None:
    data, message = CSR_CASES[case]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{trust_service.urls.ca}?profile=auth", data=data, headers={"Content-Type": "application/pkcs10"}
        ) as resp,
    ):
        await expect_x_road_400(resp, "client.invalid_csr", message)
    assert not any((trust_service.directory / "issued").iterdir())


def test_auth_profile_rebuilds_a_security_server_subject(pki: DevPki) -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "ss2"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "7000001"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "COM"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MN"),
        ]
    )
    names = [
        x509.DNSName("ss2.example.mn"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Address("10.1.2.3")),
        x509.IPAddress(ipaddress.IPv6Address("::1")),
    ]
    cert = auth(pki, csr(subject, names))
    assert cert.subject == server_subject("MN", "COM", "ss2", "7000001")
    assert [a.oid for a in cert.subject] == [
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.COMMON_NAME,
        NameOID.SERIAL_NUMBER,
    ]
    assert list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == names


def test_dev_pki_auth_certificate_follows_the_auth_profile(pki: DevPki) -> None:
    cert = pki.member_auth.certificate
    assert server_from_subject(cert.subject, "MN") == ServerSubject("MN", "GOV", "ss1", "5012345")
    names = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    assert check_alt_names(names) == names
    # The CA, asked for the same, issues the same subject and alternative names.
    issued = auth(pki, csr(cert.subject, names))
    assert issued.subject == cert.subject
    assert list(issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == names


# --- CA URLs, binding, init --force ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [("%C2%B2", 400), ("%D9%A3", 400), ("1" * 5000, 400), ("1" * 41, 400), ("-1", 400), ("0012", 404)],
)
async def test_certificate_serial_in_the_url_is_ascii_decimal(
    trust_service: RunningTrustService, path: str, status: int
) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{trust_service.urls.ca}/{path}") as resp:
        body = await resp.read()
        assert resp.status == status, body
        assert resp.headers["X-Road-Error"] == ("client.bad_request" if status == 400 else "client.not_found")


async def test_overlong_request_line_is_400_not_500(trust_service: RunningTrustService) -> None:
    """aiohttp answers before the application sees the request (its own plain-text 400; see app.py)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{trust_service.urls.ocsp}/{'A' * 9000}") as resp,
    ):
        assert resp.status == 400
        assert "Traceback" not in await resp.text()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_flag(host: str) -> None:
    check_bind_address(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "trust.example.mn"])
def test_other_addresses_need_allow_remote(host: str) -> None:
    error = refused_settings(host)
    assert "--allow-remote" in error.message
    assert error.has_code("invalid_settings")


def refused_settings(host: str) -> XRoadError:
    with pytest.raises(XRoadError) as exc:
        check_bind_address(host, allow_remote=False)
    return exc.value


async def test_serving_on_every_interface_needs_the_flag_and_warns(tmp_path: Path) -> None:
    directory = tmp_path / "trust"
    await asyncio.to_thread(init_trust_dir, directory, now=datetime.now(UTC))
    with pytest.raises(XRoadError, match="--allow-remote"):
        async with run_trust_service(TrustSettings(dir=directory, host="0.0.0.0", port=0)):
            pytest.fail("served without --allow-remote")
    settings = TrustSettings(dir=directory, host="0.0.0.0", port=0, allow_remote=True)
    with structlog.testing.capture_logs() as logs:
        async with (
            run_trust_service(settings) as service,
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{service.port}/ca/ca.pem") as resp,
        ):
            assert resp.status == 200
    assert any(e["event"] == "trust_services_remote" and e["log_level"] == "warning" for e in logs)


def test_serve_command_refuses_a_public_host_without_the_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trust_services.cli import app

    directory = tmp_path / "trust"
    init_trust_dir(directory, now=datetime.now(UTC))
    result = CliRunner().invoke(app, ["serve", "--dir", str(directory), "--host", "0.0.0.0", "--port", "0"])
    assert isinstance(result.exception, XRoadError)
    assert "--allow-remote" in result.exception.message


@pytest.fixture
def old_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "trust"
    init_trust_dir(directory, now=NOW)
    (directory / "issued" / "5.pem").write_bytes(b"issued by the old CA")
    (directory / "notes.txt").write_text("the operator's own file")
    return directory


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


def test_force_swaps_in_a_complete_new_directory(old_directory: Path) -> None:
    before = snapshot(old_directory)
    init_trust_dir(old_directory, now=NOW, force=True)
    after = snapshot(old_directory)
    assert after["ca.key"] != before["ca.key"]
    assert "issued/5.pem" not in after
    assert after["notes.txt"] == before["notes.txt"]
    assert sorted(p.name for p in old_directory.parent.iterdir()) == ["trust"]  # nothing left beside it
    from trust_services.store import TrustServiceStore

    TrustServiceStore.open(old_directory)


@pytest.mark.parametrize("failing_call", [1, 3])
def test_force_failing_midway_leaves_the_old_directory_whole(
    old_directory: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    """Interrupted while generating the new keys (call 1 or 3) or writing them: the old directory stays."""
    from trust_services.pki import generate_rsa_key as real
    from xroad_mn.fileio import write_atomic as real_write

    before = snapshot(old_directory)
    calls = 0

    def generate() -> rsa.RSAPrivateKey:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise KeyboardInterrupt
        return real()

    monkeypatch.setattr("trust_services.store.generate_rsa_key", generate)
    with pytest.raises(KeyboardInterrupt):
        init_trust_dir(old_directory, now=NOW, force=True)
    assert snapshot(old_directory) == before

    writes = 0

    def write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        nonlocal writes
        writes += 1
        if writes == 4:
            raise KeyboardInterrupt
        real_write(path, data, mode=mode)

    monkeypatch.setattr("trust_services.store.generate_rsa_key", real)
    monkeypatch.setattr("trust_services.store.write_atomic", write)
    with pytest.raises(KeyboardInterrupt):
        init_trust_dir(old_directory, now=NOW, force=True)
    assert snapshot(old_directory) == before
    assert sorted(p.name for p in old_directory.parent.iterdir()) == ["trust"]


def test_force_on_the_working_directory_and_through_a_symlink(
    old_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trust_services.store import TrustServiceStore

    link = old_directory.parent / "link"
    link.symlink_to(old_directory)
    before = snapshot(old_directory)
    init_trust_dir(link, now=NOW, force=True)
    assert link.is_symlink()
    assert snapshot(old_directory)["ca.key"] != before["ca.key"]
    assert snapshot(old_directory)["notes.txt"] == before["notes.txt"]

    monkeypatch.chdir(old_directory)
    before = snapshot(old_directory)
    init_trust_dir(Path("."), now=NOW, force=True)
    after = snapshot(old_directory)
    assert after["ca.key"] != before["ca.key"]
    assert after["notes.txt"] == before["notes.txt"]
    TrustServiceStore.open(Path("."))


# --- Structured fuzzing through the real HTTP routes ---------------------------------------------------


@dataclass(frozen=True)
class ThreadedService:
    base: str
    directory: Path


@pytest.fixture(scope="module")
def threaded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedService]:
    """The trust services on 127.0.0.1, run by an event loop in a thread so hypothesis can drive them."""
    directory = tmp_path_factory.mktemp("fuzz") / "trust"
    init_trust_dir(directory, now=datetime.now(UTC))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    manager: AbstractAsyncContextManager[RunningTrustService] = run_trust_service(
        TrustSettings(dir=directory, port=0)
    )

    async def enter() -> RunningTrustService:
        return await manager.__aenter__()

    async def leave() -> None:
        await manager.__aexit__(None, None, None)

    service = asyncio.run_coroutine_threadsafe(enter(), loop).result(timeout=30)
    try:
        yield ThreadedService(service.urls.base, directory)
    finally:
        asyncio.run_coroutine_threadsafe(leave(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def http(
    method: str, url: str, body: bytes | None = None, content_type: str = ""
) -> tuple[int, Mapping[str, str], bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def assert_client_error(status: int, headers: Mapping[str, str], body: bytes, code: str) -> None:
    assert status == 400, body
    assert headers["X-Road-Error"] == code, body
    assert json.loads(body)["type"] == code


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HASH_NAMES = st.sampled_from(["sha1", "sha224", "sha256", "sha384", "sha512", "md5", "1.2.3.4.5"])
ANY_NONCE = st.builds(nonce, st.binary(max_size=40))
OTHER_EXTENSION = st.builds(
    lambda oid, critical, value: {
        "extn_id": oid,
        "critical": critical,
        "extn_value": core.ParsableOctetString(value),
    },
    st.sampled_from(["1.2.3.4", "1.2.3.5"]),
    st.booleans(),
    st.binary(max_size=8),
)


@FUZZ
@given(
    alg=HASH_NAMES,
    name_hash=st.binary(max_size=70),
    key_hash=st.binary(max_size=70),
    serial=st.one_of(st.integers(-(2**70), 2**70), st.integers(-(2**1000), 2**1000)),
    count=st.integers(0, 3),
    extensions=st.one_of(st.none(), st.lists(st.one_of(ANY_NONCE, OTHER_EXTENSION), max_size=3)),
    use_get=st.booleans(),
)
def test_fuzzed_ocsp_requests_never_cause_a_500(
    threaded_service: ThreadedService,
    alg: str,
    name_hash: bytes,
    key_hash: bytes,
    serial: int,
    count: int,
    extensions: list[dict[str, object]] | None,
    use_get: bool,
) -> None:
    der = ocsp_request(
        alg, name_hash=name_hash, key_hash=key_hash, serial=serial, count=count, extensions=extensions
    )
    if use_get:
        encoded = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
        status, headers, body = http("GET", f"{threaded_service.base}/ocsp/{encoded}")
    else:
        status, headers, body = http("POST", f"{threaded_service.base}/ocsp", der, "application/ocsp-request")
    if status == 200:
        assert ocsp.load_der_ocsp_response(body).response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    elif "X-Road-Error" in headers and headers["X-Road-Error"] == "client.request_too_large":
        assert status == 400
    else:
        assert_client_error(status, headers, body, "client.invalid_ocsp_request")


SUBJECT_TEXT = st.text(alphabet="ABCMNabcs0129 '()+,-./:=?", max_size=12)
SUBJECT = st.fixed_dictionaries(
    {},
    optional={
        "country_name": st.sampled_from(["MN", "EE", "M N", "MN/"]),
        "organization_name": st.one_of(st.just("GOV"), SUBJECT_TEXT),
        "common_name": st.one_of(st.just("ss1"), SUBJECT_TEXT),
        "serial_number": st.one_of(st.just("5012345"), SUBJECT_TEXT),
        "organizational_unit_name": SUBJECT_TEXT,
    },
)
DNS_TEXT = st.one_of(
    st.sampled_from(["ss1.gov.mn", "*.gov.mn", "localhost", "a..b", "-a.mn", "a" * 64]),
    st.text(alphabet="abz09-.*_ ", max_size=20),
)
GENERAL_NAME = st.one_of(
    st.builds(lambda t: tlv(0x82, t.encode()), DNS_TEXT),
    st.builds(lambda b: tlv(0x87, b), st.one_of(st.binary(min_size=4, max_size=4), st.binary(max_size=33))),
    st.builds(lambda t: tlv(0x86, t.encode()), st.sampled_from(["https://ss1.gov.mn/", "x"])),
    st.builds(lambda t: tlv(0x81, t.encode()), st.sampled_from(["admin@gov.mn", ""])),
    st.just(tlv(0xA0, OTHER_NAME)),
    st.just(tlv(0xA3, X400_ADDRESS)),
    st.just(tlv(0xA5, EDI_PARTY_NAME)),
    st.just(tlv(0x88, b"\x2a\x03")),
    st.builds(
        lambda tag, b: tlv(tag, b), st.sampled_from(list(GENERAL_NAME_TAGS.values())), st.binary(max_size=6)
    ),
)
SAN = st.builds(
    lambda names, critical: san_extension(*names, critical=critical),
    st.lists(GENERAL_NAME, max_size=4),
    st.booleans(),
)


@FUZZ
@given(
    subject=SUBJECT,
    extensions=st.one_of(st.none(), st.lists(SAN, max_size=2)),
    profile=st.sampled_from(["auth", "sign"]),
)
def test_fuzzed_csrs_never_cause_a_500(
    threaded_service: ThreadedService,
    subject: dict[str, str],
    extensions: list[bytes] | None,
    profile: str,
) -> None:
    der = raw_csr(subject, extensions)
    status, headers, body = http(
        "POST", f"{threaded_service.base}/ca/certificates?profile={profile}", der, "application/pkcs10"
    )
    if status != 201:
        assert_client_error(status, headers, body, "client.invalid_csr")
        return
    cert = x509.load_pem_x509_certificate(body)
    allowed = {NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME}
    if profile == "auth":
        allowed.add(NameOID.SERIAL_NUMBER)
    assert {a.oid for a in cert.subject} <= allowed
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "MN"
    try:
        names = list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = []
    assert profile == "auth" or not names
    assert check_alt_names(names) == names


@FUZZ
@given(
    alg=HASH_NAMES,
    digest=st.one_of(st.binary(max_size=70), st.sampled_from([20, 32, 48, 64]).map(bytes)),
    nonce_value=st.one_of(st.none(), st.integers(-(2**100), 2**300)),
    cert_req=st.booleans(),
    policy=st.one_of(st.none(), st.sampled_from(["1.2.3", "2.25.1"])),
)
def test_fuzzed_timestamp_queries_never_cause_a_500(
    threaded_service: ThreadedService,
    alg: str,
    digest: bytes,
    nonce_value: int | None,
    cert_req: bool,
    policy: str | None,
) -> None:
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": alg}, "hashed_message": digest},
        "cert_req": cert_req,
    }
    if nonce_value is not None:
        fields["nonce"] = nonce_value
    if policy is not None:
        fields["req_policy"] = policy
    der = bytes(tsp.TimeStampReq(fields).dump())
    status, headers, body = http("POST", f"{threaded_service.base}/tsa", der, "application/timestamp-query")
    if status != 200:
        assert_client_error(status, headers, body, "client.invalid_timestamp_request")
        return
    reply = core.Sequence.load(body)
    status_info = tsp.PKIStatusInfo.load(reply[0].dump())
    if status_info["status"].native == "granted":
        token = tsp.TimeStampResp.load(body)["time_stamp_token"]["content"]
        assert token["certificates"].native is not None  # the development default: "always"
    else:
        assert status_info["status"].native == "rejection"
