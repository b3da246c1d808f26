"""The trust services' part of ``xroad-mn demo``: the development CA, OCSP responder and TSA.

On the first run it initialises the trust directory under ``DEMO/trust``; every run serves it and yields the
running services (their URLs and certificates) to the demo, which hands them to the other components.

Declared in ``pyproject.toml`` as ``trust = "trust_services.demo:component"`` in the
``xroad_mn.demo.trust`` entry-point group.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from trust_services.app import TrustSettings, run_trust_service
from trust_services.store import TrustFiles, init_trust_dir
from xroad_mn.certs import load_certificate
from xroad_mn.cli.demo import DemoSetup, DemoTrustServices
from xroad_mn.settings import load_settings

__all__ = ["component"]


@asynccontextmanager
async def component(setup: DemoSetup) -> AsyncIterator[DemoTrustServices]:
    """Initialise the trust directory once, serve the trust services and yield what they are."""
    files = TrustFiles(setup.directory / "trust")
    created = not files.ca_cert.exists()
    if created:
        await asyncio.to_thread(
            init_trust_dir, files.directory, instance=setup.instance, now=datetime.now(UTC)
        )
    settings = load_settings(
        TrustSettings, app="trust", overrides={"dir": files.directory, "host": setup.host, "port": setup.port}
    )
    async with run_trust_service(settings) as service:
        yield DemoTrustServices(
            directory=files.directory,
            ca_url=service.urls.ca,
            ocsp_url=service.urls.ocsp,
            tsa_url=service.urls.tsa,
            ca_certificate=load_certificate(files.ca_cert.read_bytes()),
            ocsp_certificate=load_certificate(files.ocsp_cert.read_bytes()),
            tsa_certificate=load_certificate(files.tsa_cert.read_bytes()),
            created=created,
        )
