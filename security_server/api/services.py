"""Service descriptions, services and endpoints (service administrator)."""

from __future__ import annotations

import base64
import binascii

from security_server.api.call import NodeCall, int_param
from security_server.api.clients import client_param
from security_server.api.events import NodeEvent
from security_server.api.models import (
    EndpointIn,
    EndpointOut,
    ServiceDescriptionIn,
    ServiceDescriptionOut,
    ServiceDescriptionRefreshIn,
    ServiceDescriptionUpdate,
    ServiceOut,
    ServiceUpdate,
    description_out,
    endpoint_out,
    service_out,
)
from security_server.api.spec import SVC, operation
from security_server.ids import format_for_people
from security_server.operations import services
from xroad_mn.admin import QueryParam, Reply
from xroad_mn.errors import FaultCode, XRoadError

_VERSION = QueryParam("version", "The service version, when the service has one")


def _document(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise XRoadError(FaultCode.INVALID_REQUEST, "document_base64 is not base64", http_status=400) from e


@operation(
    "GET", "/clients/{client_id}/service-descriptions", "List a client's service descriptions",
    tag="services", response=list[ServiceDescriptionOut],
)  # fmt: skip
async def list_service_descriptions(call: NodeCall) -> Reply[list[ServiceDescriptionOut]]:
    found = await services.list_service_descriptions(call.ctx, client_param(call))
    return Reply([description_out(d) for d in found])


@operation(
    "POST", "/clients/{client_id}/service-descriptions", "Add a service description", tag="services",
    roles=SVC, event=NodeEvent.ADD_SERVICE_DESCRIPTION, body=ServiceDescriptionIn,
    response=ServiceDescriptionOut, status=201,
)  # fmt: skip
async def add_service_description(call: NodeCall) -> Reply[ServiceDescriptionOut]:
    body = call.typed_body(ServiceDescriptionIn)
    client = client_param(call)
    added = await services.add_service_description(
        call.ctx,
        client,
        body.type,
        url=body.url,
        document=_document(body.document_base64),
        service_code=body.service_code,
        reader=call.reader,
    )
    audit = {"client_id": format_for_people(client), "id": added.id, "type": body.type.value, "url": body.url}
    return Reply(description_out(added), audit=audit)


@operation(
    "GET", "/service-descriptions/{description_id}", "Get a service description", tag="services",
    response=ServiceDescriptionOut,
)  # fmt: skip
async def get_service_description(call: NodeCall) -> Reply[ServiceDescriptionOut]:
    description_id = int_param(call, "description_id", "service description")
    return Reply(description_out(await call.ctx.store.get_service_description(description_id)))


@operation(
    "PATCH", "/service-descriptions/{description_id}", "Enable or disable a service description",
    tag="services", roles=SVC, event=NodeEvent.DISABLE_SERVICE_DESCRIPTION, body=ServiceDescriptionUpdate,
    response=ServiceDescriptionOut,
)  # fmt: skip
async def update_service_description(call: NodeCall) -> Reply[ServiceDescriptionOut]:
    body = call.typed_body(ServiceDescriptionUpdate)
    description_id = int_param(call, "description_id", "service description")
    changed = await services.set_service_description_disabled(
        call.ctx, description_id, body.disabled, body.disabled_notice
    )
    return Reply(description_out(changed), audit={"id": description_id, "disabled": body.disabled})


@operation(
    "POST", "/service-descriptions/{description_id}/refresh", "Read a service description again",
    tag="services", roles=SVC, event=NodeEvent.REFRESH_SERVICE_DESCRIPTION, body=ServiceDescriptionRefreshIn,
    response=ServiceDescriptionOut,
)  # fmt: skip
async def refresh_service_description(call: NodeCall) -> Reply[ServiceDescriptionOut]:
    body = call.typed_body(ServiceDescriptionRefreshIn)
    description_id = int_param(call, "description_id", "service description")
    refreshed = await services.refresh_service_description(
        call.ctx, description_id, document=_document(body.document_base64), reader=call.reader
    )
    return Reply(description_out(refreshed), audit={"id": description_id})


@operation(
    "DELETE", "/service-descriptions/{description_id}", "Delete a service description", tag="services",
    roles=SVC, event=NodeEvent.DELETE_SERVICE_DESCRIPTION,
)  # fmt: skip
async def delete_service_description(call: NodeCall) -> Reply[None]:
    description_id = int_param(call, "description_id", "service description")
    await services.delete_service_description(call.ctx, description_id)
    return Reply(None, audit={"id": description_id})


@operation(
    "GET", "/clients/{client_id}/services/{service_code}", "Get a service", tag="services",
    response=ServiceOut, query=(_VERSION,),
)  # fmt: skip
async def get_service(call: NodeCall) -> Reply[ServiceOut]:
    found = await call.ctx.store.get_service(
        client_param(call), call.param("service_code"), call.query("version")
    )
    return Reply(service_out(found))


@operation(
    "PATCH", "/clients/{client_id}/services/{service_code}", "Change a service's URL, timeout or flags",
    tag="services", roles=SVC, event=NodeEvent.EDIT_SERVICE_PARAMS, body=ServiceUpdate, response=ServiceOut,
    query=(_VERSION,),
)  # fmt: skip
async def update_service(call: NodeCall) -> Reply[ServiceOut]:
    body = call.typed_body(ServiceUpdate)
    client, code = client_param(call), call.param("service_code")
    changed = await services.update_service(
        call.ctx,
        client,
        code,
        call.query("version"),
        url=body.url,
        timeout_seconds=body.timeout_seconds,
        ssl_authentication=body.ssl_authentication,
        enabled=body.enabled,
    )
    audit = {
        "client_id": format_for_people(client),
        "service_code": code,
        **body.model_dump(exclude_none=True),
    }
    return Reply(service_out(changed), audit=audit)


@operation(
    "GET", "/clients/{client_id}/services/{service_code}/endpoints", "List a service's endpoints",
    tag="services", response=list[EndpointOut],
)  # fmt: skip
async def list_endpoints(call: NodeCall) -> Reply[list[EndpointOut]]:
    found = await services.list_endpoints(call.ctx, client_param(call), call.param("service_code"))
    return Reply([endpoint_out(e) for e in found])


@operation(
    "POST", "/clients/{client_id}/services/{service_code}/endpoints", "Add an endpoint", tag="services",
    roles=SVC, event=NodeEvent.ADD_REST_ENDPOINT, body=EndpointIn, response=EndpointOut, status=201,
)  # fmt: skip
async def add_endpoint(call: NodeCall) -> Reply[EndpointOut]:
    body = call.typed_body(EndpointIn)
    client, code = client_param(call), call.param("service_code")
    added = await services.add_endpoint(call.ctx, client, code, body.method, body.path)
    return Reply(endpoint_out(added), audit={"id": added.id, "method": added.method, "path": added.path})


@operation(
    "PATCH", "/endpoints/{endpoint_id}", "Change an endpoint", tag="services", roles=SVC,
    event=NodeEvent.EDIT_REST_ENDPOINT, body=EndpointIn, response=EndpointOut,
)  # fmt: skip
async def update_endpoint(call: NodeCall) -> Reply[EndpointOut]:
    body = call.typed_body(EndpointIn)
    endpoint_id = int_param(call, "endpoint_id", "endpoint")
    changed = await services.update_endpoint(call.ctx, endpoint_id, body.method, body.path)
    return Reply(
        endpoint_out(changed), audit={"id": endpoint_id, "method": changed.method, "path": changed.path}
    )


@operation(
    "DELETE", "/endpoints/{endpoint_id}", "Delete an endpoint", tag="services", roles=SVC,
    event=NodeEvent.DELETE_REST_ENDPOINT,
)  # fmt: skip
async def delete_endpoint(call: NodeCall) -> Reply[None]:
    endpoint_id = int_param(call, "endpoint_id", "endpoint")
    await services.delete_endpoint(call.ctx, endpoint_id)
    return Reply(None, audit={"id": endpoint_id})
