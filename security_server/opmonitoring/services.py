"""``getSecurityServerOperationalData`` and ``getSecurityServerHealthData``, answered by the provider node.

They are SOAP calls to the node's owner member (``service`` = owner + service code; the ``securityServer``
header picks the node). Who may read what, as X-Road's op-monitor decides: the owner member itself and the
central monitoring client of global configuration read everything; any other client reads operational data
only of exchanges it took part in (as client or as service provider) without ``securityServerInternalIp``,
and no health data (``access_denied``). Records of the last ``opmon_records_available_offset_seconds`` are
not served yet: ``recordsTo`` is cut there and ``nextRecordsFrom`` tells where to go on.
"""

from __future__ import annotations

from collections.abc import Sequence

from security_server.opmonitoring.monitor import OpMonitor
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import ClientId, ServiceId, format_id
from xroad_mn.wire import opmonitoring as om
from xroad_mn.wire.soap import SoapMessage

__all__ = ["answer_monitoring_service"]


def _service_of(parts: tuple[str | None, ...]) -> ServiceId | None:
    instance, cls, code, sub, service_code, version = parts
    if instance is None or cls is None or code is None or service_code is None:
        return None
    try:
        return ServiceId(instance, cls, code, sub, service_code, version)
    except XRoadError:
        return None


async def answer_monitoring_service(
    opmon: OpMonitor,
    request: SoapMessage,
    *,
    owner: ClientId,
    monitoring_client: ClientId | None,
) -> tuple[str, bytes]:
    """(content type, body) of the answer to ``request``, a monitoring service call to ``owner``."""
    header = request.x_road_header
    assert header.service is not None
    if header.service.client != owner:
        raise XRoadError(
            FaultCode.UNKNOWN_SERVICE,
            f"{header.service.service_code} is a service of this security server's owner "
            f"{format_id(owner)}, not of {format_id(header.service.client)}",
        )
    client = header.client
    privileged = client == owner or (monitoring_client is not None and client == monitoring_client)
    settings = opmon.settings
    if header.service.service_code == om.GET_HEALTH_DATA:
        asked = om.parse_health_data_request(request)
        if not privileged:
            raise XRoadError(
                FaultCode.ACCESS_DENIED,
                f"{format_id(client)} may not read the health data of this security server",
                kind=ErrorKind.DENIED,
            )
        now = opmon.now_ms()
        period = settings.opmon_health_statistics_period_seconds
        records = await opmon.store.producer_records_since(now - period * 1000, provider_filter=asked.client)
        last: dict[ServiceId, tuple[int | None, int | None]] = {}
        for parts, succeeded, stamp in await opmon.store.last_outcomes(provider_filter=asked.client):
            service = _service_of(parts)
            if service is None:
                continue
            ok, failed = last.get(service, (None, None))
            last[service] = (stamp, failed) if succeeded else (ok, stamp)
        events = om.service_events(records, now_ms=now, period_seconds=period, last=last)
        body = om.build_health_data_response(
            request,
            startup_ms=int(opmon.started_at.timestamp() * 1000),
            period_seconds=period,
            services=events,
        )
        return "text/xml; charset=UTF-8", body
    asked_data = om.parse_operational_data_request(request)
    available_before = opmon.now_ms() // 1000 - settings.opmon_records_available_offset_seconds
    if asked_data.records_from >= available_before:
        raise XRoadError(
            FaultCode.INVALID_REQUEST,
            f"Records not available from {asked_data.records_from} yet",
            kind=ErrorKind.BAD_INPUT,
        )
    records_to, next_from = asked_data.records_to, None
    if records_to >= available_before:
        records_to, next_from = available_before - 1, available_before
    page = await opmon.store.query(
        asked_data.records_from,
        records_to,
        limit=settings.opmon_max_records_in_payload,
        client_filter=None if privileged else client,
        provider_filter=asked_data.client,
    )
    fields: Sequence[str] = sorted(asked_data.output_fields)
    if not privileged:
        fields = sorted((set(fields) or om.PUBLIC_OUTPUT_FIELDS) - {"securityServerInternalIp"})
    rows = [r.to_json(fields) for r in page.records]
    return om.build_operational_data_response(
        request, rows, page.next_records_from if page.next_records_from is not None else next_from
    )


def is_monitoring_call(service: ServiceId | None) -> bool:
    """Whether ``service`` is one of the two monitoring services (of whatever provider)."""
    return service is not None and service.service_code in om.MONITORING_SERVICE_CODES
