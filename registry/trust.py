"""The registry's own trust: the approved CAs and TSAs in its store, as :class:`TrustMaterial`.

The management service verifies every signature, certificate and OCSP response of a management request
against this, so a security server's request is judged by exactly what the registry publishes.

Example::

    >>> from registry.trust import registry_trust
    >>> trust = await registry_trust(store)  # doctest: +SKIP
    >>> trust.instance, [ca.name for ca in trust.approved_cas]  # doctest: +SKIP
    ('MN', ['MN dev CA'])
"""

from __future__ import annotations

from registry.db import RegistryStore
from xroad_mn.globalconf.params import SharedParameters
from xroad_mn.globalconf.trust import TrustMaterial

__all__ = ["registry_trust"]


async def registry_trust(store: RegistryStore) -> TrustMaterial:
    """Approved CAs (with their OCSP responders), approved TSAs, OCSP freshness and time-stamping interval
    of the registry's instance, built as :meth:`TrustMaterial.from_parameters` builds them from
    shared-params."""
    settings = await store.get_settings()
    shared = SharedParameters(
        instance=settings.instance,
        ocsp_freshness_seconds=settings.ocsp_freshness_seconds,
        approved_cas=await store.list_cas(),
        approved_tsas=await store.list_tsas(),
    )
    return TrustMaterial.from_parameters(
        shared, time_stamping_interval_seconds=settings.timestamping_interval_seconds
    )
