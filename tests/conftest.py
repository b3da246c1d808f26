"""Shared test fixtures: the interop corpus, outside tools, and the databases every storage test runs on."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from trust_services.app import RunningTrustService

REPO_ROOT = Path(__file__).resolve().parents[1]
INTEROP_DIR = REPO_ROOT / "tests" / "data" / "xroad"
REQUIRE_ALL_ENV = "XROAD_TEST_REQUIRE_ALL"
PG_URL_ENV = "XROAD_TEST_PG_URL"


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    """The real X-Road artifacts, vendored in ``tests/data/xroad`` (see its NOTICE.md)."""
    return INTEROP_DIR


def require_tool(name: str) -> str:
    """Path of an outside command-line tool, or skip the test when the machine lacks it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"outside tool {name!r} is not installed")
    return path


@pytest.fixture(scope="session")
def openssl() -> str:
    return require_tool("openssl")


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    return require_tool("xmlsec1")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the PostgreSQL test database (``XROAD_TEST_PG_URL``); tests needing it skip without it."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"{PG_URL_ENV} is not set")
    return url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (``XROAD_TEST_REQUIRE_ALL=1``) a skipped test is a failure: every service must be there."""
    if os.environ.get(REQUIRE_ALL_ENV) != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"{REQUIRE_ALL_ENV}=1: {len(skipped)} test(s) were skipped; CI expects every test to run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
async def trust_service(tmp_path: Path) -> AsyncIterator[RunningTrustService]:
    """Our own CA, OCSP responder and TSA, freshly initialised in ``tmp_path/trust`` and served on 127.0.0.1
    at a free port (``service.urls.ca`` / ``.ocsp`` / ``.tsa``; the files are in ``service.directory``)."""
    from trust_services.app import TrustSettings, run_trust_service
    from trust_services.store import init_trust_dir

    directory = tmp_path / "trust"
    await asyncio.to_thread(init_trust_dir, directory, instance="MN", now=datetime.now(UTC))
    async with run_trust_service(TrustSettings(dir=directory, host="127.0.0.1", port=0)) as service:
        yield service
