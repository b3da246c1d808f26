"""Global configuration parameter files: ``shared-params.xml`` and ``private-params.xml``.

Dataclass models plus a tolerant parser (versions 2–6; unknown elements are skipped, certificates may be
base64 of DER or of PEM text) and a generator for versions 2–6 whose output validates against X-Road's XSDs
of that version.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.params import parse_shared_params, build_shared_params
    >>> shared = parse_shared_params(Path("shared-params.xml").read_bytes())  # doctest: +SKIP
    >>> shared.instance, [m.member_code for m in shared.members]  # doctest: +SKIP
    ('DEV', ['1234', '4321'])
    >>> shared.security_servers[0].owner  # doctest: +SKIP
    MemberId(instance='DEV', member_class='COM', member_code='1234')
    >>> xml = build_shared_params(shared, version=6)  # doctest: +SKIP

Which version holds what (shared-params): ``source`` (with internal/external verification certificates)
from V3; ``acmeServer`` from V3 and its profile ids from V4; ``subsystemName`` and ``inMaintenanceMode``
from V5; ``defaultCsrFormat`` and ``costType`` from V6. ``authCertHash`` is SHA-1 in V2 and SHA-256 from
V3 (:func:`auth_cert_hash`). private-params has one layout for V2 and V3+ (V3+ allows extra elements).

The approved CA / TSA entries here are the file's full content; :mod:`xroad_mn.globalconf.trust` turns them
into verifier trust material.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf._xml import (
    XROAD_NS,
    b64_text,
    child,
    child_text,
    children,
    decode_b64,
    decode_certificate,
    local_name,
    parse_safe_xml,
)
from xroad_mn.globalconf.anchor import ConfigurationAnchor, anchor_element, anchor_from_element
from xroad_mn.identifiers import (
    ID_NS,
    ClientId,
    MemberId,
    ServiceId,
    client_id_from_xml,
    service_id_from_xml,
    to_xml,
)

__all__ = [
    "CURRENT_VERSION",
    "MIN_VERSION",
    "AcmeServer",
    "ApprovedCAEntry",
    "ApprovedTSAEntry",
    "CaInfo",
    "CentralService",
    "ConfigurationSource",
    "GlobalGroup",
    "ManagementService",
    "Member",
    "MemberClass",
    "OcspInfo",
    "PrivateParameters",
    "SecurityServer",
    "SharedParameters",
    "Subsystem",
    "auth_cert_hash",
    "build_private_params",
    "build_shared_params",
    "parse_private_params",
    "parse_shared_params",
]

CURRENT_VERSION: Final = 6
"""Global configuration version X-Road 7.8 generates."""
MIN_VERSION: Final = 2
_CODE: Final = FaultCode.MALFORMED_GLOBALCONF


@dataclass(frozen=True)
class OcspInfo:
    """An OCSP responder of a CA: URL and (optionally) its certificate."""

    url: str
    cert: x509.Certificate | None = None
    cost_type: str | None = None
    """V6: ``FREE``, ``PAID`` or ``UNDEFINED``."""


@dataclass(frozen=True)
class CaInfo:
    """A CA certificate with its OCSP responders."""

    cert: x509.Certificate
    ocsp: tuple[OcspInfo, ...] = ()


@dataclass(frozen=True)
class AcmeServer:
    """ACME settings of an approved CA (V3+; profile ids V4+)."""

    directory_url: str
    ip_address: str | None = None
    authentication_certificate_profile_id: str | None = None
    signing_certificate_profile_id: str | None = None


@dataclass(frozen=True)
class ApprovedCAEntry:
    """An ``approvedCA`` entry of shared-params."""

    name: str
    top_ca: CaInfo
    certificate_profile_info: str
    intermediate_cas: tuple[CaInfo, ...] = ()
    authentication_only: bool | None = None
    default_csr_format: str | None = None
    acme_server: AcmeServer | None = None


@dataclass(frozen=True)
class ApprovedTSAEntry:
    """An ``approvedTSA`` entry of shared-params."""

    name: str
    url: str
    cert: x509.Certificate
    cost_type: str | None = None


@dataclass(frozen=True)
class MemberClass:
    code: str
    description: str


@dataclass(frozen=True)
class Subsystem:
    code: str
    name: str | None = None


@dataclass(frozen=True)
class Member:
    """A registered member with its subsystems."""

    member_class: MemberClass
    member_code: str
    name: str
    subsystems: tuple[Subsystem, ...] = ()

    def id(self, instance: str) -> MemberId:
        return MemberId(instance, self.member_class.code, self.member_code)


@dataclass(frozen=True)
class SecurityServer:
    """A registered security server: owner, code, address, auth certificate hashes and clients."""

    owner: MemberId
    server_code: str
    address: str | None = None
    auth_cert_hashes: tuple[bytes, ...] = ()
    """SHA-1 (V2) or SHA-256 (V3+) of the DER of each authentication certificate."""
    clients: tuple[ClientId, ...] = ()
    in_maintenance_mode: bool = False
    maintenance_message: str | None = None


@dataclass(frozen=True)
class GlobalGroup:
    code: str
    description: str
    members: tuple[ClientId, ...] = ()


@dataclass(frozen=True)
class CentralService:
    """Legacy central service mapping."""

    service_code: str
    implementing_service: ServiceId | None = None


@dataclass(frozen=True)
class ConfigurationSource:
    """A configuration source (V3+): address and the keys that sign internal/external configuration."""

    address: str
    internal_verification_certs: tuple[x509.Certificate, ...] = ()
    external_verification_certs: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class SharedParameters:
    """The content of a ``shared-params.xml``."""

    instance: str
    ocsp_freshness_seconds: int
    sources: tuple[ConfigurationSource, ...] = ()
    approved_cas: tuple[ApprovedCAEntry, ...] = ()
    approved_tsas: tuple[ApprovedTSAEntry, ...] = ()
    members: tuple[Member, ...] = ()
    security_servers: tuple[SecurityServer, ...] = ()
    global_groups: tuple[GlobalGroup, ...] = ()
    central_services: tuple[CentralService, ...] = ()
    member_classes: tuple[MemberClass, ...] = ()

    def verification_certs(self, *, external: bool) -> tuple[x509.Certificate, ...]:
        """The sources' verification certificates for ``externalconf`` (external) or ``internalconf``."""
        out: list[x509.Certificate] = []
        for s in self.sources:
            for cert in s.external_verification_certs if external else s.internal_verification_certs:
                if cert not in out:
                    out.append(cert)
        return tuple(out)


@dataclass(frozen=True)
class ManagementService:
    auth_cert_reg_service_address: str
    management_request_service_provider_id: ClientId
    auth_cert_reg_service_cert: x509.Certificate | None = None


@dataclass(frozen=True)
class PrivateParameters:
    """The content of a ``private-params.xml``."""

    instance: str
    management_service: ManagementService
    time_stamping_interval_seconds: int
    configuration_anchors: tuple[ConfigurationAnchor, ...] = field(default=())
    """Anchors of federation partners whose ``externalconf`` this instance trusts."""


def auth_cert_hash(cert: x509.Certificate, version: int = CURRENT_VERSION) -> bytes:
    """``authCertHash`` of an authentication certificate: SHA-1 of its DER in V2, SHA-256 from V3."""
    der = cert.public_bytes(Encoding.DER)
    return hashlib.sha1(der).digest() if version <= 2 else hashlib.sha256(der).digest()  # noqa: S324


# --------------------------------------------------------------------------------------------------------
# Parsing


def _text(el: etree._Element, name: str) -> str:
    value = child_text(el, name, _CODE)
    assert value is not None
    return value


def _opt(el: etree._Element, name: str) -> str | None:
    return child_text(el, name, _CODE, required=False)


def _int(el: etree._Element, name: str) -> int:
    text = _text(el, name)
    try:
        return int(text)
    except ValueError as e:
        raise XRoadError(_CODE, f"<{name}> is not an integer") from e


def _bool(text: str | None) -> bool | None:
    if text is None:
        return None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise XRoadError(_CODE, f"{text[:20]!r} is not a boolean")


def _cert(el: etree._Element, name: str, what: str) -> x509.Certificate:
    return decode_certificate(_text(el, name), _CODE, what)


def _root(data: bytes, what: str) -> etree._Element:
    root = parse_safe_xml(data, _CODE, what)
    if local_name(root) != "conf" or etree.QName(root).namespace != XROAD_NS:
        raise XRoadError(_CODE, f"{what}: root element is not {{{XROAD_NS}}}conf")
    return root


def _ca_info(el: etree._Element, what: str) -> CaInfo:
    ocsp = tuple(
        OcspInfo(
            _text(o, "url"),
            decode_certificate(c, _CODE, f"{what} OCSP cert") if (c := _opt(o, "cert")) else None,
            _opt(o, "costType"),
        )
        for o in children(el, "ocsp")
    )
    return CaInfo(_cert(el, "cert", f"{what} cert"), ocsp)


def _approved_ca(el: etree._Element) -> ApprovedCAEntry:
    name = _text(el, "name")
    top = child(el, "topCA")
    if top is None:
        raise XRoadError(_CODE, f"approvedCA {name[:60]!r} has no topCA")
    acme_el = child(el, "acmeServer")
    acme = (
        AcmeServer(
            _text(acme_el, "directoryURL"),
            _opt(acme_el, "ipAddress"),
            _opt(acme_el, "authenticationCertificateProfileId"),
            _opt(acme_el, "signingCertificateProfileId"),
        )
        if acme_el is not None
        else None
    )
    return ApprovedCAEntry(
        name=name,
        top_ca=_ca_info(top, f"approvedCA {name[:60]!r} topCA"),
        certificate_profile_info=_text(el, "certificateProfileInfo"),
        intermediate_cas=tuple(
            _ca_info(i, f"approvedCA {name[:60]!r} intermediateCA") for i in children(el, "intermediateCA")
        ),
        authentication_only=_bool(_opt(el, "authenticationOnly")),
        default_csr_format=_opt(el, "defaultCsrFormat"),
        acme_server=acme,
    )


def _member_class(el: etree._Element) -> MemberClass:
    return MemberClass(_text(el, "code"), _text(el, "description"))


def _client_id(el: etree._Element) -> ClientId:
    try:
        return client_id_from_xml(el, strict=False)
    except XRoadError as e:
        raise XRoadError(_CODE, f"malformed client identifier: {e.message}") from e


def _lenient_client_id(el: etree._Element) -> ClientId | None:
    """A client identifier as X-Road's JAXB reads it, or None when it cannot be represented.

    Real files carry ``objectType="MEMBER"`` with a ``subsystemCode`` (X-Road reads a subsystem) and
    codes with characters our identifiers refuse; neither makes the whole file unusable.
    """
    try:
        return client_id_from_xml(el, strict=False)
    except XRoadError:
        pass
    parts = {local_name(c): (c.text or "").strip() for c in el}
    try:
        base = MemberId(
            parts.get("xRoadInstance", ""), parts.get("memberClass", ""), parts.get("memberCode", "")
        )
        sub = parts.get("subsystemCode")
        return base.subsystem(sub) if sub else base
    except XRoadError:
        return None


def _try_member_id(instance: str, member_class: str, member_code: str) -> MemberId | None:
    try:
        return MemberId(instance, member_class, member_code)
    except XRoadError:
        return None


def parse_shared_params(data: bytes) -> SharedParameters:
    """Parse a ``shared-params.xml`` of any version 2–6 (unknown elements are ignored).

    Structural errors (missing required element, dangling IDREF, bad base64 or certificate) are
    ``malformed_global_conf``.
    """
    root = _root(data, "shared-params")
    instance = _text(root, "instanceIdentifier")
    # IDREF target -> identifier; None for members whose codes our identifiers cannot represent.
    ids: dict[str, ClientId | None] = {}
    members: list[Member] = []
    for m in children(root, "member"):
        mc_el = child(m, "memberClass")
        if mc_el is None:
            raise XRoadError(_CODE, "member has no memberClass")
        member = Member(
            _member_class(mc_el),
            _text(m, "memberCode"),
            _opt(m, "name") or "",
            tuple(
                Subsystem(_text(s, "subsystemCode"), _opt(s, "subsystemName"))
                for s in children(m, "subsystem")
            ),
        )
        members.append(member)
        member_id = _try_member_id(instance, member.member_class.code, member.member_code)
        if (ref := m.get("id")) is not None:
            ids[ref] = member_id
        for s_el, sub in zip(children(m, "subsystem"), member.subsystems, strict=True):
            if (ref := s_el.get("id")) is not None:
                try:
                    ids[ref] = member_id.subsystem(sub.code) if member_id is not None else None
                except XRoadError:
                    ids[ref] = None

    def resolve(ref: str, what: str) -> ClientId | None:
        try:
            return ids[ref]
        except KeyError:
            raise XRoadError(_CODE, f"{what} refers to unknown id {ref[:40]!r}") from None

    servers: list[SecurityServer] = []
    for s in children(root, "securityServer"):
        owner = resolve(_text(s, "owner"), "securityServer owner")
        if owner is None:
            continue  # owned by a member our identifiers cannot represent
        if not isinstance(owner, MemberId):
            raise XRoadError(_CODE, "securityServer owner must be a member")
        clients = (resolve((c.text or "").strip(), "securityServer client") for c in children(s, "client"))
        maintenance = child(s, "inMaintenanceMode")
        servers.append(
            SecurityServer(
                owner=owner,
                server_code=_text(s, "serverCode"),
                address=_opt(s, "address"),
                auth_cert_hashes=tuple(
                    decode_b64(h.text or "", _CODE, "authCertHash") for h in children(s, "authCertHash")
                ),
                clients=tuple(c for c in clients if c is not None),
                in_maintenance_mode=maintenance is not None,
                maintenance_message=_opt(maintenance, "message") if maintenance is not None else None,
            )
        )
    sources = tuple(
        ConfigurationSource(
            _text(s, "address"),
            tuple(
                decode_certificate(c.text or "", _CODE, "internalVerificationCert")
                for c in children(s, "internalVerificationCert")
            ),
            tuple(
                decode_certificate(c.text or "", _CODE, "externalVerificationCert")
                for c in children(s, "externalVerificationCert")
            ),
        )
        for s in children(root, "source")
    )
    tsas = tuple(
        ApprovedTSAEntry(
            _text(t, "name"), _text(t, "url"), _cert(t, "cert", "approvedTSA cert"), _opt(t, "costType")
        )
        for t in children(root, "approvedTSA")
    )
    groups = tuple(
        GlobalGroup(
            _text(g, "groupCode"),
            _opt(g, "description") or "",
            tuple(gm for m in children(g, "groupMember") if (gm := _lenient_client_id(m)) is not None),
        )
        for g in children(root, "globalGroup")
    )
    central: list[CentralService] = []
    for cs_el in children(root, "centralService"):
        impl_el = child(cs_el, "implementingService")
        impl: ServiceId | None = None
        if impl_el is not None:
            try:
                impl = service_id_from_xml(impl_el, strict=False)
            except XRoadError as e:
                raise XRoadError(_CODE, f"malformed implementingService: {e.message}") from e
        central.append(CentralService(_text(cs_el, "serviceCode"), impl))
    settings = child(root, "globalSettings")
    if settings is None:
        raise XRoadError(_CODE, "shared-params has no globalSettings")
    return SharedParameters(
        instance=instance,
        ocsp_freshness_seconds=_int(settings, "ocspFreshnessSeconds"),
        sources=sources,
        approved_cas=tuple(_approved_ca(c) for c in children(root, "approvedCA")),
        approved_tsas=tsas,
        members=tuple(members),
        security_servers=tuple(servers),
        global_groups=groups,
        central_services=tuple(central),
        member_classes=tuple(_member_class(m) for m in children(settings, "memberClass")),
    )


def parse_private_params(data: bytes) -> PrivateParameters:
    """Parse a ``private-params.xml`` of any version 2–6 (unknown elements are ignored)."""
    root = _root(data, "private-params")
    ms = child(root, "managementService")
    if ms is None:
        raise XRoadError(_CODE, "private-params has no managementService")
    provider_el = child(ms, "managementRequestServiceProviderId")
    if provider_el is None:
        raise XRoadError(_CODE, "managementService has no managementRequestServiceProviderId")
    cert_text = _opt(ms, "authCertRegServiceCert")
    return PrivateParameters(
        instance=_text(root, "instanceIdentifier"),
        management_service=ManagementService(
            _text(ms, "authCertRegServiceAddress"),
            _client_id(provider_el),
            decode_certificate(cert_text, _CODE, "authCertRegServiceCert") if cert_text else None,
        ),
        time_stamping_interval_seconds=_int(root, "timeStampingIntervalSeconds"),
        configuration_anchors=tuple(
            anchor_from_element(a, code=_CODE, strict=False) for a in children(root, "configurationAnchor")
        ),
    )


# --------------------------------------------------------------------------------------------------------
# Generation


def _check_version(version: int) -> None:
    if not MIN_VERSION <= version <= CURRENT_VERSION:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"global configuration version {version} is not supported")


def _new_root() -> etree._Element:
    return etree.Element(f"{{{XROAD_NS}}}conf", nsmap={"ns2": ID_NS, "ns3": XROAD_NS})


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, name)
    if text is not None:
        el.text = text
    return el


def _der_b64(cert: x509.Certificate) -> str:
    return b64_text(cert.public_bytes(Encoding.DER))


def _serialize(root: etree._Element) -> bytes:
    # Identifiers declare their namespace locally; hoist it to the root's ns2 as X-Road writes it.
    etree.cleanup_namespaces(root, top_nsmap={"ns2": ID_NS, "ns3": XROAD_NS})
    etree.indent(root, space="    ")
    body: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + body + b"\n"


def _identifier(parent: etree._Element, tag: str, x: ClientId | ServiceId) -> None:
    to_xml(x, tag, parent=parent)


def _ca_info_xml(parent: etree._Element, name: str, info: CaInfo, version: int) -> None:
    el = _sub(parent, name)
    _sub(el, "cert", _der_b64(info.cert))
    for o in info.ocsp:
        oel = _sub(el, "ocsp")
        _sub(oel, "url", o.url)
        if o.cert is not None:
            _sub(oel, "cert", _der_b64(o.cert))
        if version >= 6 and o.cost_type is not None:
            _sub(oel, "costType", o.cost_type)


def _member_class_xml(parent: etree._Element, name: str, mc: MemberClass) -> None:
    el = _sub(parent, name)
    _sub(el, "code", mc.code)
    _sub(el, "description", mc.description)


def build_shared_params(params: SharedParameters, version: int = CURRENT_VERSION) -> bytes:
    """Write ``shared-params.xml`` of ``version`` (2–6) in the X-Road layout (``ns3:conf``, id="idN").

    Elements the version does not have are left out; V3+ needs at least one source. Every security
    server owner and client must be a listed member or subsystem of this instance.
    """
    _check_version(version)
    if version >= 3 and not params.sources:
        raise XRoadError(FaultCode.INTERNAL_ERROR, f"shared-params V{version} needs at least one source")
    root = _new_root()
    _sub(root, "instanceIdentifier", params.instance)
    if version >= 3:
        for s in params.sources:
            sel = _sub(root, "source")
            _sub(sel, "address", s.address)
            for c in s.internal_verification_certs:
                _sub(sel, "internalVerificationCert", _der_b64(c))
            for c in s.external_verification_certs:
                _sub(sel, "externalVerificationCert", _der_b64(c))
    for ca in params.approved_cas:
        cel = _sub(root, "approvedCA")
        _sub(cel, "name", ca.name)
        if ca.authentication_only is not None:
            _sub(cel, "authenticationOnly", "true" if ca.authentication_only else "false")
        _ca_info_xml(cel, "topCA", ca.top_ca, version)
        for i in ca.intermediate_cas:
            _ca_info_xml(cel, "intermediateCA", i, version)
        _sub(cel, "certificateProfileInfo", ca.certificate_profile_info)
        if version >= 6 and ca.default_csr_format is not None:
            _sub(cel, "defaultCsrFormat", ca.default_csr_format)
        if version >= 3 and ca.acme_server is not None:
            ael = _sub(cel, "acmeServer")
            _sub(ael, "directoryURL", ca.acme_server.directory_url)
            if ca.acme_server.ip_address is not None:
                _sub(ael, "ipAddress", ca.acme_server.ip_address)
            if version >= 4:
                if (auth_id := ca.acme_server.authentication_certificate_profile_id) is not None:
                    _sub(ael, "authenticationCertificateProfileId", auth_id)
                if (sign_id := ca.acme_server.signing_certificate_profile_id) is not None:
                    _sub(ael, "signingCertificateProfileId", sign_id)
    for t in params.approved_tsas:
        tel = _sub(root, "approvedTSA")
        _sub(tel, "name", t.name)
        _sub(tel, "url", t.url)
        _sub(tel, "cert", _der_b64(t.cert))
        if version >= 6 and t.cost_type is not None:
            _sub(tel, "costType", t.cost_type)
    refs: dict[ClientId, str] = {}
    for m in params.members:
        mel = _sub(root, "member")
        mel.set("id", f"id{len(refs)}")
        refs[m.id(params.instance)] = mel.get("id", "")
        _member_class_xml(mel, "memberClass", m.member_class)
        _sub(mel, "memberCode", m.member_code)
        _sub(mel, "name", m.name)
        for sub in m.subsystems:
            sub_el = _sub(mel, "subsystem")
            ref = f"id{len(refs)}"
            sub_el.set("id", ref)
            refs[m.id(params.instance).subsystem(sub.code)] = ref
            _sub(sub_el, "subsystemCode", sub.code)
            if version >= 5 and sub.name is not None:
                _sub(sub_el, "subsystemName", sub.name)

    def ref_of(client: ClientId, what: str) -> str:
        try:
            return refs[client]
        except KeyError:
            raise XRoadError(FaultCode.INTERNAL_ERROR, f"{what} {client} is not a listed member") from None

    for ss in params.security_servers:
        sel = _sub(root, "securityServer")
        _sub(sel, "owner", ref_of(ss.owner, "security server owner"))
        _sub(sel, "serverCode", ss.server_code)
        if ss.address is not None:
            _sub(sel, "address", ss.address)
        for h in ss.auth_cert_hashes:
            _sub(sel, "authCertHash", b64_text(h))
        for client in ss.clients:
            _sub(sel, "client", ref_of(client, "security server client"))
        if version >= 5 and ss.in_maintenance_mode:
            mm = _sub(sel, "inMaintenanceMode")
            if ss.maintenance_message is not None:
                _sub(mm, "message", ss.maintenance_message)
    for g in params.global_groups:
        gel = _sub(root, "globalGroup")
        _sub(gel, "groupCode", g.code)
        _sub(gel, "description", g.description)
        for gm in g.members:
            _identifier(gel, "groupMember", gm)
    for cs in params.central_services:
        cel = _sub(root, "centralService")
        _sub(cel, "serviceCode", cs.service_code)
        if cs.implementing_service is not None:
            _identifier(cel, "implementingService", cs.implementing_service)
    settings = _sub(root, "globalSettings")
    for mc in params.member_classes:
        _member_class_xml(settings, "memberClass", mc)
    _sub(settings, "ocspFreshnessSeconds", str(params.ocsp_freshness_seconds))
    return _serialize(root)


def build_private_params(params: PrivateParameters, version: int = CURRENT_VERSION) -> bytes:
    """Write ``private-params.xml`` (same layout in every version 2–6)."""
    _check_version(version)
    root = _new_root()
    _sub(root, "instanceIdentifier", params.instance)
    for a in params.configuration_anchors:
        anchor_element(
            "configurationAnchor",
            a.instance,
            [(s.download_url, s.verification_certs) for s in a.sources],
            a.generated_at,
            parent=root,
        )
    ms = params.management_service
    mel = _sub(root, "managementService")
    _sub(mel, "authCertRegServiceAddress", ms.auth_cert_reg_service_address)
    if ms.auth_cert_reg_service_cert is not None:
        _sub(mel, "authCertRegServiceCert", _der_b64(ms.auth_cert_reg_service_cert))
    _identifier(mel, "managementRequestServiceProviderId", ms.management_request_service_provider_id)
    _sub(root, "timeStampingIntervalSeconds", str(params.time_stamping_interval_seconds))
    return _serialize(root)
