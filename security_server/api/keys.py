"""Keys, CSRs and certificates (security officer), and the authentication certificate's registration."""

from __future__ import annotations

from security_server.api.call import NodeCall, hex_param, int_param
from security_server.api.events import NodeEvent
from security_server.api.models import (
    AuthCertRegistrationIn,
    CertificateIn,
    CertificateOut,
    CertificateRequestIn,
    CertificateUpdate,
    CsrIn,
    CsrOut,
    ImportedOut,
    KeyAndCsrIn,
    KeyIn,
    KeyOut,
    RequestIdOut,
    StateChangeOut,
    cert_out,
    csr_out,
    key_out,
)
from security_server.api.spec import RO_SA, SO, SO_RO, operation
from security_server.certs import ImportedCertificate, NewCsr
from security_server.ids import format_for_people, parse_member_id
from security_server.operations import certs, registration
from security_server.operations.clients import parse_certificate
from xroad_mn.admin import Reply
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId


def _member(call: NodeCall, text: str | None) -> MemberId | None:
    return parse_member_id(text, strict=call.strict) if text is not None else None


def _imported(i: ImportedCertificate) -> ImportedOut:
    return ImportedOut(
        key_id=i.record.key_id,
        status=i.record.status,
        ca_name=i.ca.name,
        member_id=format_for_people(i.member) if i.member is not None else None,
        certificate=cert_out(i.record.certificate),
    )


def _new_csr(n: NewCsr) -> CsrOut:
    return csr_out(n.record, n.ca.name)


@operation("GET", "/keys", "List the token's keys", tag="keys", response=list[KeyOut])
async def list_keys(call: NodeCall) -> Reply[list[KeyOut]]:
    return Reply([key_out(k) for k in await certs.list_keys(call.ctx)])


@operation(
    "POST", "/keys", "Generate a key", tag="keys", roles=SO, event=NodeEvent.GENERATE_KEY, body=KeyIn,
    response=KeyOut, status=201,
)  # fmt: skip
async def generate_key(call: NodeCall) -> Reply[KeyOut]:
    body = call.typed_body(KeyIn)
    key = await certs.generate_key(
        call.ctx, body.usage, member=_member(call, body.member_id), label=body.label
    )
    return Reply(key_out(key), audit={"key_id": key.key_id, "usage": key.usage.value})


@operation(
    "DELETE", "/keys/{key_id}", "Delete a key", tag="keys", roles=SO, event=NodeEvent.DELETE_KEY
)  # fmt: skip
async def delete_key(call: NodeCall) -> Reply[None]:
    await certs.delete_key(call.ctx, call.param("key_id"))
    return Reply(None, audit={"key_id": call.param("key_id")})


@operation(
    "POST", "/keys/{key_id}/csrs", "Generate a CSR for a key", tag="keys", roles=SO,
    event=NodeEvent.GENERATE_CSR, body=CsrIn, response=CsrOut, status=201,
)  # fmt: skip
async def generate_csr(call: NodeCall) -> Reply[CsrOut]:
    body = call.typed_body(CsrIn)
    new = await certs.create_csr(
        call.ctx, call.param("key_id"), ca_name=body.ca_name, member_name=body.member_name
    )
    return Reply(_new_csr(new), audit={"key_id": new.record.key_id, "ca": new.ca.name})


@operation("GET", "/csrs", "List CSRs", tag="keys", response=list[CsrOut])
async def list_csrs(call: NodeCall) -> Reply[list[CsrOut]]:
    return Reply([csr_out(c) for c in await certs.list_csrs(call.ctx)])


@operation(
    "POST", "/csrs", "Generate a key and its CSR", tag="keys", roles=SO,
    event=NodeEvent.GENERATE_KEY_AND_CSR, body=KeyAndCsrIn, response=CsrOut, status=201,
)  # fmt: skip
async def generate_key_and_csr(call: NodeCall) -> Reply[CsrOut]:
    body = call.typed_body(KeyAndCsrIn)
    new = await certs.generate_key_and_csr(
        call.ctx,
        body.usage,
        member=_member(call, body.member_id),
        ca_name=body.ca_name,
        member_name=body.member_name,
    )
    return Reply(_new_csr(new), audit={"key_id": new.record.key_id, "ca": new.ca.name})


@operation(
    "DELETE", "/csrs/{csr_id}", "Delete a CSR", tag="keys", roles=SO, event=NodeEvent.DELETE_CSR
)  # fmt: skip
async def delete_csr(call: NodeCall) -> Reply[None]:
    csr_id = int_param(call, "csr_id", "CSR")
    await certs.delete_csr(call.ctx, csr_id)
    return Reply(None, audit={"csr_id": csr_id})


@operation("GET", "/certificates", "List the node's certificates", tag="keys", response=list[CertificateOut])
async def list_certificates(call: NodeCall) -> Reply[list[CertificateOut]]:
    return Reply([cert_out(c.certificate) for c in await certs.list_certificates(call.ctx)])


@operation(
    "POST", "/certificates/request", "Request a certificate from a CA and import it", tag="keys",
    roles=SO, event=NodeEvent.REQUEST_CERTIFICATE, body=CertificateRequestIn, response=ImportedOut,
    status=201,
)  # fmt: skip
async def request_certificate(call: NodeCall) -> Reply[ImportedOut]:
    body = call.typed_body(CertificateRequestIn)
    imported = await certs.request_certificate(
        call.ctx,
        body.usage,
        ca_url=body.ca_url,
        member=_member(call, body.member_id),
        ca_name=body.ca_name,
        member_name=body.member_name,
    )
    out = _imported(imported)
    return Reply(out, audit={"sha256": out.certificate.sha256, "usage": body.usage.value})


@operation(
    "POST", "/certificates", "Import a certificate", tag="keys", roles=SO,
    event=NodeEvent.IMPORT_CERTIFICATE, body=CertificateIn, response=ImportedOut, status=201,
)  # fmt: skip
async def import_certificate(call: NodeCall) -> Reply[ImportedOut]:
    body = call.typed_body(CertificateIn)
    cert = parse_certificate(body.certificate.encode("ascii", "replace"))
    out = _imported(await certs.import_certificate(call.ctx, cert))
    return Reply(out, audit={"sha256": out.certificate.sha256})


@operation(
    "PATCH", "/certificates/{sha256}", "Activate or disable a certificate", tag="keys", roles=SO,
    event=NodeEvent.ACTIVATE_CERTIFICATE, body=CertificateUpdate, response=CertificateOut,
)  # fmt: skip
async def update_certificate(call: NodeCall) -> Reply[CertificateOut]:
    body = call.typed_body(CertificateUpdate)
    record = await certs.set_certificate_active(call.ctx, hex_param(call, "sha256"), body.active)
    return Reply(cert_out(record.certificate), audit={"sha256": record.sha256.hex(), "active": body.active})


@operation(
    "DELETE", "/certificates/{sha256}", "Delete a certificate", tag="keys", roles=SO,
    event=NodeEvent.DELETE_CERTIFICATE,
)  # fmt: skip
async def delete_certificate(call: NodeCall) -> Reply[None]:
    digest = hex_param(call, "sha256")
    await certs.delete_certificate(call.ctx, digest)
    return Reply(None, audit={"sha256": digest.hex()})


@operation(
    "POST", "/registration/auth-certificate", "Register the authentication certificate (authCertReg)",
    tag="registration", roles=SO_RO, event=NodeEvent.REGISTER_AUTH_CERT, body=AuthCertRegistrationIn,
    response=RequestIdOut, status=202,
)  # fmt: skip
async def register_auth_certificate(call: NodeCall) -> Reply[RequestIdOut]:
    body = call.typed_body(AuthCertRegistrationIn)
    digest: bytes | None = None
    if body.sha256 is not None:
        try:
            digest = bytes.fromhex(body.sha256)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise XRoadError(FaultCode.INVALID_REQUEST, "sha256 is 64 hex digits", http_status=400)
    request_id = await registration.register_server(call.ctx, digest, address=body.address)
    return Reply(RequestIdOut(request_id=request_id), audit={"request_id": request_id})


@operation(
    "POST", "/registration/sync", "Update registration states from global configuration",
    tag="registration", roles=RO_SA, event=NodeEvent.SYNC_REGISTRATION, response=list[StateChangeOut],
)  # fmt: skip
async def sync_registration(call: NodeCall) -> Reply[list[StateChangeOut]]:
    changes = await registration.sync_registration(call.ctx)
    out = [
        StateChangeOut(
            old=c.old,
            new=c.new,
            sha256=c.sha256.hex() if c.sha256 is not None else None,
            client_id=format_for_people(c.client) if c.client is not None else None,
        )
        for c in changes
    ]
    return Reply(out, audit={"changes": len(out)})
