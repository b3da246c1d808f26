"""What the proxies hand to the message log: one :class:`LogRecord` per request and per response.

Example::

    >>> record = LogRecord(  # doctest: +SKIP
    ...     query_id="MN-4f1c...", x_request_id="9d3e...", client=client, service=service,
    ...     response=False, rest=True, message=header_part, attachments=(body,), signature=signature)
    >>> record_id = await message_log.log(record)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

from xroad_mn.identifiers import ClientId, ServiceId
from xroad_mn.signature import SignatureData

__all__ = ["LogRecord"]


@dataclass(frozen=True)
class LogRecord:
    """A signed message of an exchange, as the message log keeps it."""

    query_id: str
    """SOAP ``id`` or REST ``X-Road-Id``."""
    x_request_id: str
    """The exchange's ``x-road-request-id`` (pairs the request and the response)."""
    client: ClientId
    """The exchange's client (member or subsystem), for both the request and the response."""
    service: ServiceId
    response: bool
    rest: bool
    message: bytes
    """The exact SOAP bytes, or the REST header part (``/message.xml`` of the signature)."""
    attachments: tuple[bytes, ...]
    """SOAP attachments in order, or ``(body,)`` for a REST message with a body."""
    signature: SignatureData
    """The XAdES document and, for batch signatures, the hash-chain result and this message's chain."""
