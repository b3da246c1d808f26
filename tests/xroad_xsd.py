"""X-Road's own schemas (``xroad.xsd`` and its imports) from tests/data, for clients of a WSDL that imports
them by URL as X-Road's WSDLs do: a zeep client, an lxml resolver, and the header a zeep call sends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from lxml import etree

from xroad_mn.identifiers import ClientId, ServiceId, to_xml
from xroad_mn.wire.soap import XROAD_NS

if TYPE_CHECKING:
    from zeep import Client

__all__ = [
    "XROAD_XSD_BASE",
    "XROAD_XSD_DIR",
    "VendoredSchemas",
    "schema_within",
    "xroad_soap_headers",
    "zeep_client",
]

XROAD_XSD_BASE: Final = "http://x-road.eu/xsd/"
XROAD_XSD_DIR: Final = Path(__file__).parent / "data" / "xroad" / "identifiers" / "xsd"


def zeep_client(wsdl_url: str) -> Client:
    """A strict zeep client of the WSDL at ``wsdl_url`` (blocking: call it in a thread)."""
    from zeep import Client, Settings
    from zeep.transports import Transport

    class VendoredTransport(Transport):
        def load(self, url: str) -> bytes:
            if url.startswith(XROAD_XSD_BASE):
                return (XROAD_XSD_DIR / url.removeprefix(XROAD_XSD_BASE)).read_bytes()
            data: bytes = super().load(url)  # type: ignore[no-untyped-call]
            return data

    return Client(wsdl_url, transport=VendoredTransport(timeout=30), settings=Settings(strict=True))  # type: ignore[no-untyped-call]


class VendoredSchemas(etree.Resolver):
    """An lxml resolver of X-Road's schemas (by their URL, and of each other by relative path); nothing
    else."""

    def resolve(self, system_url: str, public_id: str, context: object = None) -> object:
        path = XROAD_XSD_DIR / system_url.removeprefix(XROAD_XSD_BASE)
        assert path.resolve().parent == XROAD_XSD_DIR.resolve(), system_url
        return self.resolve_filename(str(path), context)  # type: ignore[attr-defined]


class _DirectoryResolver(etree.Resolver):
    """An lxml resolver of schema imports from inside one directory (no network, nothing else on disk)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()

    def resolve(self, system_url: str, public_id: str, context: object = None) -> object:
        path = Path(system_url.removeprefix("file://")).resolve()
        assert self.root in path.parents, f"schema import outside {self.root}: {system_url}"
        return self.resolve_filename(str(path), context)  # type: ignore[attr-defined]


def schema_within(xsd: Path, root: Path) -> etree.XMLSchema:
    """The schema in file ``xsd``, its imports read only from under ``root`` (X-Road's global configuration
    schemas import each other by relative path)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_DirectoryResolver(root))
    return etree.XMLSchema(etree.parse(str(xsd), parser))


def xroad_soap_headers(
    client: ClientId, service: ServiceId, query_id: str, user_id: str
) -> list[etree._Element]:
    """The X-Road header elements of a SOAP request, as zeep's ``_soapheaders``."""

    def xrd(name: str, text: str) -> etree._Element:
        element = etree.Element(f"{{{XROAD_NS}}}{name}", nsmap={"xrd": XROAD_NS})
        element.text = text
        return element

    return [
        to_xml(client, f"{{{XROAD_NS}}}client"),
        to_xml(service, f"{{{XROAD_NS}}}service"),
        xrd("id", query_id),
        xrd("userId", user_id),
        xrd("protocolVersion", "4.0"),
    ]
