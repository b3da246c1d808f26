"""X-Road operational monitoring (PR-OPMON) without I/O: records, the two monitoring services' messages.

A security server keeps one :class:`OpRecord` per exchange and side (``Client`` on the consumer's server,
``Producer`` on the provider's): timings, sizes, ids, outcome. Two SOAP services, answered by the server
itself on behalf of its owner member, read them (namespace :data:`OPMON_NS`):

* ``getSecurityServerOperationalData`` (``searchCriteria``: ``recordsFrom``/``recordsTo`` in Unix seconds,
  optional ``client``; optional ``outputSpec/outputField*``) answers ``recordsCount``, ``records`` (a swaRef
  ``cid:`` to a gzip JSON attachment ``{"records": [...]}`` with X-Road's field names) and, when more records
  remain or ``recordsTo`` is not yet available, ``nextRecordsFrom``;
* ``getSecurityServerHealthData`` (optional ``filterCriteria/client``) answers ``monitoringStartupTimestamp``,
  ``statisticsPeriodSeconds`` and ``servicesEvents/serviceEvents*``.

Example::

    >>> from xroad_mn.identifiers import MemberId
    >>> from xroad_mn.wire.soap import build_soap_request, parse_soap_message
    >>> owner = MemberId("MN", "GOV", "9010001")
    >>> body = operational_data_request_body(1700000000, 1700000600)
    >>> raw = build_soap_request(owner, owner.service(GET_OPERATIONAL_DATA), "q", body)
    >>> request = parse_soap_message(raw)
    >>> asked = parse_operational_data_request(request)
    >>> asked.records_from, asked.records_to, asked.client
    (1700000000, 1700000600, None)
    >>> content_type, answer = build_operational_data_response(request, [{"serviceCode": "getDebt"}], None)
    >>> result = parse_operational_data_response(content_type, answer)
    >>> result.records_count, result.records
    (1, [{'serviceCode': 'getDebt'}])
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import statistics
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Final

from lxml import etree

from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.identifiers import (
    ID_NS,
    ClientId,
    MemberId,
    ServiceId,
    client_id_from_xml,
    service_id_from_xml,
    to_xml,
)
from xroad_mn.wire.parts import Attachment
from xroad_mn.wire.soap import (
    RESPONSE_SUFFIX,
    SOAP_CONTENT_TYPE,
    SoapMessage,
    build_soap_response,
    join_soap_message,
    parse_soap_message,
    soap_body,
    split_soap_message,
)

__all__ = [
    "CLIENT",
    "DEFAULT_HEALTH_STATISTICS_PERIOD_SECONDS",
    "DEFAULT_KEEP_RECORDS_DAYS",
    "DEFAULT_MAX_RECORDS_IN_PAYLOAD",
    "DEFAULT_RECORDS_AVAILABLE_OFFSET_SECONDS",
    "GET_HEALTH_DATA",
    "GET_OPERATIONAL_DATA",
    "JSON_FIELDS",
    "MONITORING_SERVICE_CODES",
    "OPMON_NS",
    "OUTPUT_FIELDS",
    "PRODUCER",
    "PUBLIC_OUTPUT_FIELDS",
    "RECORDS_CID",
    "HealthDataRequest",
    "HealthDataResult",
    "OpRecord",
    "OperationalDataRequest",
    "OperationalDataResult",
    "PeriodStatistics",
    "ServiceEvents",
    "bounded",
    "build_health_data_response",
    "build_operational_data_response",
    "health_data_request_body",
    "operational_data_request_body",
    "parse_health_data_request",
    "parse_health_data_response",
    "parse_operational_data_request",
    "parse_operational_data_response",
    "records_payload",
    "service_events",
]

OPMON_NS: Final = "http://x-road.eu/xsd/op-monitoring.xsd"
GET_OPERATIONAL_DATA: Final = "getSecurityServerOperationalData"
GET_HEALTH_DATA: Final = "getSecurityServerHealthData"
MONITORING_SERVICE_CODES: Final = frozenset({GET_OPERATIONAL_DATA, GET_HEALTH_DATA})
RECORDS_CID: Final = "operational-monitoring-data.json.gz"
"""The Content-ID of the records attachment (X-Road's constant)."""
GZIP_CONTENT_TYPE: Final = "application/gzip"

DEFAULT_KEEP_RECORDS_DAYS: Final = 7
DEFAULT_MAX_RECORDS_IN_PAYLOAD: Final = 10000
DEFAULT_RECORDS_AVAILABLE_OFFSET_SECONDS: Final = 60
DEFAULT_HEALTH_STATISTICS_PERIOD_SECONDS: Final = 600

CLIENT: Final = "Client"
PRODUCER: Final = "Producer"
"""``securityServerType``: the record was made on the consumer's (client's) or the provider's server."""

MAX_OUTPUT_FIELDS: Final = 256
"""Most ``outputField`` elements one request may carry (there are fewer distinct fields)."""
MAX_RECORDS_PAYLOAD_BYTES: Final = 512 * 1024 * 1024
"""Largest decompressed records payload :func:`parse_operational_data_response` reads."""
MAX_FAULT_STRING: Final = 2048
"""``faultString`` is cut to this many characters (X-Road's schema limit)."""
MAX_FIELD_CHARS: Final = 255


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One side's operational data of one exchange; ``None`` for what is unknown (left out of the JSON).

    Times are Unix milliseconds but ``monitoring_data_ts`` (Unix seconds, set when the record is stored).
    """

    security_server_type: str
    request_in_ts: int
    monitoring_data_ts: int | None = None
    security_server_internal_ip: str | None = None
    request_out_ts: int | None = None
    response_in_ts: int | None = None
    response_out_ts: int | None = None
    client_xroad_instance: str | None = None
    client_member_class: str | None = None
    client_member_code: str | None = None
    client_subsystem_code: str | None = None
    service_xroad_instance: str | None = None
    service_member_class: str | None = None
    service_member_code: str | None = None
    service_subsystem_code: str | None = None
    service_code: str | None = None
    service_version: str | None = None
    represented_party_class: str | None = None
    represented_party_code: str | None = None
    message_id: str | None = None
    message_user_id: str | None = None
    message_issue: str | None = None
    message_protocol_version: str | None = None
    client_security_server_address: str | None = None
    service_security_server_address: str | None = None
    request_size: int | None = None
    request_mime_size: int | None = None
    request_attachment_count: int | None = None
    response_size: int | None = None
    response_mime_size: int | None = None
    response_attachment_count: int | None = None
    succeeded: bool = False
    fault_code: str | None = None
    fault_string: str | None = None
    service_type: str | None = None
    status_code: int | None = None
    rest_method: str | None = None
    rest_path: str | None = None
    x_request_id: str | None = None
    xroad_version: str | None = None

    @property
    def client(self) -> ClientId | None:
        """The exchange's client, when its parts are known."""
        return _client(
            self.client_xroad_instance,
            self.client_member_class,
            self.client_member_code,
            self.client_subsystem_code,
        )

    @property
    def service(self) -> ServiceId | None:
        """The exchange's service, when its parts are known."""
        provider = _client(
            self.service_xroad_instance,
            self.service_member_class,
            self.service_member_code,
            self.service_subsystem_code,
        )
        if provider is None or self.service_code is None:
            return None
        return provider.service(self.service_code, self.service_version)

    @property
    def duration_ms(self) -> int | None:
        """From the request's arrival to the response's departure on this server."""
        if self.response_out_ts is None:
            return None
        return max(0, self.response_out_ts - self.request_in_ts)

    def to_json(self, output_fields: Collection[str] = ()) -> dict[str, object]:
        """The record with X-Road's JSON names (only ``output_fields`` if given); unknown values left out."""
        out: dict[str, object] = {}
        for attribute, name in JSON_FIELDS.items():
            if output_fields and name not in output_fields:
                continue
            value = getattr(self, attribute)
            if value is not None:
                out[name] = value
        return out


def _client(instance: str | None, cls: str | None, code: str | None, sub: str | None) -> ClientId | None:
    if instance is None or cls is None or code is None:
        return None
    try:
        member = MemberId(instance, cls, code)
        return member.subsystem(sub) if sub else member
    except XRoadError:
        return None


def _json_name(attribute: str) -> str:
    head, *rest = attribute.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_SPECIAL_NAMES: Final = {
    "client_xroad_instance": "clientXRoadInstance",
    "service_xroad_instance": "serviceXRoadInstance",
    "xroad_version": "xRoadVersion",
}
JSON_FIELDS: Final[Mapping[str, str]] = {
    f.name: _SPECIAL_NAMES.get(f.name, _json_name(f.name)) for f in fields(OpRecord)
}
"""Record attribute → X-Road's JSON field name (``monitoringDataTs``, ``clientXRoadInstance``, ...)."""
OUTPUT_FIELDS: Final = frozenset(JSON_FIELDS.values())
"""The names an ``outputField`` may give."""
PUBLIC_OUTPUT_FIELDS: Final = OUTPUT_FIELDS - {"securityServerInternalIp"}
"""What a client that is neither the owner nor the central monitoring client may see of its records."""


def _cut(value: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
    return None if value is None else value[:limit]


def bounded(record: OpRecord) -> OpRecord:
    """``record`` with its free-text fields cut to X-Road's schema limits."""
    changes: dict[str, str] = {}
    for f in fields(OpRecord):
        value = getattr(record, f.name)
        if isinstance(value, str):
            limit = MAX_FAULT_STRING if f.name == "fault_string" else MAX_FIELD_CHARS
            if len(value) > limit:
                changes[f.name] = value[:limit]
    return replace(record, **changes) if changes else record  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------
# Requests


def _om(name: str) -> str:
    return f"{{{OPMON_NS}}}{name}"


def _bad(message: str) -> XRoadError:
    return XRoadError(FaultCode.INVALID_REQUEST, message, kind=ErrorKind.BAD_INPUT)


def _body_of(message: SoapMessage, code: str) -> etree._Element:
    header = message.x_road_header
    if header.service is None or header.service.service_code != code:
        raise _bad(f"request is not {code}")
    body = soap_body(message)
    if etree.QName(body).namespace != OPMON_NS or etree.QName(body).localname != code:
        raise _bad(f"the body of {code} must be {{{OPMON_NS}}}{code}")
    return body


_JAVA_LONG: Final = re.compile(r"[+-]?[0-9]+")
"""What X-Road's ``Long.parseLong`` reads (the range is checked after)."""


def _long(element: etree._Element | None, name: str) -> int:
    if element is None:
        raise _bad(f"searchCriteria has no {name}")
    text = (element.text or "").strip()
    if not _JAVA_LONG.fullmatch(text):  # Python's int() would also take "1_000" and non-ASCII digits
        raise _bad(f"{name} {text[:40]!r} is not an integer")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise _bad(f"{name} is out of range")
    return value


@dataclass(frozen=True, slots=True)
class OperationalDataRequest:
    """What ``getSecurityServerOperationalData`` asks for."""

    records_from: int
    records_to: int
    client: ClientId | None = None
    """``searchCriteria/client``: only records whose service provider is this client."""
    output_fields: frozenset[str] = frozenset()
    """Requested JSON fields; empty: all."""


def parse_operational_data_request(message: SoapMessage) -> OperationalDataRequest:
    """Read and check the request (X-Road's order: negative times, ``recordsTo`` before ``recordsFrom``,
    unknown output fields are ``invalid_request``)."""
    body = _body_of(message, GET_OPERATIONAL_DATA)
    criteria = body.find(_om("searchCriteria"))
    if criteria is None:
        raise _bad("getSecurityServerOperationalData has no searchCriteria")
    records_from = _long(criteria.find(_om("recordsFrom")), "recordsFrom")
    records_to = _long(criteria.find(_om("recordsTo")), "recordsTo")
    if records_from < 0:
        raise _bad("Records from timestamp is a negative number")
    if records_to < 0:
        raise _bad("Records to timestamp is a negative number")
    if records_to < records_from:
        raise _bad("Records to timestamp is earlier than records from timestamp")
    client_el = criteria.find(_om("client"))
    client = client_id_from_xml(client_el, strict=False) if client_el is not None else None
    wanted: set[str] = set()
    spec = body.find(_om("outputSpec"))
    if spec is not None:
        elements = spec.findall(_om("outputField"))
        if len(elements) > MAX_OUTPUT_FIELDS:
            raise _bad(f"more than {MAX_OUTPUT_FIELDS} output fields")
        for element in elements:
            name = (element.text or "").strip()
            if name not in OUTPUT_FIELDS:
                raise _bad(f"Unknown output field in search criteria: {name[:80]}")
            wanted.add(name)
    return OperationalDataRequest(records_from, records_to, client, frozenset(wanted))


@dataclass(frozen=True, slots=True)
class HealthDataRequest:
    """What ``getSecurityServerHealthData`` asks for: optionally only the services of one provider."""

    client: ClientId | None = None


def parse_health_data_request(message: SoapMessage) -> HealthDataRequest:
    body = _body_of(message, GET_HEALTH_DATA)
    criteria = body.find(_om("filterCriteria"))
    client_el = criteria.find(_om("client")) if criteria is not None else None
    return HealthDataRequest(client_id_from_xml(client_el, strict=False) if client_el is not None else None)


def operational_data_request_body(
    records_from: int,
    records_to: int,
    *,
    client: ClientId | None = None,
    output_fields: Sequence[str] = (),
) -> etree._Element:
    """The body element of a ``getSecurityServerOperationalData`` request (for clients and tests)."""
    root = etree.Element(_om(GET_OPERATIONAL_DATA), nsmap={"om": OPMON_NS, "id": ID_NS})
    criteria = etree.SubElement(root, _om("searchCriteria"))
    etree.SubElement(criteria, _om("recordsFrom")).text = str(records_from)
    etree.SubElement(criteria, _om("recordsTo")).text = str(records_to)
    if client is not None:
        to_xml(client, _om("client"), parent=criteria)
    if output_fields:
        spec = etree.SubElement(root, _om("outputSpec"))
        for name in output_fields:
            etree.SubElement(spec, _om("outputField")).text = name
    return root


def health_data_request_body(client: ClientId | None = None) -> etree._Element:
    """The body element of a ``getSecurityServerHealthData`` request."""
    root = etree.Element(_om(GET_HEALTH_DATA), nsmap={"om": OPMON_NS, "id": ID_NS})
    if client is not None:
        to_xml(client, _om("client"), parent=etree.SubElement(root, _om("filterCriteria")))
    return root


# ------------------------------------------------------------------------------------------------------------
# Operational data response


def records_payload(records: Iterable[Mapping[str, object]]) -> bytes:
    """The gzip JSON attachment: ``{"records": [...]}``."""
    data = json.dumps({"records": list(records)}, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(data.encode("utf-8"), mtime=0)


def build_operational_data_response(
    request: SoapMessage, records: Sequence[Mapping[str, object]], next_records_from: int | None
) -> tuple[str, bytes]:
    """The response to ``request``: (content type, ``multipart/related`` body) whose SOAP part echoes the
    request header and whose one attachment is the gzip JSON of ``records`` (Content-ID
    :data:`RECORDS_CID`)."""
    element = etree.Element(_om(GET_OPERATIONAL_DATA + RESPONSE_SUFFIX), nsmap={"om": OPMON_NS, "id": ID_NS})
    etree.SubElement(element, _om("recordsCount")).text = str(len(records))
    etree.SubElement(element, _om("records")).text = f"cid:{RECORDS_CID}"
    if next_records_from is not None:
        etree.SubElement(element, _om("nextRecordsFrom")).text = str(next_records_from)
    soap = build_soap_response(request, element)
    attachment = Attachment(
        (
            ("Content-Type", GZIP_CONTENT_TYPE),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-ID", f"<{RECORDS_CID}>"),
        ),
        records_payload(records),
    )
    return join_soap_message(soap, f"{SOAP_CONTENT_TYPE}; charset=UTF-8", [attachment])


@dataclass(frozen=True, slots=True)
class OperationalDataResult:
    """A ``getSecurityServerOperationalDataResponse`` as a client reads it."""

    records_count: int
    records: list[dict[str, object]]
    next_records_from: int | None


def _child_int(element: etree._Element, name: str, *, required: bool = True) -> int | None:
    child = element.find(_om(name))
    if child is None:
        if required:
            raise XRoadError(FaultCode.INVALID_BODY, f"response has no {name}")
        return None
    try:
        return int((child.text or "").strip())
    except ValueError as e:
        raise XRoadError(FaultCode.INVALID_BODY, f"{name} is not an integer") from e


def _response_body(message: SoapMessage, code: str) -> etree._Element:
    if message.is_fault:
        raise message.fault()
    body = soap_body(message)
    if etree.QName(body).namespace != OPMON_NS or etree.QName(body).localname != code + RESPONSE_SUFFIX:
        raise XRoadError(FaultCode.INVALID_BODY, f"not a {code} response")
    return body


def parse_operational_data_response(content_type: str, body: bytes) -> OperationalDataResult:
    """Read the response and its records attachment (the one the swaRef names), decompressed."""
    split = split_soap_message(content_type, body)
    message = parse_soap_message(split.soap, content_type=split.content_type, require_service=False)
    element = _response_body(message, GET_OPERATIONAL_DATA)
    count = _child_int(element, "recordsCount")
    assert count is not None
    ref_el = element.find(_om("records"))
    ref = (ref_el.text or "").strip() if ref_el is not None else ""
    if not ref.startswith("cid:"):
        raise XRoadError(FaultCode.INVALID_BODY, "records is not a cid: reference")
    wanted = f"<{ref[4:]}>"
    attachment = next((a for a in split.attachments if a.header("content-id") == wanted), None)
    if attachment is None:
        raise XRoadError(FaultCode.INVALID_BODY, f"no attachment {wanted}")
    with gzip.GzipFile(fileobj=io.BytesIO(attachment.data)) as stream:
        data = stream.read(MAX_RECORDS_PAYLOAD_BYTES + 1)
    if len(data) > MAX_RECORDS_PAYLOAD_BYTES:
        raise XRoadError(FaultCode.INVALID_BODY, "records payload is too large")
    doc = json.loads(data)
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise XRoadError(FaultCode.INVALID_BODY, "records payload has no records array")
    return OperationalDataResult(count, records, _child_int(element, "nextRecordsFrom", required=False))


# ------------------------------------------------------------------------------------------------------------
# Health data


@dataclass(frozen=True, slots=True)
class PeriodStatistics:
    """``lastPeriodStatistics`` of one service: counts, and durations (ms) and sizes (bytes) when any."""

    successful: int = 0
    unsuccessful: int = 0
    request_duration: tuple[int, float, int, float] | None = None
    """min, average, max, standard deviation."""
    request_size: tuple[int, float, int, float] | None = None
    response_size: tuple[int, float, int, float] | None = None


@dataclass(frozen=True, slots=True)
class ServiceEvents:
    """``serviceEvents``: one service's health."""

    service: ServiceId
    last_successful_ms: int | None
    last_unsuccessful_ms: int | None
    statistics: PeriodStatistics
    service_type: str | None = None


def _summary(values: list[int]) -> tuple[int, float, int, float] | None:
    if not values:
        return None
    return min(values), statistics.fmean(values), max(values), statistics.pstdev(values)


def service_events(
    records: Iterable[OpRecord],
    *,
    now_ms: int,
    period_seconds: int,
    last: Mapping[ServiceId, tuple[int | None, int | None]] | None = None,
) -> list[ServiceEvents]:
    """Health data from ``Producer`` records (the services this server provides): each service's last
    successful and unsuccessful request (from ``records`` and ``last``, the latest known before them) and
    statistics of the requests that arrived in the last ``period_seconds`` before ``now_ms``. Sorted by
    service."""
    start = now_ms - period_seconds * 1000
    by_service: dict[ServiceId, list[OpRecord]] = {service: [] for service in last or {}}
    for record in records:
        service = record.service
        if record.security_server_type == PRODUCER and service is not None:
            by_service.setdefault(service, []).append(record)
    out: list[ServiceEvents] = []
    for service, items in by_service.items():
        known_ok, known_failed = (last or {}).get(service, (None, None))
        stamp = [(r.response_out_ts or r.request_in_ts, r) for r in items]
        ok = [t for t, r in stamp if r.succeeded] + ([known_ok] if known_ok is not None else [])
        failed = [t for t, r in stamp if not r.succeeded] + (
            [known_failed] if known_failed is not None else []
        )
        recent = [r for r in items if r.request_in_ts >= start]
        stats = PeriodStatistics(
            successful=sum(1 for r in recent if r.succeeded),
            unsuccessful=sum(1 for r in recent if not r.succeeded),
            request_duration=_summary([d for r in recent if (d := r.duration_ms) is not None]),
            request_size=_summary([r.request_size for r in recent if r.request_size is not None]),
            response_size=_summary([r.response_size for r in recent if r.response_size is not None]),
        )
        service_type = next((r.service_type for r in reversed(items) if r.service_type), None)
        out.append(
            ServiceEvents(service, max(ok, default=None), max(failed, default=None), stats, service_type)
        )
    out.sort(key=lambda e: (str(e.service), e.service.service_version or ""))
    return out


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "0.0"


def build_health_data_response(
    request: SoapMessage, *, startup_ms: int, period_seconds: int, services: Sequence[ServiceEvents]
) -> bytes:
    """The ``getSecurityServerHealthDataResponse`` to ``request`` (X-Road's element order)."""
    element = etree.Element(_om(GET_HEALTH_DATA + RESPONSE_SUFFIX), nsmap={"om": OPMON_NS, "id": ID_NS})
    etree.SubElement(element, _om("monitoringStartupTimestamp")).text = str(startup_ms)
    etree.SubElement(element, _om("statisticsPeriodSeconds")).text = str(period_seconds)
    events_el = etree.SubElement(element, _om("servicesEvents"))
    for events in services:
        one = etree.SubElement(events_el, _om("serviceEvents"))
        to_xml(events.service, _om("service"), parent=one)
        if events.last_successful_ms is not None:
            etree.SubElement(one, _om("lastSuccessfulRequestTimestamp")).text = str(events.last_successful_ms)
        if events.last_unsuccessful_ms is not None:
            etree.SubElement(one, _om("lastUnsuccessfulRequestTimestamp")).text = str(
                events.last_unsuccessful_ms
            )
        if events.service_type is not None:
            etree.SubElement(one, _om("serviceType")).text = events.service_type
        stats_el = etree.SubElement(one, _om("lastPeriodStatistics"))
        stats = events.statistics
        etree.SubElement(stats_el, _om("successfulRequestCount")).text = str(stats.successful)
        etree.SubElement(stats_el, _om("unsuccessfulRequestCount")).text = str(stats.unsuccessful)
        for prefix, kind, summary in (
            ("request", "Duration", stats.request_duration),
            ("request", "Size", stats.request_size),
            ("response", "Size", stats.response_size),
        ):
            if summary is None:
                continue
            low, mean, high, deviation = summary
            etree.SubElement(stats_el, _om(f"{prefix}Min{kind}")).text = str(low)
            etree.SubElement(stats_el, _om(f"{prefix}Average{kind}")).text = _number(mean)
            etree.SubElement(stats_el, _om(f"{prefix}Max{kind}")).text = str(high)
            etree.SubElement(stats_el, _om(f"{prefix}{kind}StdDev")).text = _number(deviation)
    return build_soap_response(request, element)


@dataclass(frozen=True, slots=True)
class HealthDataResult:
    """A ``getSecurityServerHealthDataResponse`` as a client reads it (statistics as name → text)."""

    startup_ms: int
    period_seconds: int
    services: dict[ServiceId, dict[str, str]]


def parse_health_data_response(message: SoapMessage) -> HealthDataResult:
    element = _response_body(message, GET_HEALTH_DATA)
    startup = _child_int(element, "monitoringStartupTimestamp")
    period = _child_int(element, "statisticsPeriodSeconds")
    assert startup is not None
    assert period is not None
    services: dict[ServiceId, dict[str, str]] = {}
    events_el = element.find(_om("servicesEvents"))
    for one in events_el.iterchildren(_om("serviceEvents")) if events_el is not None else ():
        service_el = one.find(_om("service"))
        if service_el is None:
            raise XRoadError(FaultCode.INVALID_BODY, "serviceEvents has no service")
        values: dict[str, str] = {}
        for child in one.iter():
            if isinstance(child.tag, str) and etree.QName(child).namespace == OPMON_NS and not len(child):
                values[etree.QName(child).localname] = (child.text or "").strip()
        services[service_id_from_xml(service_el, strict=False)] = values
    return HealthDataResult(startup, period, services)
