"""One MIME part of an X-Road message besides its SOAP or REST body: an attachment, as both the SOAP message
protocol (:mod:`xroad_mn.wire.soap`) and the node-to-node transport message carry it.

Example::

    >>> from xroad_mn.wire.parts import Attachment
    >>> att = Attachment((("content-type", "text/plain"), ("content-id", "<a1>")), b"hello")
    >>> att.content_type, att.header("Content-ID")
    ('text/plain', '<a1>')

``headers`` keep the order they were read or are to be written in; names compare case-insensitively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_ATTACHMENT_CONTENT_TYPE", "Attachment"]

DEFAULT_ATTACHMENT_CONTENT_TYPE: Final = "application/octet-stream"
"""The content type of an attachment that names none (RFC 2046 treats unknown parts as octets)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment: its MIME headers (name, value), in order, and its bytes exactly as received."""

    headers: tuple[tuple[str, str], ...]
    data: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def content_type(self) -> str:
        """The attachment's ``Content-Type``, or :data:`DEFAULT_ATTACHMENT_CONTENT_TYPE`."""
        return self.header("content-type") or DEFAULT_ATTACHMENT_CONTENT_TYPE
