"""The ``MONITORING`` optional part of global configuration (``monitoring-params.xml``).

It names the central monitoring client: the one X-Road member or subsystem that may read every security
server's operational and health data, besides each server's owner (``monitoring-conf.xsd``:
``conf/monitoringClient/monitoringClientId?``). Example::

    >>> from xroad_mn.identifiers import MemberId
    >>> data = build_monitoring_params(MemberId("MN", "GOV", "7000001").subsystem("monitor"))
    >>> parse_monitoring_params(data).monitoring_client
    SubsystemId(instance='MN', member_class='GOV', member_code='7000001', subsystem_code='monitor')

A part without ``monitoringClientId`` is valid (no central monitoring client); a malformed identifier is
``malformed_global_conf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf._xml import XROAD_NS, child, local_name, parse_safe_xml
from xroad_mn.identifiers import ID_NS, ClientId, client_id_from_xml, to_xml

__all__ = [
    "MONITORING_CONTENT_IDENTIFIER",
    "MONITORING_PARAMS_FILE",
    "MonitoringParameters",
    "build_monitoring_params",
    "parse_monitoring_params",
]

MONITORING_CONTENT_IDENTIFIER: Final = "MONITORING"
MONITORING_PARAMS_FILE: Final = "monitoring-params.xml"
_CODE: Final = FaultCode.MALFORMED_GLOBALCONF


@dataclass(frozen=True, slots=True)
class MonitoringParameters:
    """What the ``MONITORING`` part says: the central monitoring client, if any."""

    monitoring_client: ClientId | None


def parse_monitoring_params(data: bytes) -> MonitoringParameters:
    """Parse ``monitoring-params.xml`` (``malformed_global_conf`` when it does not follow the schema)."""
    what = MONITORING_PARAMS_FILE
    root = parse_safe_xml(data, _CODE, what)
    if local_name(root) != "conf" or etree.QName(root).namespace != XROAD_NS:
        raise XRoadError(_CODE, f"{what}: root element is not {{{XROAD_NS}}}conf")
    client_el = child(root, "monitoringClient")
    if client_el is None:
        raise XRoadError(_CODE, f"{what} has no <monitoringClient>", details={"element": "monitoringClient"})
    id_el = child(client_el, "monitoringClientId")
    if id_el is None:
        return MonitoringParameters(None)
    try:
        return MonitoringParameters(client_id_from_xml(id_el, strict=False))
    except XRoadError as e:
        raise XRoadError(_CODE, f"{what}: malformed monitoringClientId: {e.message}") from e


def build_monitoring_params(client: ClientId | None) -> bytes:
    """``monitoring-params.xml`` naming ``client`` (none: an empty ``monitoringClient``)."""
    root = etree.Element(f"{{{XROAD_NS}}}conf", nsmap={"tns": XROAD_NS, "id": ID_NS})
    client_el = etree.SubElement(root, "monitoringClient")
    if client is not None:
        to_xml(client, "monitoringClientId", parent=client_el)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
