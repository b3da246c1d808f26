"""Safe XML parsing for untrusted input: no DTDs, no entities, no network, bounded size.

Every module that parses XML it did not write itself (SOAP faults, identifiers, signatures, hash chains,
global configuration) goes through here. :func:`parse` refuses any DOCTYPE (internal subset, external DTD
or a bare ``<!DOCTYPE x>``) and any entity reference left in the tree, so an XXE payload is never
resolved; a syntax error, an empty document or oversized input is an :class:`~xroad_mn.errors.XRoadError`
with the caller's fault ``code`` and a message naming ``what`` was parsed. :func:`parser` is the
underlying lxml parser for the rare caller that must keep a document's DTD-free content as lxml reads it
(for example to canonicalise referenced data) rather than refuse it.

Example::

    >>> from xroad_mn.xmlsafe import parse
    >>> from xroad_mn.errors import FaultCode, XRoadError
    >>> parse(b"<a:x xmlns:a='urn:a'>1</a:x>", code=FaultCode.INVALID_XML, what="sample", max_bytes=1024).text
    '1'
    >>> try:
    ...     parse(b'<!DOCTYPE x [<!ENTITY e "1">]><x>&e;</x>', code=FaultCode.INVALID_XML, what="sample",
    ...           max_bytes=1024)
    ... except XRoadError as e:
    ...     print(e.code, "|", e.message)
    invalid_xml | sample must not contain a document type declaration (DOCTYPE)
"""

from __future__ import annotations

import threading
from typing import Final

from lxml import etree

from xroad_mn.errors import XRoadError

__all__ = ["parse", "parser"]


def parser(*, remove_comments: bool = False, remove_pis: bool = False) -> etree.XMLParser:
    """A new lxml parser that never loads a DTD, resolves an entity or touches the network.

    ``huge_tree`` stays off, so libxml2's own depth and size limits apply. A parser is not shared between
    threads, hence a factory.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=remove_comments,
        remove_pis=remove_pis,
    )


class _ThreadParsers(threading.local):
    """One parser per option set and thread, reused: building an lxml parser costs more than parsing a
    signature (a parser is not shared between threads, and never parses two documents at once)."""

    def __init__(self) -> None:
        self.parsers: dict[tuple[bool, bool], etree.XMLParser] = {}


_PARSERS: Final = _ThreadParsers()


def _thread_parser(remove_comments: bool, remove_pis: bool) -> etree.XMLParser:
    key = (remove_comments, remove_pis)
    found = _PARSERS.parsers.get(key)
    if found is None:
        found = _PARSERS.parsers[key] = parser(remove_comments=remove_comments, remove_pis=remove_pis)
    return found


def parse(
    data: bytes,
    *,
    code: str,
    what: str,
    max_bytes: int | None,
    remove_comments: bool = False,
    remove_pis: bool = False,
) -> etree._Element:
    """Parse untrusted ``data`` into its root element, or raise ``XRoadError(code)``.

    ``what`` names the document in messages (``"<what> is not well-formed XML: ..."``); ``max_bytes``
    bounds the input (``None`` when the caller has already bounded it). Comments and processing
    instructions are kept unless asked otherwise (signatures need them for canonicalisation).
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise XRoadError(code, f"{what} is larger than {max_bytes} bytes")
    try:
        root = etree.fromstring(data, _thread_parser(remove_comments, remove_pis))
    except (etree.LxmlError, ValueError) as e:
        raise XRoadError(code, f"{what} is not well-formed XML: {e}") from e
    if root is None:
        raise XRoadError(code, f"{what} is empty")
    docinfo = root.getroottree().docinfo
    # libxml2 gives every document with a DOCTYPE an internal DTD object, even an empty one;
    # lxml-stubs lack DocInfo.doctype.
    doctype: object = getattr(docinfo, "doctype", "")
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XRoadError(code, f"{what} must not contain a document type declaration (DOCTYPE)")
    if next(root.iter(etree.Entity), None) is not None:  # searched by libxml2, not element by element
        raise XRoadError(code, f"{what} must not contain entity references")
    return root
