"""Shared test fixtures: the interop corpus, outside tools, the databases every storage test runs on, the dev
trust services and a SoftHSM2 token."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncEngine

    from trust_services.app import RunningTrustService

# Hypothesis' per-example deadline measures wall time: on a shared 2-core machine a 0.2 ms example was once
# paused past 200 ms and failed as "flaky". The per-test timeout still bounds every test.
settings.register_profile("xroad-mn", deadline=None)
settings.load_profile("xroad-mn")

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


@asynccontextmanager
async def migrated_database(
    request: pytest.FixtureRequest,
    sqlite_file: Path,
    migrate: Callable[[str | AsyncEngine], Awaitable[None]],
    *,
    schema_prefix: str,
) -> AsyncIterator[AsyncEngine]:
    """An engine on a database that ``migrate`` (an application's) has brought from empty to its current
    schema, for a fixture parametrised over the backends: ``request.param`` ``"sqlite"`` is the file
    ``sqlite_file``, migrated by URL; ``"postgres"`` is a schema of its own (``schema_prefix`` and a random
    suffix) in :func:`postgres_url`'s database, migrated by engine and dropped afterwards. Both entry points
    of ``migrate`` thus run from empty."""
    from sqlalchemy import text

    from xroad_mn.database import create_engine, sqlite_url

    if request.param == "sqlite":
        url = sqlite_url(sqlite_file)
        await migrate(url)
        engine = create_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    pg_url: str = request.getfixturevalue("postgres_url")
    schema = f"{schema_prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(pg_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


LONGEST_MODULES_FIRST = (
    "tests/security_server/test_messagelog_e2e.py",
    "tests/security_server/test_node_e2e.py",
    "tests/security_server/test_exchange_faults.py",
    "tests/security_server/test_exchange_e2e.py",
    "tests/security_server/test_exchange_soap.py",
    "tests/security_server/test_exchange_serving.py",
    "tests/security_server/test_storage.py",
)
"""Modules that take longest, in that order. ``make unit`` deals modules out to its workers in collection
order (``--dist loadfile``): starting the longest first keeps one from starting last and running alone."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collect :data:`LONGEST_MODULES_FIRST` first; every other module and every test within a module keep
    their order."""
    rank = {REPO_ROOT / name: i for i, name in enumerate(LONGEST_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path, len(rank)))


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


@pytest.fixture(scope="session")
def trust_dir_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trust directory initialised once per test process: generating its three RSA keys is most of what
    starting a :func:`trust_service` costs, and every test copies this one instead."""
    from trust_services.store import init_trust_dir

    directory = tmp_path_factory.mktemp("trust-template") / "trust"
    init_trust_dir(directory, instance="MN", now=datetime.now(UTC))
    return directory


@pytest.fixture
async def trust_service(tmp_path: Path, trust_dir_template: Path) -> AsyncIterator[RunningTrustService]:
    """Our own CA, OCSP responder and TSA in a fresh ``tmp_path/trust`` (a copy of
    :func:`trust_dir_template`: nothing issued or revoked yet), served on 127.0.0.1 at a free port
    (``service.urls.ca`` / ``.ocsp`` / ``.tsa``; the files are in ``service.directory``)."""
    from trust_services.app import TrustSettings, run_trust_service

    directory = tmp_path / "trust"
    await asyncio.to_thread(shutil.copytree, trust_dir_template, directory)
    async with run_trust_service(TrustSettings(dir=directory, host="127.0.0.1", port=0)) as service:
        yield service


MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
TOKEN_LABEL = "xroad-mn-test"
USER_PIN = "87654321"
SO_PIN = "12345678"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    label: str
    pin: str


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 token in a temporary token directory, initialised before the module is first loaded.

    PKCS#11 modules read their configuration once per process (``C_Initialize``), so the session shares
    one configuration and one token; each test removes the keys it made.
    """
    util = require_tool("softhsm2-util")
    module = next((m for m in MODULE_CANDIDATES if m.exists()), None)
    if module is None:
        pytest.skip("the SoftHSM2 PKCS#11 module (Debian package softhsm2) is not installed")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(
            [util, "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", USER_PIN, "--so-pin", SO_PIN],
            check=True, capture_output=True,
        )  # fmt: skip
        yield SoftHsm(module, TOKEN_LABEL, USER_PIN)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
