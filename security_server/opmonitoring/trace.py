"""What one side of one exchange learns as it runs, turned into an operational data record at its end.

The proxy makes an :class:`OpTrace` when a request arrives, the exchange fills in ids, sizes and the
moments it sends and receives, and the proxy finishes it with the outcome — a response, or the error that
ended the exchange — and hands the record to the node's :class:`~security_server.opmonitoring.OpMonitor`::

    >>> trace = OpTrace(CLIENT, now_ms())
    >>> trace.request_size = 1024
    >>> record = trace.finish(error=None)
    >>> record.security_server_type, record.succeeded, record.request_size
    ('Client', True, 1024)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import ClientId, RepresentedParty, ServiceId, SubsystemId
from xroad_mn.wire.opmonitoring import CLIENT, PRODUCER, OpRecord

__all__ = ["CLIENT", "PRODUCER", "OpTrace", "now_ms"]


def now_ms() -> int:
    """Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def _sub(client: ClientId) -> str | None:
    return client.subsystem_code if isinstance(client, SubsystemId) else None


@dataclass
class OpTrace:
    """The facts of one side of one exchange gathered so far (mutable: the exchange fills it in)."""

    side: str
    request_in_ts: int
    client: ClientId | None = None
    service: ServiceId | None = None
    message_id: str | None = None
    user_id: str | None = None
    issue: str | None = None
    protocol_version: str | None = None
    represented_party: RepresentedParty | None = None
    x_request_id: str | None = None
    rest_method: str | None = None
    rest_path: str | None = None
    service_type: str | None = None
    internal_ip: str | None = None
    client_server_address: str | None = None
    service_server_address: str | None = None
    request_out_ts: int | None = None
    response_in_ts: int | None = None
    request_size: int | None = None
    request_mime_size: int | None = None
    request_attachment_count: int | None = None
    response_size: int | None = None
    response_mime_size: int | None = None
    response_attachment_count: int | None = None
    status_code: int | None = None
    xroad_version: str | None = None
    fault: XRoadError | None = None
    """A fault the response carries (the provider IS's SOAP fault): the exchange failed though answered."""

    def request_sent(self) -> None:
        self.request_out_ts = now_ms()

    def response_received(self) -> None:
        self.response_in_ts = now_ms()

    def finish(self, *, error: XRoadError | None) -> OpRecord:
        """The record of the exchange that ended now, with ``error`` (already coded as answered) or not."""
        failure = error or self.fault
        client, service = self.client, self.service
        return OpRecord(
            security_server_type=self.side,
            request_in_ts=self.request_in_ts,
            security_server_internal_ip=self.internal_ip,
            request_out_ts=self.request_out_ts,
            response_in_ts=self.response_in_ts,
            response_out_ts=now_ms(),
            client_xroad_instance=client.instance if client else None,
            client_member_class=client.member_class if client else None,
            client_member_code=client.member_code if client else None,
            client_subsystem_code=_sub(client) if client else None,
            service_xroad_instance=service.instance if service else None,
            service_member_class=service.member_class if service else None,
            service_member_code=service.member_code if service else None,
            service_subsystem_code=service.subsystem_code if service else None,
            service_code=service.service_code if service else None,
            service_version=service.service_version if service else None,
            represented_party_class=self.represented_party.party_class if self.represented_party else None,
            represented_party_code=self.represented_party.party_code if self.represented_party else None,
            message_id=self.message_id,
            message_user_id=self.user_id,
            message_issue=self.issue,
            message_protocol_version=self.protocol_version,
            client_security_server_address=self.client_server_address,
            service_security_server_address=self.service_server_address,
            request_size=self.request_size,
            request_mime_size=self.request_mime_size,
            request_attachment_count=self.request_attachment_count,
            response_size=self.response_size if error is None else None,
            response_mime_size=self.response_mime_size if error is None else None,
            response_attachment_count=self.response_attachment_count if error is None else None,
            succeeded=failure is None,
            fault_code=failure.code if failure is not None else None,
            fault_string=failure.message if failure is not None else None,
            service_type=self.service_type,
            status_code=self.status_code if error is None else None,
            rest_method=self.rest_method,
            rest_path=self.rest_path,
            x_request_id=self.x_request_id,
            xroad_version=self.xroad_version,
        )
