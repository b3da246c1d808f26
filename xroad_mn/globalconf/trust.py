"""Trust material from global configuration: approved CAs, their OCSP responders, approved TSAs, freshness.

Reads a configuration directory as X-Road stores it (``<dir>/instance-identifier`` naming the own instance,
``<dir>/<INSTANCE>/shared-params.xml`` and ``private-params.xml`` per instance, federated instances beside
it), in configuration versions 2-6. Parsing is sans-I/O (:meth:`TrustMaterial.from_shared_params` takes
bytes); :func:`load_trust_store` and :func:`load_trust_material` only read the files.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.globalconf.trust import load_trust_material, load_trust_store
    >>> trust = load_trust_material(Path("/etc/xroad/globalconf"))  # doctest: +SKIP
    >>> trust.instance, len(trust.approved_cas), trust.ocsp_freshness_seconds  # doctest: +SKIP
    ('EE', 10, 42)
    >>> store = load_trust_store(Path("/etc/xroad/globalconf"))  # doctest: +SKIP
    >>> sorted(store.by_instance)  # doctest: +SKIP
    ['EE', 'bar', 'foo']

Federation. :func:`load_trust_material` returns **one** :class:`TrustMaterial` for the own instance whose
``approved_cas`` and ``approved_tsas`` are those of *every* instance in the directory (own instance first;
each entry says its ``instance``), and whose ``ocsp_freshness_seconds`` and
``time_stamping_interval_seconds`` are the own instance's. That is what X-Road's ``GlobalConfImpl`` does
(``getAllCaCerts`` and ``getTspCertificates`` cover all shared parameters; freshness comes from the own
instance), and it is what an evidence verifier needs. :func:`load_trust_store` keeps the instances apart.

Robustness. Unknown elements are ignored (real V3 files break the V3 XSD); CA certificates may be base64
of DER or base64 of PEM text. XML is parsed without DTDs, entities or network access and any DOCTYPE is
refused, so XXE payloads are never resolved. A malformed part of a *federated* instance is skipped (as
X-Road's configuration directory does) and named in :attr:`TrustStore.skipped`; skipping trust only makes
verification stricter. A malformed part of the own instance raises ``malformed_globalconf``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from cryptography import x509
from lxml import etree

from xroad_mn.certs import load_certificate, same_certificate
from xroad_mn.errors import FaultCode, XRoadError

__all__ = [
    "DEFAULT_OCSP_FRESHNESS_SECONDS",
    "INSTANCE_IDENTIFIER_FILE",
    "MAX_INSTANCES",
    "MAX_PARAMS_BYTES",
    "PRIVATE_PARAMS_FILE",
    "SHARED_PARAMS_FILE",
    "ApprovedCA",
    "ApprovedTSA",
    "OcspResponder",
    "TrustMaterial",
    "TrustStore",
    "load_trust_material",
    "load_trust_store",
    "parse_time_stamping_interval",
]

MAX_PARAMS_BYTES: Final = 32 * 1024 * 1024
"""Largest parameters file read; real shared-params of large instances are well under a megabyte."""
MAX_INSTANCES: Final = 1000
"""Most instance directories read from one configuration directory."""
DEFAULT_OCSP_FRESHNESS_SECONDS: Final = 3600
"""X-Road's default ``ocspFreshnessSeconds`` (documentation only: the value must be in shared-params)."""
SHARED_PARAMS_FILE: Final = "shared-params.xml"
PRIVATE_PARAMS_FILE: Final = "private-params.xml"
INSTANCE_IDENTIFIER_FILE: Final = "instance-identifier"
_ROOT_NAME: Final = "conf"


@dataclass(frozen=True, slots=True)
class OcspResponder:
    """An OCSP responder of a CA: ``approvedCA/topCA|intermediateCA/ocsp`` (``url``, optional ``cert``)."""

    url: str
    certificate: x509.Certificate | None


@dataclass(frozen=True, slots=True)
class ApprovedCA:
    """One ``approvedCA`` of an instance's shared parameters.

    ``ocsp_responders`` are the top CA's; ``intermediate_ocsp_responders[i]`` are those of
    ``intermediates[i]`` (use :meth:`responders_for` for either).
    """

    name: str
    top_ca: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    ocsp_responders: tuple[OcspResponder, ...]
    certificate_profile_info: str
    authentication_only: bool
    instance: str
    intermediate_ocsp_responders: tuple[tuple[OcspResponder, ...], ...] = ()

    @property
    def ca_certificates(self) -> tuple[x509.Certificate, ...]:
        """The top CA and the intermediate CAs of this entry."""
        return (self.top_ca, *self.intermediates)

    def responders_for(self, ca_cert: x509.Certificate) -> tuple[OcspResponder, ...]:
        """The OCSP responders configured for ``ca_cert`` (this entry's top CA or an intermediate)."""
        if same_certificate(ca_cert, self.top_ca):
            return self.ocsp_responders
        for cert, responders in zip(self.intermediates, self.intermediate_ocsp_responders, strict=False):
            if same_certificate(ca_cert, cert):
                return responders
        return ()

    def has_ca(self, ca_cert: x509.Certificate) -> bool:
        """True when ``ca_cert`` is this entry's top CA or one of its intermediates."""
        return any(same_certificate(ca_cert, c) for c in self.ca_certificates)


@dataclass(frozen=True, slots=True)
class ApprovedTSA:
    """One ``approvedTSA``: a time-stamping authority trusted directly by its certificate."""

    name: str
    url: str
    certificate: x509.Certificate
    instance: str = ""


@dataclass(frozen=True, slots=True)
class TrustMaterial:
    """What a verifier trusts: approved CAs and TSAs (of every instance loaded), OCSP freshness, and the
    time-stamping interval of the own instance (``instance``)."""

    instance: str
    approved_cas: tuple[ApprovedCA, ...]
    approved_tsas: tuple[ApprovedTSA, ...]
    ocsp_freshness_seconds: int
    time_stamping_interval_seconds: int | None
    federated_instances: tuple[str, ...] = ()
    """Other instances whose CAs and TSAs were merged in (see :meth:`merged_with`)."""

    @classmethod
    def from_shared_params(
        cls, xml_bytes: bytes, *, private_params: bytes | None = None, expected_instance: str | None = None
    ) -> TrustMaterial:
        """Parse one instance's ``shared-params.xml`` (any version 2-6) and, optionally, its
        ``private-params.xml`` for ``timeStampingIntervalSeconds``."""
        root = _parse_conf(xml_bytes, SHARED_PARAMS_FILE)
        instance = _required_text(root, "instanceIdentifier", SHARED_PARAMS_FILE)
        if expected_instance is not None and instance != expected_instance:
            raise _malformed(
                f"{SHARED_PARAMS_FILE} is for instance {instance!r}, expected {expected_instance!r}"
            )
        cas = tuple(_approved_ca(el, instance) for el in _children(root, "approvedCA"))
        tsas = tuple(t for t in (_approved_tsa(el, instance) for el in _children(root, "approvedTSA")) if t)
        settings = _first(root, "globalSettings")
        if settings is None:
            raise _malformed(f"{SHARED_PARAMS_FILE} of {instance} has no globalSettings")
        freshness = _int(
            _required_text(settings, "ocspFreshnessSeconds", SHARED_PARAMS_FILE), "ocspFreshnessSeconds"
        )
        interval = None
        if private_params is not None:
            interval = parse_time_stamping_interval(private_params, expected_instance=instance)
        return cls(
            instance=instance,
            approved_cas=cas,
            approved_tsas=tsas,
            ocsp_freshness_seconds=freshness,
            time_stamping_interval_seconds=interval,
        )

    def merged_with(self, others: Iterable[TrustMaterial]) -> TrustMaterial:
        """This instance's material plus the CAs and TSAs of ``others`` (federated instances).

        Instance, freshness and time-stamping interval stay this instance's.
        """
        cas = list(self.approved_cas)
        tsas = list(self.approved_tsas)
        federated = list(self.federated_instances)
        for other in others:
            cas.extend(other.approved_cas)
            tsas.extend(other.approved_tsas)
            federated.append(other.instance)
        return TrustMaterial(
            instance=self.instance,
            approved_cas=tuple(cas),
            approved_tsas=tuple(tsas),
            ocsp_freshness_seconds=self.ocsp_freshness_seconds,
            time_stamping_interval_seconds=self.time_stamping_interval_seconds,
            federated_instances=tuple(federated),
        )

    @property
    def tsa_certificates(self) -> tuple[x509.Certificate, ...]:
        """Certificates of every approved TSA."""
        return tuple(t.certificate for t in self.approved_tsas)

    @property
    def top_ca_certificates(self) -> tuple[x509.Certificate, ...]:
        """Certificates of every approved top CA."""
        return tuple(ca.top_ca for ca in self.approved_cas)

    def cas_for(self, ca_cert: x509.Certificate) -> tuple[ApprovedCA, ...]:
        """Approved CA entries whose top CA or an intermediate CA is ``ca_cert``."""
        return tuple(ca for ca in self.approved_cas if ca.has_ca(ca_cert))

    def ocsp_responder_certs_for(self, ca_cert: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """OCSP responder certificates global configuration lists for ``ca_cert`` (X-Road's
        ``isOcspResponderCert(ca, cert)``)."""
        return tuple(
            r.certificate for ca in self.cas_for(ca_cert) for r in ca.responders_for(ca_cert) if r.certificate
        )

    @property
    def ocsp_responder_certificates(self) -> tuple[x509.Certificate, ...]:
        """Every OCSP responder certificate listed anywhere (X-Road's ``getOcspResponderCertificates``)."""
        out: list[x509.Certificate] = []
        for ca in self.approved_cas:
            for responders in (ca.ocsp_responders, *ca.intermediate_ocsp_responders):
                out.extend(r.certificate for r in responders if r.certificate is not None)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Every instance of a configuration directory, kept apart; :meth:`trust_material` merges them."""

    instance: str
    """The own instance (from the ``instance-identifier`` file)."""
    by_instance: Mapping[str, TrustMaterial]
    skipped: tuple[str, ...] = field(default=())
    """Federated parts that could not be read, each as ``"<dir>: <reason>"``."""

    def trust_material(self) -> TrustMaterial:
        """The own instance's material with every other instance's CAs and TSAs merged in."""
        own = self.by_instance.get(self.instance)
        if own is None:
            raise _malformed(
                f"configuration directory has no {SHARED_PARAMS_FILE} for instance {self.instance}"
            )
        return own.merged_with(m for name, m in sorted(self.by_instance.items()) if name != self.instance)


# ------------------------------------------------------------------------------------------------------------
# Parsing helpers


def _malformed(message: str) -> XRoadError:
    return XRoadError(FaultCode.MALFORMED_GLOBALCONF, message)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def _parse_conf(data: bytes, what: str) -> etree._Element:
    if len(data) > MAX_PARAMS_BYTES:
        raise _malformed(f"{what} is larger than {MAX_PARAMS_BYTES} bytes")
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as e:
        raise _malformed(f"{what} is not well-formed XML: {e}") from e
    tree = root.getroottree()
    info = tree.docinfo
    # lxml-stubs lack DocInfo.doctype; any DOCTYPE shows up there or as an internal/external DTD.
    doctype: object = getattr(info, "doctype", None)
    if info.internalDTD is not None or info.externalDTD is not None or doctype:
        raise _malformed(f"{what} contains a DOCTYPE; DTDs and entities are not allowed")
    if etree.QName(root).localname != _ROOT_NAME:
        raise _malformed(f"{what} root element is {etree.QName(root).localname!r}, expected {_ROOT_NAME!r}")
    return root


def _local(el: etree._Element) -> str | None:
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in parent if _local(c) == name]


def _first(parent: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in parent if _local(c) == name), None)


def _text(el: etree._Element) -> str:
    """An element's character content, skipping comments and processing instructions inside it."""
    parts = [el.text or ""]
    for child in el:
        if not isinstance(child, etree._Comment | etree._ProcessingInstruction):
            raise _malformed(f"element {_local(el)!r} must hold text, found child {_local(child)!r}")
        parts.append(child.tail or "")
    return "".join(parts).strip()


def _optional_text(parent: etree._Element, name: str) -> str | None:
    el = _first(parent, name)
    if el is None:
        return None
    return _text(el) or None


def _required_text(parent: etree._Element, name: str, what: str) -> str:
    value = _optional_text(parent, name)
    if value is None:
        raise _malformed(f"{what}: element {_local(parent)!r} has no {name!r}")
    return value


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError as e:
        raise _malformed(f"{name} is not an integer: {value!r}") from e
    if number < 0:
        raise _malformed(f"{name} is negative: {number}")
    return number


def _bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value in {"true", "1"}:
        return True
    if value in {"false", "0"}:
        return False
    raise _malformed(f"{name} is not a boolean: {value!r}")


def _cert(text: str, where: str) -> x509.Certificate:
    try:
        return load_certificate(text.encode("ascii"))
    except (XRoadError, UnicodeEncodeError) as e:
        reason = e.message if isinstance(e, XRoadError) else str(e)
        raise _malformed(f"{where}: certificate cannot be decoded: {reason}") from e


def _ca_info(el: etree._Element, where: str) -> tuple[x509.Certificate, tuple[OcspResponder, ...]]:
    cert = _cert(_required_text(el, "cert", SHARED_PARAMS_FILE), where)
    responders: list[OcspResponder] = []
    for ocsp_el in _children(el, "ocsp"):
        url = _required_text(ocsp_el, "url", SHARED_PARAMS_FILE)
        cert_text = _optional_text(ocsp_el, "cert")
        responders.append(OcspResponder(url, _cert(cert_text, f"{where} OCSP {url}") if cert_text else None))
    return cert, tuple(responders)


def _approved_ca(el: etree._Element, instance: str) -> ApprovedCA:
    name = _required_text(el, "name", SHARED_PARAMS_FILE)
    where = f"{instance} approvedCA {name!r}"
    top_el = _first(el, "topCA")
    if top_el is None:
        raise _malformed(f"{where} has no topCA")
    top, top_responders = _ca_info(top_el, where)
    intermediates = [_ca_info(i, f"{where} intermediateCA") for i in _children(el, "intermediateCA")]
    return ApprovedCA(
        name=name,
        top_ca=top,
        intermediates=tuple(c for c, _ in intermediates),
        ocsp_responders=top_responders,
        certificate_profile_info=_required_text(el, "certificateProfileInfo", SHARED_PARAMS_FILE),
        authentication_only=_bool(_optional_text(el, "authenticationOnly"), "authenticationOnly"),
        instance=instance,
        intermediate_ocsp_responders=tuple(r for _, r in intermediates),
    )


def _approved_tsa(el: etree._Element, instance: str) -> ApprovedTSA | None:
    name = _required_text(el, "name", SHARED_PARAMS_FILE)
    url = _required_text(el, "url", SHARED_PARAMS_FILE)
    cert_text = _optional_text(el, "cert")
    if cert_text is None:
        return None  # a TSA without a certificate cannot vouch for any time-stamp
    return ApprovedTSA(name, url, _cert(cert_text, f"{instance} approvedTSA {name!r}"), instance)


def parse_time_stamping_interval(xml_bytes: bytes, *, expected_instance: str | None = None) -> int | None:
    """``timeStampingIntervalSeconds`` of a ``private-params.xml`` (``None`` when absent)."""
    root = _parse_conf(xml_bytes, PRIVATE_PARAMS_FILE)
    instance = _optional_text(root, "instanceIdentifier")
    if expected_instance is not None and instance is not None and instance != expected_instance:
        raise _malformed(
            f"{PRIVATE_PARAMS_FILE} is for instance {instance!r}, expected {expected_instance!r}"
        )
    value = _optional_text(root, "timeStampingIntervalSeconds")
    return None if value is None else _int(value, "timeStampingIntervalSeconds")


# ------------------------------------------------------------------------------------------------------------
# Directory loading (the only I/O here)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PARAMS_BYTES:
            raise _malformed(f"{path} is larger than {MAX_PARAMS_BYTES} bytes")
        return path.read_bytes()
    except OSError as e:
        raise _malformed(f"cannot read {path}: {e}") from e


def _load_instance(instance_dir: Path, *, own: bool) -> TrustMaterial:
    shared = _read(instance_dir / SHARED_PARAMS_FILE)
    private_path = instance_dir / PRIVATE_PARAMS_FILE
    private = _read(private_path) if own and private_path.is_file() else None
    return TrustMaterial.from_shared_params(shared, private_params=private)


def load_trust_store(conf_dir: Path) -> TrustStore:
    """Read every instance of a stored configuration directory.

    The own instance is named by ``instance-identifier``; a missing or empty file raises
    ``malformed_globalconf`` (X-Road: ``FAILURE_MISSING_INSTANCE_IDENTIFIER``), as does a malformed part of
    the own instance. Malformed federated parts are skipped and listed in :attr:`TrustStore.skipped`.
    """
    id_file = conf_dir / INSTANCE_IDENTIFIER_FILE
    if not id_file.is_file():
        raise _malformed(f"configuration directory {conf_dir} has no {INSTANCE_IDENTIFIER_FILE} file")
    own_instance = _read(id_file).decode("utf-8", "replace").strip()
    if not own_instance:
        raise _malformed(f"{id_file} is empty")
    try:
        instance_dirs = sorted(
            (p for p in conf_dir.iterdir() if (p / SHARED_PARAMS_FILE).is_file()),
            key=lambda p: (p.name != own_instance, p.name),
        )
    except OSError as e:
        raise _malformed(f"cannot list {conf_dir}: {e}") from e
    if len(instance_dirs) > MAX_INSTANCES:
        raise _malformed(f"{conf_dir} holds more than {MAX_INSTANCES} instances")
    by_instance: dict[str, TrustMaterial] = {}
    skipped: list[str] = []
    for instance_dir in instance_dirs:
        own = instance_dir.name == own_instance
        try:
            material = _load_instance(instance_dir, own=own)
        except XRoadError as e:
            if own:
                raise
            skipped.append(f"{instance_dir.name}: {e.message}")
            continue
        if own and material.instance != own_instance:
            raise _malformed(
                f"{instance_dir / SHARED_PARAMS_FILE} names instance {material.instance!r}, "
                f"expected {own_instance!r}"
            )
        if material.instance in by_instance:
            skipped.append(f"{instance_dir.name}: instance {material.instance!r} appears twice")
            continue
        by_instance[material.instance] = material
    return TrustStore(
        instance=own_instance, by_instance=MappingProxyType(by_instance), skipped=tuple(skipped)
    )


def load_trust_material(conf_dir: Path) -> TrustMaterial:
    """The own instance's trust material with every federated instance's CAs and TSAs merged in.

    Raises ``malformed_globalconf`` when the own instance has no readable shared parameters.
    """
    return load_trust_store(conf_dir).trust_material()
