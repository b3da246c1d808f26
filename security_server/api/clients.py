"""Clients (registration officer), their registration, connection types and TLS certificates."""

from __future__ import annotations

from security_server.api.call import NodeCall, hex_param
from security_server.api.events import NodeEvent
from security_server.api.models import (
    CertificateIn,
    CertificateOut,
    ClientIn,
    ClientOut,
    ClientRegistrationIn,
    ClientUpdate,
    RequestIdOut,
    cert_out,
    client_out,
)
from security_server.api.spec import RO, SVC_SA, operation
from security_server.ids import format_for_people, parse_client_id
from security_server.operations import clients, registration
from xroad_mn.admin import Reply
from xroad_mn.identifiers import ClientId


def client_param(call: NodeCall) -> ClientId:
    return parse_client_id(call.param("client_id"), strict=call.strict)


@operation("GET", "/clients", "List clients", tag="clients", response=list[ClientOut])
async def list_clients(call: NodeCall) -> Reply[list[ClientOut]]:
    return Reply([client_out(c) for c in await clients.list_clients(call.ctx)])


@operation(
    "POST", "/clients", "Add a client", tag="clients", roles=RO, event=NodeEvent.ADD_CLIENT, body=ClientIn,
    response=ClientOut, status=201,
)  # fmt: skip
async def add_client(call: NodeCall) -> Reply[ClientOut]:
    body = call.typed_body(ClientIn)
    client = parse_client_id(body.client_id, strict=call.strict)
    added = await clients.add_client(call.ctx, client, connection_type=body.connection_type)
    return Reply(client_out(added), audit={"client_id": format_for_people(client)})


@operation("GET", "/clients/{client_id}", "Get a client", tag="clients", response=ClientOut)
async def get_client(call: NodeCall) -> Reply[ClientOut]:
    return Reply(client_out(await call.ctx.store.get_client(client_param(call))))


@operation(
    "PATCH", "/clients/{client_id}", "Set a client's connection type", tag="clients", roles=SVC_SA,
    event=NodeEvent.SET_CONNECTION_TYPE, body=ClientUpdate, response=ClientOut,
)  # fmt: skip
async def update_client(call: NodeCall) -> Reply[ClientOut]:
    body = call.typed_body(ClientUpdate)
    client = client_param(call)
    changed = await clients.set_connection_type(call.ctx, client, body.connection_type)
    return Reply(
        client_out(changed),
        audit={"client_id": format_for_people(client), "connection_type": body.connection_type.value},
    )


@operation(
    "DELETE", "/clients/{client_id}", "Delete a client", tag="clients", roles=RO,
    event=NodeEvent.DELETE_CLIENT,
)  # fmt: skip
async def delete_client(call: NodeCall) -> Reply[None]:
    client = client_param(call)
    await clients.delete_client(call.ctx, client)
    return Reply(None, audit={"client_id": format_for_people(client)})


@operation(
    "POST", "/clients/{client_id}/register", "Register a client (clientReg)", tag="registration", roles=RO,
    event=NodeEvent.REGISTER_CLIENT, body=ClientRegistrationIn, response=RequestIdOut, status=202,
)  # fmt: skip
async def register_client(call: NodeCall) -> Reply[RequestIdOut]:
    body = call.typed_body(ClientRegistrationIn)
    client = client_param(call)
    request_id = await registration.register_client(call.ctx, client, subsystem_name=body.subsystem_name)
    return Reply(
        RequestIdOut(request_id=request_id),
        audit={"client_id": format_for_people(client), "request_id": request_id},
    )


@operation(
    "GET", "/clients/{client_id}/tls-certificates", "List a client's information system TLS certificates",
    tag="clients", response=list[CertificateOut],
)  # fmt: skip
async def list_tls_certificates(call: NodeCall) -> Reply[list[CertificateOut]]:
    return Reply([cert_out(c) for c in await clients.list_is_certificates(call.ctx, client_param(call))])


@operation(
    "POST", "/clients/{client_id}/tls-certificates", "Trust an information system TLS certificate",
    tag="clients", roles=SVC_SA, event=NodeEvent.ADD_CLIENT_TLS_CERT, body=CertificateIn,
    response=CertificateOut, status=201,
)  # fmt: skip
async def add_tls_certificate(call: NodeCall) -> Reply[CertificateOut]:
    body = call.typed_body(CertificateIn)
    client = client_param(call)
    cert = clients.parse_certificate(body.certificate.encode("ascii", "replace"))
    await clients.add_is_certificate(call.ctx, client, cert)
    out = cert_out(cert)
    return Reply(out, audit={"client_id": format_for_people(client), "sha256": out.sha256})


@operation(
    "DELETE", "/clients/{client_id}/tls-certificates/{sha256}",
    "Stop trusting an information system TLS certificate", tag="clients", roles=SVC_SA,
    event=NodeEvent.DELETE_CLIENT_TLS_CERT,
)  # fmt: skip
async def delete_tls_certificate(call: NodeCall) -> Reply[None]:
    client, digest = client_param(call), hex_param(call, "sha256")
    await clients.delete_is_certificate(call.ctx, client, digest)
    return Reply(None, audit={"client_id": format_for_people(client), "sha256": digest.hex()})
