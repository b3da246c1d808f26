"""Trust material from global configuration: approved CAs, their OCSP responders, approved TSAs, freshness.

Reads a configuration directory as X-Road stores it (``<dir>/instance-identifier`` naming the own instance,
``<dir>/<INSTANCE>/shared-params.xml`` and ``private-params.xml`` per instance, federated instances beside
it), in configuration versions 2-6. Parsing is sans-I/O (:meth:`TrustMaterial.from_shared_params` takes
bytes); reading an installed directory is :mod:`xroad_mn.confclient.installed`.

Example::

    >>> from pathlib import Path
    >>> from xroad_mn.confclient.installed import load_trust_material, load_trust_store
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

Parsing. The files are read by :func:`~xroad_mn.globalconf.params.parse_shared_params` and
:func:`~xroad_mn.globalconf.params.parse_private_params` (the one parser of parameter files) and turned into
trust material here. Unknown elements are ignored (real V3 files break the V3 XSD); CA certificates may be
base64 of DER or base64 of PEM text. XML is parsed without DTDs, entities or network access and any DOCTYPE
is refused, so XXE payloads are never resolved. Elements X-Road's XSD requires are required (an
``approvedTSA`` without ``cert``, a private-params without ``timeStampingIntervalSeconds`` make the file
malformed), and negative ``ocspFreshnessSeconds`` / ``timeStampingIntervalSeconds`` are refused.
A malformed part of a *federated* instance is skipped (as X-Road's configuration directory does) and named
in :attr:`TrustStore.skipped`; skipping trust only makes verification stricter. A malformed part of the
own instance raises ``malformed_global_conf``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509

from xroad_mn.certs import same_certificate
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.globalconf._xml import MAX_XML_BYTES
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    CaInfo,
    SharedParameters,
    parse_private_params,
    parse_shared_params,
)

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
    "parse_time_stamping_interval",
]

MAX_PARAMS_BYTES: Final = MAX_XML_BYTES
"""Largest parameters file read; real shared-params of large instances are well under a megabyte."""
MAX_INSTANCES: Final = 1000
"""Most instance directories read from one configuration directory."""
DEFAULT_OCSP_FRESHNESS_SECONDS: Final = 3600
"""X-Road's default ``ocspFreshnessSeconds`` (documentation only: the value must be in shared-params)."""
SHARED_PARAMS_FILE: Final = "shared-params.xml"
PRIVATE_PARAMS_FILE: Final = "private-params.xml"
INSTANCE_IDENTIFIER_FILE: Final = "instance-identifier"


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
        shared = parse_shared_params(xml_bytes)
        if expected_instance is not None and shared.instance != expected_instance:
            raise _malformed(
                f"{SHARED_PARAMS_FILE} is for instance {shared.instance!r}, expected {expected_instance!r}"
            )
        interval = None
        if private_params is not None:
            interval = parse_time_stamping_interval(private_params, expected_instance=shared.instance)
        return cls.from_parameters(shared, time_stamping_interval_seconds=interval)

    @classmethod
    def from_parameters(
        cls, shared: SharedParameters, *, time_stamping_interval_seconds: int | None = None
    ) -> TrustMaterial:
        """Trust material of one instance from its parsed shared parameters
        (:func:`~xroad_mn.globalconf.params.parse_shared_params`)."""
        return cls(
            instance=shared.instance,
            approved_cas=tuple(_approved_ca(entry, shared.instance) for entry in shared.approved_cas),
            approved_tsas=tuple(
                ApprovedTSA(t.name, t.url, t.cert, shared.instance) for t in shared.approved_tsas
            ),
            ocsp_freshness_seconds=_non_negative(shared.ocsp_freshness_seconds, "ocspFreshnessSeconds"),
            time_stamping_interval_seconds=time_stamping_interval_seconds,
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


def _non_negative(number: int, name: str) -> int:
    if number < 0:
        raise _malformed(f"{name} is negative: {number}")
    return number


def _responders(info: CaInfo) -> tuple[OcspResponder, ...]:
    return tuple(OcspResponder(o.url, o.cert) for o in info.ocsp)


def _approved_ca(entry: ApprovedCAEntry, instance: str) -> ApprovedCA:
    return ApprovedCA(
        name=entry.name,
        top_ca=entry.top_ca.cert,
        intermediates=tuple(i.cert for i in entry.intermediate_cas),
        ocsp_responders=_responders(entry.top_ca),
        certificate_profile_info=entry.certificate_profile_info,
        authentication_only=bool(entry.authentication_only),
        instance=instance,
        intermediate_ocsp_responders=tuple(_responders(i) for i in entry.intermediate_cas),
    )


def parse_time_stamping_interval(xml_bytes: bytes, *, expected_instance: str | None = None) -> int | None:
    """``timeStampingIntervalSeconds`` of a ``private-params.xml``
    (parsed by :func:`~xroad_mn.globalconf.params.parse_private_params`, where it is required)."""
    private = parse_private_params(xml_bytes)
    if expected_instance is not None and private.instance != expected_instance:
        raise _malformed(
            f"{PRIVATE_PARAMS_FILE} is for instance {private.instance!r}, expected {expected_instance!r}"
        )
    return _non_negative(private.time_stamping_interval_seconds, "timeStampingIntervalSeconds")
