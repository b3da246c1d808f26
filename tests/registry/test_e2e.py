"""End to end with the registry ``registry serve`` runs, over HTTP(S) on real sockets, on SQLite and
PostgreSQL.

:func:`registry.app.run_registry` serves an initialised registry (as ``registry init`` leaves it) with TLS on
its public socket and a frozen clock. Everything else goes over the wire:

1. the admin API (an API key from :func:`registry.home.create_api_key`) sets up the management-service
   settings, members, a subsystem, a security server, a global group, the CA (dev PKI root, intermediate and
   OCSP responder) and the TSA, and hands out the anchor;
2. the configuration client (anchor from the admin API, TLS pinned to the registry's certificate) installs
   the first configuration, whose private-params publish that certificate as ``authCertRegServiceCert``;
3. requests with a bad signature, a wrong proof of possession, a revoked certificate or malformed XML are
   answered with X-Road SOAP faults and change nothing the admin API shows;
4. a security server owner POSTs ``authCertReg`` by direct HTTPS (the registry's certificate pinned) and
   ``clientReg`` to the management service; the first is approved through the admin API, the second is
   auto-approved; both are in the audit log with the sender as user;
5. the next configuration shows them and the configuration client picks them up;
6. tampered, expired and wrongly signed directories (served by a small mirror) are refused;
7. a two-phase key rotation through the admin API reaches the client without a new anchor;
8. with the registry stopped the client keeps its copy, and reports ``global_conf_outdated`` after expiry.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from registry.app import RunningRegistry, public_ssl_context, run_registry
from registry.context import PUBLISHER_KEY, STORE_KEY, TOKEN_KEY
from registry.db import KeyKind
from registry.distribution import create_distribution_app
from registry.globalconf_gen import ConfigurationKeyPair, GeneratedConfiguration, export_anchor, generate
from registry.home import ADMIN_ROLES
from registry.operations import build_configuration, init_registry, open_store
from registry.settings import RegistrySettings
from registry.signing import create_token, new_signing_key
from tests.registry.conftest import new_token
from tests.registry.test_management_service import ocsp_der
from trust_services.pki import CertifiedKey, DevPki, generate_rsa_key
from xroad_mn.admin import create_api_key
from xroad_mn.confclient.client import ConfigurationClient
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf.anchor import ConfigurationAnchor, parse_anchor
from xroad_mn.globalconf.params import (
    PrivateParameters,
    SharedParameters,
    auth_cert_hash,
    parse_private_params,
    parse_shared_params,
)
from xroad_mn.identifiers import MemberId, SubsystemId, parse_colon_client_id
from xroad_mn.management import (
    AuthCertRegRequest,
    BuiltManagementRequest,
    ClientDeletionRequest,
    ClientRegRequest,
    ManagementRequest,
    ManagementRequestType,
    MemberSigner,
    build_management_request,
    parse_management_response,
)
from xroad_mn.tokens import SoftwareToken, token_signer
from xroad_mn.transport.globalconf import AiohttpConfigurationTransport

EXPIRE_SECONDS = 600
OWNER = MemberId("MN", "GOV", "1000001")
TAX = MemberId("MN", "GOV", "7000001")
PROFILE = "xroad_mn"
GENEROUS = {"rate_limit_per_second": 10_000, "rate_limit_per_minute": 100_000}


class Clock:
    """The registry's and the client's frozen clock; the test moves it on explicitly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def tls_identity(directory: Path) -> tuple[Path, Path, x509.Certificate]:
    """The registry's TLS server certificate (self-signed, SAN 127.0.0.1, valid around the real time TLS
    checks it at) and key, written as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.example.mn")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "public-tls.crt", directory / "public-tls.key"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, cert


def pinned_context(cert: x509.Certificate) -> ssl.SSLContext:
    """A TLS client context trusting exactly ``cert`` (TLS 1.2 or later)."""
    context = ssl.create_default_context(cadata=_pem(cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class Admin:
    """The admin API over HTTP with one API key."""

    session: aiohttp.ClientSession
    base: str
    token: str
    key_id: str

    async def call(
        self,
        method: str,
        template: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        expect: int | None = None,
    ) -> Any:
        path = template.format(**{k: quote(v, safe="") for k, v in (params or {}).items()})
        headers = {"Authorization": f"X-Road-ApiKey token={self.token}"}
        data = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body).encode()
        async with self.session.request(method, self.base + path, data=data, headers=headers) as resp:
            body = await resp.read()
            if expect is not None:
                assert resp.status == expect, body
            else:
                assert 200 <= resp.status < 300, (method, path, resp.status, body)
            if body and "json" in resp.headers.get("Content-Type", ""):
                return json.loads(body)
            return body

    async def state(self) -> dict[str, Any]:
        """What the registry holds as the admin API shows it, and the configuration being served."""
        return {
            path: await self.call("GET", path)
            for path in (
                "/members",
                "/security-servers",
                "/global-groups",
                "/management-requests",
                "/certification-services",
                "/timestamping-services",
                "/global-configuration",
            )
        }


@dataclass
class Owner:
    """The security server owner: the dev PKI's member, its signing and authentication keys."""

    pki: DevPki
    provider: SubsystemId

    def signer(self, cert: CertifiedKey | None = None) -> MemberSigner:
        chosen = cert if cert is not None else self.pki.member_sign
        return MemberSigner(chosen.private_key, chosen.certificate, ocsp_der(self.pki, chosen))

    def build(
        self, request: ManagementRequest, *, signer: MemberSigner | None = None
    ) -> BuiltManagementRequest:
        return build_management_request(
            request,
            sender=self.pki.member,
            service_provider=self.provider,
            signer=signer if signer is not None else self.signer(),
            auth_key=self.pki.member_auth.private_key,  # type: ignore[arg-type]
        )

    def auth_cert_reg(self, *, signer: MemberSigner | None = None) -> BuiltManagementRequest:
        der = self.pki.member_auth.certificate.public_bytes(Encoding.DER)
        return self.build(
            AuthCertRegRequest(self.pki.member.server("ss1"), "ss1.example.mn", der), signer=signer
        )


async def post_soap(
    session: aiohttp.ClientSession, url: str, body: bytes, content_type: str, tls: ssl.SSLContext
) -> tuple[int, bytes]:
    async with session.post(url, data=body, headers={"Content-Type": content_type}, ssl=tls) as resp:
        return resp.status, await resp.read()


def _parts(built: BuiltManagementRequest) -> list[bytes]:
    """The multipart bodies: SOAP, then the signatures (authCertReg: auth key's, then the owner's)."""
    boundary = built.content_type.rsplit("boundary=", 1)[1].encode()
    chunks = built.body.split(b"--" + boundary)
    return [c.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")] for c in chunks[1:-1]]


def _swap(body: bytes, old: bytes, new: bytes) -> bytes:
    assert body.count(old) == 1
    return body.replace(old, new)


def _fault(body: bytes) -> XRoadError:
    with pytest.raises(XRoadError) as e:
        parse_management_response(body)
    return e.value


def _stored_shared(client: ConfigurationClient) -> SharedParameters:
    data = client.store.read_file("MN", "shared-params.xml")
    assert data is not None
    return parse_shared_params(data)


def _stored_private(client: ConfigurationClient) -> PrivateParameters:
    data = client.store.read_file("MN", "private-params.xml")
    assert data is not None
    return parse_private_params(data)


def _audit(settings: RegistrySettings) -> list[dict[str, Any]]:
    path = settings.audit_log_path()
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@asynccontextmanager
async def mirror(conf: GeneratedConfiguration) -> AsyncIterator[str]:
    """Another configuration source serving ``conf`` (a bad one) over HTTP; yields its address."""
    runner = web.AppRunner(create_distribution_app(lambda: conf))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"{host}:{port}"
    finally:
        await runner.cleanup()


async def _refused_by_fresh_client(
    anchor: ConfigurationAnchor, directory: Path, transport: AiohttpConfigurationTransport, clock: Clock
) -> XRoadError:
    client = ConfigurationClient(anchor, directory, transport, clock=clock)
    with pytest.raises(XRoadError) as e:
        await client.refresh()
    assert client.store.read_file("MN", "shared-params.xml") is None  # nothing stored
    with pytest.raises(XRoadError) as status:
        client.status()
    assert status.value.code == FaultCode.GLOBAL_CONF_OUTDATED
    return e.value


async def _regenerate(admin: Admin, clock: Clock) -> Any:
    clock.advance(1)
    return await admin.call("POST", "/global-configuration/regenerate")


# -- the pieces of the run --------------------------------------------------------------------------------


async def _set_up(
    admin: Admin, pki: DevPki, running: RunningRegistry, tls_cert: x509.Certificate
) -> SubsystemId:
    """Step 1: everything through the admin API; returns the management service provider."""
    provider_text = "MN:GOV:1000001:MANAGEMENT"
    settings = await admin.call(
        "PATCH",
        "/global-settings",
        json_body={
            "management_service_provider": provider_text,
            "configuration_expiry_seconds": EXPIRE_SECONDS,
            "ocsp_freshness_seconds": 1800,
        },
    )
    assert settings["management_service_address"] == running.public_url + "/managementservice/"
    assert settings["management_service_address"].startswith("https://127.0.0.1:")
    assert settings["management_service_certificate"] == _b64(tls_cert)
    provider = parse_colon_client_id(settings["management_service_provider"])
    assert isinstance(provider, SubsystemId)

    member = pki.member
    await admin.call(
        "POST",
        "/members",
        expect=201,
        json_body={
            "member_class": member.member_class,
            "member_code": member.member_code,
            "name": "Ministry",
        },
    )
    await admin.call(
        "POST",
        "/members",
        expect=201,
        json_body={"member_class": "GOV", "member_code": "7000001", "name": "Tax"},
    )
    await admin.call(
        "POST",
        "/members/{member_id}/subsystems",
        params={"member_id": "MN:GOV:7000001"},
        json_body={"subsystem_code": "tax-api", "name": "Tax API"},
        expect=201,
    )
    await admin.call(
        "POST",
        "/security-servers",
        expect=201,
        json_body={"owner_id": "MN:GOV:7000001", "server_code": "ss-tax", "address": "ss.tax.example.mn"},
    )
    await admin.call(
        "POST",
        "/security-servers/{server_id}/clients",
        params={"server_id": "MN:GOV:7000001:ss-tax"},
        json_body={"client_id": "MN:GOV:7000001:tax-api"},
        expect=201,
    )
    await admin.call(
        "POST",
        "/global-groups",
        json_body={"code": "security-server-owners", "description": "Security server owners"},
        expect=201,
    )
    ca = await admin.call(
        "POST",
        "/certification-services",
        expect=201,
        json_body={
            "name": "MN dev CA",
            "certificate": _pem(pki.root.certificate),
            "certificate_profile_info": PROFILE,
            "intermediate_cas": [
                {
                    "certificate": _b64(pki.intermediate.certificate),
                    "ocsp_responders": [
                        {
                            "url": "http://127.0.0.1:9/ocsp",
                            "certificate": _b64(pki.ocsp_responder.certificate),
                        }
                    ],
                }
            ],
        },
    )
    assert ca["name"] == "MN dev CA"
    await admin.call(
        "POST",
        "/timestamping-services",
        expect=201,
        json_body={
            "name": "MN dev TSA",
            "url": "http://127.0.0.1:9/tsa",
            "certificate": _pem(pki.tsa.certificate),
        },
    )
    return provider


async def _refusals(
    admin: Admin,
    owner: Owner,
    session: aiohttp.ClientSession,
    running: RunningRegistry,
    tls: ssl.SSLContext,
) -> None:
    """Step 3: bad requests over HTTPS are answered with SOAP faults and change nothing."""
    registration = running.public_url + "/managementservice/"
    manage = running.admin_url + "/managementservice/manage/"  # internal: the admin socket only
    good = owner.auth_cert_reg()
    auth_sig, owner_sig = _parts(good)[1:3]
    stranger_sig = generate_rsa_key().sign(good.soap, padding.PKCS1v15(), hashes.SHA512())
    revoked = owner.auth_cert_reg(signer=owner.signer(owner.pki.revoked_sign))
    cases: list[tuple[str, str, bytes, str, str]] = [
        (
            "bad signature",
            registration,
            _swap(good.body, owner_sig, owner_sig[:-1] + bytes([owner_sig[-1] ^ 1])),
            good.content_type,
            FaultCode.INVALID_SIGNATURE_VALUE,
        ),
        (
            "tampered body",
            registration,
            _swap(good.body, b"ss1.example.mn", b"ss9.example.mn"),
            good.content_type,
            FaultCode.INVALID_SIGNATURE_VALUE,
        ),
        (
            "wrong proof of possession",
            registration,
            _swap(good.body, auth_sig, stranger_sig),
            good.content_type,
            FaultCode.INVALID_SIGNATURE_VALUE,
        ),
        ("revoked certificate", registration, revoked.body, revoked.content_type, FaultCode.CERT_VALIDATION),
        ("malformed XML", manage, b"<SOAP-ENV:Envelope", "text/xml", FaultCode.INVALID_SOAP),
        (
            "malformed multipart XML",
            manage,
            b"--x\r\nContent-Type: text/xml\r\n\r\n<oops\r\n--x--\r\n",
            "multipart/related; boundary=x",
            FaultCode.INVALID_SOAP,
        ),
    ]
    before = await admin.state()
    audit_before = _audit(running.settings)
    for name, url, body, content_type, code in cases:
        status, answer = await post_soap(session, url, body, content_type, tls)
        assert status == 500, (name, answer)
        assert answer.lstrip().startswith(b"<"), name
        fault = _fault(answer)
        assert fault.code == f"server.{code}", (name, fault)  # the code as X-Road sends it, prefixed
        if name == "wrong proof of possession":
            assert "auth" in fault.message
        if name == "revoked certificate":
            assert "revoked" in fault.message
    assert await admin.state() == before
    assert _audit(running.settings) == audit_before


async def _registrations(
    admin: Admin,
    owner: Owner,
    session: aiohttp.ClientSession,
    running: RunningRegistry,
    tls: ssl.SSLContext,
) -> None:
    """Step 4: authCertReg by direct HTTPS (approved through the admin API), clientReg auto-approved."""
    registration = running.public_url + "/managementservice/"
    built = owner.auth_cert_reg()
    # Only a client that trusts the registry's certificate gets through.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await post_soap(session, registration, built.body, built.content_type, ssl.create_default_context())
    status, answer = await post_soap(session, registration, built.body, built.content_type, tls)
    assert status == 200, answer
    auth_reg_id = parse_management_response(answer, request=built.header).request_id
    assert auth_reg_id is not None
    rid = {"request_id": str(auth_reg_id)}
    submitted = await admin.call("GET", "/management-requests/{request_id}", params=rid)
    assert (submitted["type"], submitted["state"]) == ("authCertReg", "submitted")
    approved = await admin.call(
        "POST", "/management-requests/{request_id}/approve", params=rid, json_body={"comment": "checked"}
    )
    assert approved["state"] == "approved"

    server = owner.pki.member.server("ss1")
    built = owner.build(
        ClientRegRequest(server, owner.pki.member.subsystem("civil-registry"), "Civil registry")
    )
    status, answer = await post_soap(
        session, running.admin_url + "/managementservice/manage/", built.body, built.content_type, tls
    )
    assert status == 200, answer
    client_reg_id = parse_management_response(answer, request=built.header).request_id
    assert client_reg_id is not None
    got = await admin.call(
        "GET", "/management-requests/{request_id}", params={"request_id": str(client_reg_id)}
    )
    assert (got["type"], got["state"]) == ("clientReg", "approved")
    assert [e["user"] for e in got["history"]] == [str(owner.pki.member), "auto-approve"]

    # The same certificate again: verified, but refused by the registry's rules (and audited as such).
    again = owner.auth_cert_reg()
    status, answer = await post_soap(session, registration, again.body, again.content_type, tls)
    assert status == 500
    assert _fault(answer).code == f"client.{FaultCode.CONFLICT}"

    sender = str(owner.pki.member)
    refused = [a for a in _audit(running.settings) if a["event"] == "Submit management request failed"]
    assert [(a["user"], a["data"]["reason"]["code"]) for a in refused] == [(sender, FaultCode.CONFLICT)]
    audit = [(a["event"], a["user"], a["data"].get("request_id")) for a in _audit(running.settings)]
    assert ("Submit management request", sender, auth_reg_id) in audit
    assert ("Approve management request", admin.key_id, auth_reg_id) in audit
    assert ("Submit management request", sender, client_reg_id) in audit
    assert ("Approve management request", sender, client_reg_id) in audit
    auto = next(
        a
        for a in _audit(running.settings)
        if a["event"] == "Approve management request" and a["user"] == sender
    )
    assert auto["data"]["approved_by"] == "auto-approve"


async def _internal_manage_only(
    admin: Admin,
    owner: Owner,
    session: aiohttp.ClientSession,
    running: RunningRegistry,
    tls: ssl.SSLContext,
) -> None:
    """Step 4b: ``/managementservice/manage/`` takes the unsigned types (``clientDeletion``) on the internal
    admin socket only; the public socket answers 404 in X-Road's error format and changes nothing."""
    server = owner.pki.member.server("ss1")
    deletion = owner.build(ClientDeletionRequest(server, owner.pki.member.subsystem("civil-registry")))
    assert b"multipart" not in deletion.content_type.encode()  # no signature of its own
    before, audit_before = await admin.state(), _audit(running.settings)
    for path in ("/managementservice/manage/", "/managementservice/manage"):
        url = running.public_url + path
        headers = {"Content-Type": deletion.content_type}
        async with session.post(url, data=deletion.body, headers=headers, ssl=tls) as resp:
            assert resp.status == 404, path
            assert resp.headers["X-Road-Error"] == "client.not_found"
            assert json.loads(await resp.read())["type"] == "client.not_found"
    assert await admin.state() == before
    assert _audit(running.settings) == audit_before

    internal = running.admin_url + "/managementservice/manage/"
    status, answer = await post_soap(session, internal, deletion.body, deletion.content_type, tls)
    assert status == 200, answer
    deletion_id = parse_management_response(answer, request=deletion.header).request_id
    got = await admin.call(
        "GET", "/management-requests/{request_id}", params={"request_id": str(deletion_id)}
    )
    assert (got["type"], got["state"]) == ("clientDeletion", "submitted")
    # The same request again while the first waits for approval: a conflict, nothing recorded.
    pending = await admin.call("GET", "/management-requests?state=submitted")
    status, answer = await post_soap(session, internal, deletion.body, deletion.content_type, tls)
    assert status == 500
    assert _fault(answer).code == f"client.{FaultCode.CONFLICT}"
    assert await admin.call("GET", "/management-requests?state=submitted") == pending
    await admin.call(
        "POST",
        "/management-requests/{request_id}/reject",
        params={"request_id": str(deletion_id)},
        json_body={},
    )


def _check_registered(shared: SharedParameters, pki: DevPki) -> None:
    """Step 5: the configuration shows the registered server, its certificate and client."""
    servers = {(ss.owner, ss.server_code): ss for ss in shared.security_servers}
    ss1 = servers[(pki.member, "ss1")]
    assert ss1.address == "ss1.example.mn"
    assert ss1.auth_cert_hashes == (auth_cert_hash(pki.member_auth.certificate),)
    assert ss1.clients == (pki.member.subsystem("civil-registry"),)
    assert servers[(TAX, "ss-tax")].clients == (TAX.subsystem("tax-api"),)
    member = next(m for m in shared.members if m.id("MN") == pki.member)
    assert [(s.code, s.name) for s in member.subsystems] == [("civil-registry", "Civil registry")]
    (owners,) = [g for g in shared.global_groups if g.code == "security-server-owners"]
    assert pki.member in owners.members
    assert [ca.name for ca in shared.approved_cas] == ["MN dev CA"]
    assert [t.name for t in shared.approved_tsas] == ["MN dev TSA"]
    assert shared.ocsp_freshness_seconds == 1800


async def _bad_directories(
    running: RunningRegistry, clock: Clock, transport: AiohttpConfigurationTransport, tmp_path: Path
) -> None:
    """Step 6: tampered, expired and wrongly signed directories, each from a mirror whose anchor names the
    registry's real keys, are refused by a fresh client (nothing stored)."""
    store = running.app[STORE_KEY]
    good = running.app[PUBLISHER_KEY].current()
    v6 = good.versions[6]
    tampered_files = {
        loc: data.replace(b"ss1.example.mn", b"evil.example.mn")
        if loc.endswith("shared-params.xml")
        else data
        for loc, data in v6.files.items()
    }
    tampered = replace(
        good, versions=MappingProxyType({6: replace(v6, files=MappingProxyType(tampered_files))})
    )
    token = running.app[TOKEN_KEY]
    expired = await build_configuration(
        store, running.settings, token, now=clock() - timedelta(seconds=EXPIRE_SECONDS + 60)
    )
    snapshot = await store.snapshot(running.settings.source_addresses())
    stranger: list[ConfigurationKeyPair] = []
    stranger_token = SoftwareToken(tmp_path / "stranger-token")
    create_token(stranger_token, "stranger")
    for kind in (KeyKind.INTERNAL, KeyKind.EXTERNAL):
        key_id, info, cert = new_signing_key(stranger_token, kind, "MN", clock())
        signer = token_signer(stranger_token, info.key_id)
        stranger.append(ConfigurationKeyPair(key_id, signer, cert, True, kind))
    wrongly_signed = generate(
        snapshot.shared, snapshot.private, stranger, now=clock(), expire_seconds=EXPIRE_SECONDS
    )
    keys = snapshot.generator_keys(token)
    codes = {}
    for name, bad in (("tampered", tampered), ("expired", expired), ("wrongly-signed", wrongly_signed)):
        async with mirror(bad) as address:
            anchor = parse_anchor(export_anchor("MN", [address], keys, KeyKind.INTERNAL, clock()).xml)
            err = await _refused_by_fresh_client(anchor, tmp_path / name, transport, clock)
            codes[name] = err.code
    assert codes == {
        "tampered": FaultCode.GLOBAL_CONF_INVALID,
        "expired": FaultCode.GLOBAL_CONF_OUTDATED,
        "wrongly-signed": FaultCode.GLOBAL_CONF_INVALID,
    }, codes


# -- the test -----------------------------------------------------------------------------------------------


async def test_registry_end_to_end(database: dict[str, Any], pki: DevPki, tmp_path: Path) -> None:
    clock = Clock(pki.now)
    cert_path, key_path, tls_cert = tls_identity(tmp_path / "tls")
    settings = RegistrySettings(
        home=tmp_path / "home",
        admin_port=0,
        public_port=0,
        regenerate_interval_seconds=EXPIRE_SECONDS / 2,  # expiry must be at least twice the interval
        auto_approve=frozenset({ManagementRequestType.CLIENT_REG}),
        public_tls_cert=cert_path,
        public_tls_key=key_path,
        **{**GENEROUS, **database},
    )
    # `registry init`: the instance, the operator with its management subsystem, the first signing keys.
    async with open_store(settings, clock=clock) as store:
        await init_registry(
            store,
            settings,
            new_token(settings),
            instance="MN",
            owner=OWNER,
            owner_name="Registry",
            now=clock(),
        )
    created = create_api_key(settings.api_keys_path(), ADMIN_ROLES, clock())
    tls = pinned_context(tls_cert)

    async with aiohttp.ClientSession() as session:
        transport = AiohttpConfigurationTransport(session, ssl_context=tls)
        async with run_registry(settings, clock=clock) as running:
            assert running.public_url.startswith("https://")
            admin = Admin(session, running.admin_url + "/api/v1", created.token, created.key.key_id)

            # 1. Set up through the admin API.
            provider = await _set_up(admin, pki, running, tls_cert)
            owner = Owner(pki, provider)

            # 2. The configuration client installs the first configuration (anchor from the admin API).
            await _regenerate(admin, clock)
            anchor_xml = await admin.call(
                "GET", "/configuration-anchors/{kind}/download", params={"kind": "internal"}
            )
            anchor = parse_anchor(anchor_xml)
            assert [s.download_url for s in anchor.sources] == [running.public_url + "/internalconf"]
            client = ConfigurationClient(anchor, tmp_path / "globalconf", transport, clock=clock)
            first = await client.refresh()
            assert first.own.version == 6
            assert [(ss.owner, ss.server_code) for ss in _stored_shared(client).security_servers] == [
                (TAX, "ss-tax")
            ]
            management = _stored_private(client).management_service
            assert management.auth_cert_reg_service_cert == tls_cert
            assert management.auth_cert_reg_service_address == running.public_url + "/managementservice/"
            assert management.management_request_service_provider_id == provider

            # 3. Refused requests change nothing.
            await _refusals(admin, owner, session, running, tls)

            # 4. authCertReg by direct HTTPS, approved; clientReg, auto-approved.
            await _registrations(admin, owner, session, running, tls)
            await _internal_manage_only(admin, owner, session, running, tls)

            # 5. The next configuration shows them; the client picks them up.
            conf = await _regenerate(admin, clock)
            await client.refresh()
            _check_registered(_stored_shared(client), pki)
            expires = datetime.fromisoformat(conf["expire_date"])
            assert (
                timedelta(0) <= clock() + timedelta(seconds=EXPIRE_SECONDS) - expires < timedelta(seconds=1)
            )

            # 6. Tampered, expired and wrongly signed directories are refused.
            await _bad_directories(running, clock, transport, tmp_path)

            # 7. Two-phase key rotation through the admin API, without a new anchor.
            new_key = await admin.call(
                "POST", "/configuration-signing-keys", json_body={"kind": "internal"}, expect=201
            )
            assert new_key["active"] is False
            await _regenerate(admin, clock)
            await client.refresh()  # still signed by the first key; shared-params now list the new one too
            new_cert = x509.load_der_x509_certificate(base64.b64decode(new_key["certificate"]["der_base64"]))
            assert new_cert in _stored_shared(client).verification_certs(external=False)
            await admin.call(
                "POST", "/configuration-signing-keys/{key_id}/activate", params={"key_id": new_key["key_id"]}
            )
            rotated = await _regenerate(admin, clock)
            assert new_cert not in anchor.verification_certs
            result = await client.refresh()  # verified with the installed source certificate, not the anchor
            assert result.own.expire_date == datetime.fromisoformat(rotated["expire_date"])
            err = await _refused_by_fresh_client(anchor, tmp_path / "old-anchor-only", transport, clock)
            assert err.code == FaultCode.GLOBAL_CONF_INVALID, err
            _check_registered(_stored_shared(client), pki)
            stored = client.store.read_file("MN", "shared-params.xml")

        # 8. The registry is down: the client keeps serving its copy until it expires.
        with pytest.raises(XRoadError):
            await client.refresh()
        status = client.status()
        assert status.instance == "MN"
        assert status.last_error is not None
        assert client.store.read_file("MN", "shared-params.xml") == stored
        clock.advance(EXPIRE_SECONDS + 1)
        with pytest.raises(XRoadError) as outdated:
            client.status()
        assert outdated.value.code == FaultCode.GLOBAL_CONF_OUTDATED
        assert client.store.read_file("MN", "shared-params.xml") == stored


def test_public_tls_settings(tmp_path: Path) -> None:
    """TLS on the public socket: both files or neither, TLS 1.2 at least, https in anchors and in the
    management service address; unreadable files are an ``invalid_settings`` error."""
    cert_path, key_path, _ = tls_identity(tmp_path)
    plain = RegistrySettings(home=tmp_path, public_port=8080)
    assert public_ssl_context(plain) is None
    assert plain.anchor_addresses() == ("127.0.0.1:8080",)
    assert plain.management_service_address() == "http://127.0.0.1:8080/managementservice/"
    tls = RegistrySettings(
        home=tmp_path, public_port=8443, public_tls_cert=cert_path, public_tls_key=key_path
    )
    context = public_ssl_context(tls)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert tls.anchor_addresses() == ("https://127.0.0.1:8443",)
    assert tls.source_addresses() == ("127.0.0.1:8443",)  # shared-params `source`: the client tries https
    assert tls.management_service_address() == "https://127.0.0.1:8443/managementservice/"
    with pytest.raises(ValueError, match="together"):
        RegistrySettings(home=tmp_path, public_tls_cert=cert_path)
    missing = tls.model_copy(update={"public_tls_key": tmp_path / "missing.key"})
    with pytest.raises(XRoadError) as e:
        public_ssl_context(missing)
    assert e.value.code == FaultCode.INVALID_SETTINGS
