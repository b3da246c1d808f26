"""OCSP for the node's own certificates: fetched from the CA's responders, cached in memory and in the
node's home, refreshed in the background, served to other security servers on port 5577.

* :mod:`security_server.ocsp.cache` — :class:`OwnOcspCache` and each certificate's :class:`OcspState`;
* :mod:`security_server.ocsp.refresh` — :func:`refresh_ocsp` and the :class:`OcspRefresher` task;
* :mod:`security_server.ocsp.responder` — :func:`create_ocsp_responder_app` (PR-MESSTRANSP §5.2).

Example::

    >>> cache = OwnOcspCache(ocsp_dir(settings.home))  # doctest: +SKIP
    >>> refresher = OcspRefresher(store, cache, load_trust,
    ...                           interval_seconds=settings.ocsp_fetch_interval_seconds)  # doctest: +SKIP
    >>> app = create_ocsp_responder_app(cache, refresher=refresher)  # doctest: +SKIP
    >>> async with run_node_ocsp_responder(settings, app):  # doctest: +SKIP
    ...     ...
"""

from security_server.ocsp.cache import OcspState, OcspStatusKind, OwnOcspCache, ocsp_dir
from security_server.ocsp.refresh import OcspRefresher, fetch_own_ocsp, find_issuer, refresh_ocsp
from security_server.ocsp.responder import (
    create_ocsp_responder_app,
    run_node_ocsp_responder,
    run_ocsp_responder,
)

__all__ = [
    "OcspRefresher",
    "OcspState",
    "OcspStatusKind",
    "OwnOcspCache",
    "create_ocsp_responder_app",
    "fetch_own_ocsp",
    "find_issuer",
    "ocsp_dir",
    "refresh_ocsp",
    "run_node_ocsp_responder",
    "run_ocsp_responder",
]
