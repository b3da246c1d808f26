"""The message log end to end: a few hundred exchanges through two nodes, archived, verified, tampered with.

The federation of :mod:`tests.security_server.exchange_world` (consumer node 127.0.0.24, provider node
127.0.0.25), once with each node's database in a SQLite file of its home and once in a PostgreSQL schema of
its own, carries :data:`EXCHANGES` concurrent REST and SOAP exchanges naming data subjects, and a few that
fail after their request was logged (the provider's IS for the service ``dead`` does not listen).
Everything is time-stamped; the consumer archives with ``xroad-mn node log archive`` in a process of its own,
the provider with the same command in this one, rotating small archives so each chain has several; the
cleaner then deletes the archived records from both databases, and a second, smaller round of exchanges
stays in the databases. The nodes are stopped and an auditor's commands run on their homes:

- ``node log verify --archives`` passes on both with the right counts, and names the failed exchanges with
  their X-Road fault code and time (archived or not);
- ``xroad-mn archive verify`` / ``verify-chain`` pass on the archives; containers taken out of them verify
  with ``xmlsec1 --verify`` and their time-stamps with ``openssl ts -verify``;
- on copies of a node's home (on PostgreSQL with a copy of its schema), one at a time: a byte changed in a
  record in the database, a record deleted from it, an archive removed from the middle of the chain, an
  archive's ``linkinginfo`` edited (the zip rewritten) — each makes ``node log verify`` exit 1 naming the
  record or archive.
"""

from __future__ import annotations

import asyncio
import io
import random
import shutil
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import pytest
import pytest_asyncio
from sqlalchemy import Connection, MetaData, Table, delete, func, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.app import EXCHANGE_KEY
from security_server.db import migrate
from security_server.home import load_node_settings
from security_server.messagelog import Timestamper
from security_server.messagelog.archiver import clean_once
from security_server.messagelog.models import MessageAttachmentRow, MessageRecordRow
from security_server.opmonitoring.models import OpRecordRow
from security_server.proxy.node import ExchangeNode
from tests.security_server.exchange_world import (
    CONSUMER,
    PROVIDER,
    SOAP_NS,
    Federation,
    federation_in,
    write_node_settings,
)
from tests.security_server.test_exchange_e2e import _openssl_ts_verify, _xmlsec_verify
from tests.security_server.test_node_e2e import BACKENDS, Ran, xroad_mn
from trust_services.store import TrustFiles
from xroad_mn.archive import LINKING_INFO
from xroad_mn.database import create_engine
from xroad_mn.wire.soap import build_soap_request
from xroad_mn.wire.subject import REGISTRATION_NUMBER

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADDRESSES: Final = ("127.0.0.24", "127.0.0.25")
EXCHANGES: Final = 300
"""Exchanges of the first round (half REST, half SOAP), archived and cleaned from the databases."""
LATER_EXCHANGES: Final = 20
"""Exchanges of the second round, left in the databases."""
CONCURRENCY: Final = 24
ARCHIVE_MAX_BYTES: Final = 1024 * 1024
"""Small archives: each chain gets several."""
DEAD_SERVICE: Final = "dead"
GET_CITIZEN: Final = PROVIDER.service("getCitizen", "v1")
SUBJECT_NS: Final = "https://xroad.mn/xsd/extensions"
FAILURE_CODES: Final = {"ss1": "server.serverproxy.network_error", "ss2": "network_error"}
"""What each side logs for an exchange whose provider IS does not listen: the provider node's own error, and
the consumer node's the provider's fault as it arrived (prefixed ``server.serverproxy``)."""


@dataclass
class Audit:
    """What the exchanges left behind, for the auditor's tests."""

    backend: str
    root: Path
    fed: Federation
    trust: TrustFiles
    homes: dict[str, Path]
    query_ids: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    """X-Road id of each failed exchange → ``first`` (archived) or ``later`` (in the database)."""
    db_records: dict[str, int] = field(default_factory=dict)
    archived_records: dict[str, int] = field(default_factory=dict)
    archives: dict[str, list[Path]] = field(default_factory=dict)
    """Each node's archives in chain order."""
    seconds: dict[str, float] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


def _node(fed: Federation, server_code: str) -> ExchangeNode:
    return fed.running[server_code].app[EXCHANGE_KEY].node


def _soap_request(query_id: str, regnum: str) -> bytes:
    body = f'<c:getCitizen xmlns:c="{SOAP_NS}"><c:regnum>{regnum}</c:regnum></c:getCitizen>'.encode()
    request = build_soap_request(CONSUMER, GET_CITIZEN, query_id, body, user_id="officer-7", issue="audit")
    subject = f'<mn:dataSubject xmlns:mn="{SUBJECT_NS}">{regnum}</mn:dataSubject>'.encode()
    return request.replace(b"</SOAP-ENV:Header>", subject + b"</SOAP-ENV:Header>")


async def _rest(fed: Federation, query_id: str, regnum: str, service: str = "citizens") -> int:
    headers = {**fed.client_header(), "X-Road-Id": query_id, "X-MN-Data-Subject": regnum}
    async with fed.session.get(fed.rest_url(service, f"/people/{regnum}"), headers=headers) as resp:
        await resp.read()
        return resp.status


async def _soap(fed: Federation, query_id: str, regnum: str) -> int:
    async with fed.session.post(
        f"{fed.client_proxy}/",
        data=_soap_request(query_id, regnum),
        headers={"Content-Type": "text/xml; charset=UTF-8"},
    ) as resp:
        await resp.read()
        return resp.status


def regnum_of(prefix: str, i: int) -> str:
    """The citizen exchange ``i`` of a round is about: Cyrillic, as registration numbers are (the REST ones
    travel in the ``X-MN-Data-Subject`` header as UTF-8)."""
    return f"{'УБ' if prefix == 'first' else 'УК'}{99000000 + i:08d}"


async def _exchanges(fed: Federation, prefix: str, count: int) -> list[str]:
    """``count`` exchanges, REST and SOAP in turn, ``CONCURRENCY`` at a time; their X-Road ids."""
    limit = asyncio.Semaphore(CONCURRENCY)
    query_ids = [f"{prefix}-{i}-{uuid.uuid4().hex[:8]}" for i in range(count)]

    async def one(i: int, query_id: str) -> None:
        regnum = regnum_of(prefix, i)
        async with limit:
            status = await (_rest if i % 2 == 0 else _soap)(fed, query_id, regnum)
        assert status == 200, (query_id, status)

    await asyncio.gather(*(one(i, q) for i, q in enumerate(query_ids)))
    return query_ids


async def _failing(fed: Federation, prefix: str) -> str:
    """One exchange the provider's IS never answers (its service's address does not listen)."""
    query_id = f"{prefix}-failed-{uuid.uuid4().hex[:8]}"
    assert await _rest(fed, query_id, "ЕА00000001", DEAD_SERVICE) == 500
    return query_id


async def _all_stamped(node: ExchangeNode) -> None:
    timestamper = node.message_log.timestamper
    assert isinstance(timestamper, Timestamper)
    for _ in range(50):
        if not await node.message_log.store.unstamped(limit=1):
            return
        await timestamper.timestamp_now()
    raise AssertionError("records were never time-stamped")


def chain_order(directory: Path) -> list[Path]:
    """The archives of ``directory`` in chain order, read from their ``linkinginfo`` first lines (not with
    the code under test)."""
    previous: dict[str, str] = {}
    for path in directory.glob("mlog-*.zip"):
        with zipfile.ZipFile(path) as zf:
            head = zf.read(LINKING_INFO).decode().split("\n", 1)[0].split()
        previous[path.name] = head[1]
    following = {p: n for n, p in previous.items()}
    order, name = [], "-"
    while name in following:
        name = following[name]
        order.append(directory / name)
    assert len(order) == len(previous), previous
    return order


# -- the nodes' databases, on either backend ---------------------------------------------------------------


@asynccontextmanager
async def node_database(home: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on the database of the node at ``home`` as its ``node.toml`` names it: the SQLite file in
    the home, or its PostgreSQL schema."""
    settings = load_node_settings(home, env={})
    engine = create_engine(settings.database(), **settings.engine_options())
    try:
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def node_schemas(request: pytest.FixtureRequest) -> AsyncIterator[tuple[list[str], list[str]]]:
    """``node init`` options of the consumer's and the provider's database for the backend
    ``request.param``: none (SQLite in each home), or a PostgreSQL schema of each node's own in
    ``postgres_url``'s database. Every schema whose name starts as theirs do (the copies
    :func:`copy_home` makes too) is dropped afterwards."""
    if request.param == "sqlite":
        yield [], []
        return
    url: str = request.getfixturevalue("postgres_url")
    prefix = f"mlog_e2e_{uuid.uuid4().hex[:12]}"
    try:
        yield (
            ["--database-url", url, "--database-schema", f"{prefix}_ss1"],
            ["--database-url", url, "--database-schema", f"{prefix}_ss2"],
        )
    finally:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                schemata = (
                    "SELECT schema_name FROM information_schema.schemata WHERE starts_with(schema_name, :p)"
                )
                found = await conn.execute(text(schemata), {"p": prefix})
                for (schema,) in found.all():
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            await engine.dispose()


def _tables_in_order(conn: Connection) -> list[Table]:
    """The tables of ``conn``'s (default) schema, each after those its foreign keys refer to."""
    metadata = MetaData()
    metadata.reflect(conn)
    return list(metadata.sorted_tables)


SERIAL_SEQUENCES: Final = """
WITH schemata AS (SELECT CAST(:source AS text) AS source, CAST(:target AS text) AS target),
serials AS (
    SELECT pg_get_serial_sequence(format('%I.%I', source, table_name), column_name) AS of_source,
           pg_get_serial_sequence(format('%I.%I', target, table_name), column_name) AS of_target
    FROM information_schema.columns, schemata WHERE table_schema = target
)
SELECT of_source, of_target FROM serials WHERE of_target IS NOT NULL
"""
"""The sequence of each auto-incremented column of schema ``:target`` and that of the same column in
``:source``."""


async def _copy_schema(url: str, source: str, target: str) -> None:
    """A copy of the node database in schema ``source`` as schema ``target``: created by the node's own
    migrations (tables, keys, indexes, sequences), then every row copied, tables referred to first, and
    every sequence set where the source's stands."""
    engine = create_engine(url, connect_args={"server_settings": {"search_path": target}})
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{target}"'))
        await migrate(engine)
        async with engine.begin() as conn:
            tables = await conn.run_sync(_tables_in_order)
            for table in reversed(tables):  # what the migrations wrote (alembic's version)
                await conn.execute(text(f'DELETE FROM "{target}"."{table.name}"'))
            for table in tables:
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                await conn.execute(
                    text(
                        f'INSERT INTO "{target}"."{table.name}" ({columns}) '
                        f'SELECT {columns} FROM "{source}"."{table.name}"'
                    )
                )
            sequences = await conn.execute(text(SERIAL_SEQUENCES), {"source": source, "target": target})
            for source_sequence, target_sequence in sequences.all():
                await conn.execute(
                    text(f"SELECT setval(:copy, last_value, is_called) FROM {source_sequence}"),
                    {"copy": target_sequence},
                )
    finally:
        await engine.dispose()


async def copy_home(audit: Audit, code: str, name: str) -> Path:
    """A copy of node ``code``'s home as ``ROOT/CODE-NAME``; on PostgreSQL its ``node.toml`` names a copy
    of the node's schema (``SCHEMA_NAME``), so that what a test changes in it leaves the node's own alone."""
    copy = audit.root / f"{code}-{name}"
    await asyncio.to_thread(shutil.copytree, audit.homes[code], copy)
    settings = load_node_settings(copy, env={})
    if settings.database_schema is not None:
        assert settings.database_url is not None
        schema = f"{settings.database_schema}_{name.replace('-', '_')}"
        await _copy_schema(settings.database_url, settings.database_schema, schema)
        write_node_settings(copy, {"database_schema": schema})
    return copy


async def _count_records(home: Path) -> int:
    async with node_database(home) as engine, engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(MessageRecordRow))).scalar_one())


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def audit(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Audit]:
    """The federation's exchanges, archives and databases, with each node's database on the backend
    ``request.param``."""
    backend: str = request.param
    root: Path = tmp_path_factory.mktemp(f"mlog-e2e-{backend}")
    overrides = {
        "archive_max_filesize": ARCHIVE_MAX_BYTES,
        "archive_interval_seconds": 3600,
        "keep_records_for_days": 0,
        "clean_interval_seconds": 3600,
    }
    seconds: dict[str, float] = {}
    start = time.monotonic()
    async with (
        node_schemas(request) as init_options,
        federation_in(root, addresses=ADDRESSES, overrides=overrides, init_options=init_options) as fed,
    ):
        seconds["federation"] = time.monotonic() - start
        await fed.provider.cli("service", "add", "--client",
                               f"SUBSYSTEM:MN/GOV/{PROVIDER.member_code}/{PROVIDER.subsystem_code}",
                               "--rest", "http://127.0.0.1:1/api", "--code", DEAD_SERVICE)  # fmt: skip
        for code in ("citizens", "getCitizen", DEAD_SERVICE):
            await fed.grant(code)
        homes = {"ss1": fed.consumer.home, "ss2": fed.provider.home}
        for home in homes.values():  # what the CLI reads too
            with (home / "node.toml").open("a", encoding="utf-8") as settings:
                settings.write(f"archive_max_filesize = {ARCHIVE_MAX_BYTES}\n")
        nodes = {code: _node(fed, code) for code in homes}
        audit = Audit(backend, root, fed, TrustFiles(root / "trust"), homes, [], seconds=seconds)

        # The first round: exchanges, a failed one, all stamped, archived and cleaned from the databases.
        mark = time.monotonic()
        audit.query_ids = await _exchanges(fed, "first", EXCHANGES)
        seconds["exchanges"] = time.monotonic() - mark
        audit.failed[await _failing(fed, "first")] = "first"
        mark = time.monotonic()
        for node in nodes.values():
            await _all_stamped(node)
        seconds["stamping"] = time.monotonic() - mark
        mark = time.monotonic()
        archive = ("node", "log", "archive", "--json")
        written = {
            "ss1": (await xroad_mn(*archive, "--dir", str(homes["ss1"]), own_process=True)).json(),
            "ss2": (await xroad_mn(*archive, "--dir", str(homes["ss2"]))).json(),
        }
        seconds["archiving"] = time.monotonic() - mark
        for code, node in nodes.items():
            archived = sum(a["records"] for a in written[code]["archives"])
            assert archived == 2 * EXCHANGES + 1, (code, archived)  # every exchange and the failed request
            assert len(written[code]["archives"]) >= 3, (seconds, written[code])
            audit.archived_records[code] = archived
            assert await clean_once(node.message_log.store, node.settings, now=datetime.now(UTC)) == archived

        # The second round stays in the databases.
        audit.query_ids += await _exchanges(fed, "later", LATER_EXCHANGES)
        audit.failed[await _failing(fed, "later")] = "later"
        for node in nodes.values():
            await _all_stamped(node)
        for code in list(fed.running):
            await fed.stop_node(fed.consumer if code == "ss1" else fed.provider)
        for code, home in homes.items():
            audit.db_records[code] = await _count_records(home)
            assert audit.db_records[code] == 2 * LATER_EXCHANGES + 1
            audit.archives[code] = chain_order(home / "archive")
        seconds["total_setup"] = time.monotonic() - start
        yield audit


async def verify(
    home: Path, *options: str, archives: Path | None = None, expect: int = 0, database_only: bool = False
) -> dict[str, Any]:
    """``xroad-mn node log verify --json`` on ``home`` with its own archives (or ``archives``; none with
    ``database_only``: what a test changed in the database is found either way, faster)."""
    where = [] if database_only else ["--archives", str(archives or home / "archive")]
    ran: Ran = await xroad_mn(
        "node", "log", "verify", "--dir", str(home), *where, *options, "--json", expect=expect
    )
    result: dict[str, Any] = ran.json()
    return result


# -- the log verifies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ss1", "ss2"])
async def test_node_log_verify_passes_with_the_right_counts(audit: Audit, code: str) -> None:
    result = await verify(audit.homes[code])
    assert result["valid"] is True, result
    assert result["records"] == audit.db_records[code]
    assert result["timestamped"] == audit.db_records[code]
    assert result["unstamped"] == 0
    assert result["archives"] == len(audit.archives[code]) >= 3
    assert result["archived_containers"] == audit.archived_records[code]
    assert result["incomplete_exchanges"] == 0
    assert result["in_flight"] == 0
    assert result["broken_count"] == 0
    # The failed exchanges: counted apart, with their X-Road fault code and time, the first one known only
    # from its archived request and the exchange_failures row the cleaner kept.
    assert result["failed_exchanges"] == len(audit.failed) == 2
    failures = {f["x_road_id"]: f for f in result["failures"]}
    assert set(failures) == set(audit.failed)
    for query_id, failure in failures.items():
        assert failure["code"] == FAILURE_CODES[code], failure
        assert "cannot reach the information system" in failure["fault_string"]
        assert audit.started <= datetime.fromisoformat(failure["failed_at"]) <= datetime.now(UTC)
        archived = audit.failed[query_id] == "first"
        assert (failure["archive"] is not None) == archived, failure
        if archived:
            assert failure["archive"] in [p.name for p in audit.archives[code]]
            assert failure["entry"].startswith(f"{query_id}-request-")


@pytest.mark.parametrize("code", ["ss1", "ss2"])
async def test_archives_verify_with_the_archive_verifier(audit: Audit, code: str) -> None:
    chain = audit.archives[code]
    ran = await xroad_mn("archive", "verify-chain", *map(str, chain), "--first", "--json")
    verdicts = ran.json()
    assert [v["archive"] for v in verdicts] == [p.name for p in chain]
    assert sum(len(v["entries"]) for v in verdicts) == audit.archived_records[code]
    for path in chain:
        single = (await xroad_mn("archive", "verify", str(path), "--json")).json()
        assert single["valid"] is True, single


async def test_archived_containers_verify_with_xmlsec1_and_openssl(
    audit: Audit, tmp_path: Path, xmlsec1: str, openssl: str
) -> None:
    rng = random.Random(7)
    checked = 0
    for code in ("ss1", "ss2"):
        for path in (audit.archives[code][0], audit.archives[code][-1]):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n != LINKING_INFO]
                for name in rng.sample(names, 2):
                    with zipfile.ZipFile(io.BytesIO(zf.read(name))) as container:
                        entries = {n: container.read(n) for n in container.namelist()}
                    work = tmp_path / f"{code}-{checked}"
                    work.mkdir()
                    _xmlsec_verify(xmlsec1, work, audit.trust, entries)
                    _openssl_ts_verify(openssl, work, audit.trust, entries)
                    checked += 1
    assert checked == 8


# -- tampering, each on a copy of a node's home ------------------------------------------------------------


async def nth_record(home: Path, n: int, *, response: bool, query_id: str = "") -> tuple[int, str]:
    """The id and X-Road id of the ``n``-th (from 0, by id) request or ``response`` record in the database
    of the node at ``home`` whose X-Road id starts with ``query_id``."""
    r = MessageRecordRow
    query = (
        select(r.id, r.query_id)
        .where(r.response.is_(response), r.query_id.startswith(query_id, autoescape=True))
        .order_by(r.id)
        .offset(n)
        .limit(1)
    )
    async with node_database(home) as engine, engine.connect() as conn:
        record_id, x_road_id = (await conn.execute(query)).one()
    return record_id, x_road_id


async def change_a_byte(home: Path, record_id: int) -> None:
    """Flip a bit in the middle of record ``record_id``'s message."""
    r = MessageRecordRow
    async with node_database(home) as engine, engine.begin() as conn:
        message = (await conn.execute(select(r.message).where(r.id == record_id))).scalar_one()
        changed = bytearray(message)
        changed[len(changed) // 2] ^= 0x01
        await conn.execute(update(r).where(r.id == record_id).values(message=bytes(changed)))


async def delete_record(home: Path, record_id: int) -> None:
    """Delete record ``record_id`` and its attachments."""
    async with node_database(home) as engine, engine.begin() as conn:
        await conn.execute(delete(MessageAttachmentRow).where(MessageAttachmentRow.record_id == record_id))
        deleted = await conn.execute(delete(MessageRecordRow).where(MessageRecordRow.id == record_id))
        assert deleted.rowcount == 1


async def test_a_changed_byte_in_a_record_is_named(audit: Audit) -> None:
    home = await copy_home(audit, "ss1", "byte")
    record_id, query_id = await nth_record(home, 3, response=True)
    await change_a_byte(home, record_id)
    result = await verify(home, expect=1, database_only=True)
    assert result["broken_count"] == 1, result
    broken = result["broken"][0]
    assert (broken["record_id"], broken["x_road_id"]) == (record_id, query_id)


async def test_a_deleted_record_is_named(audit: Audit) -> None:
    home = await copy_home(audit, "ss2", "deleted")
    request_id, query_id = await nth_record(home, 5, response=False, query_id="later-")
    await delete_record(home, request_id)
    assert await _count_records(audit.homes["ss2"]) == audit.db_records["ss2"]  # the node's own: untouched
    result = await verify(home, expect=1, database_only=True)
    assert result["broken_count"] == 1, result
    broken = result["broken"][0]
    assert broken["code"] == "missing_request"
    assert broken["x_road_id"] == query_id


async def test_a_deleted_response_is_named_and_not_taken_for_a_failure(audit: Audit) -> None:
    home = await copy_home(audit, "ss1", "no-response")
    response_id, query_id = await nth_record(home, 2, response=True, query_id="later-")
    request_id, _ = await nth_record(home, 0, response=False, query_id=query_id)
    await delete_record(home, response_id)
    young = await verify(home, database_only=True)  # the exchange may still be running, as far as it can tell
    assert (young["valid"], young["in_flight"], young["failed_exchanges"]) == (True, 1, 1), young
    result = await verify(home, "--in-flight-seconds", "0", expect=1, database_only=True)
    assert result["broken_count"] == 1, result
    broken = result["broken"][0]
    assert (broken["code"], broken["record_id"], broken["x_road_id"]) == (
        "missing_response",
        request_id,
        query_id,
    )
    assert result["failed_exchanges"] == 1


@pytest.mark.parametrize("code", ["ss1", "ss2"])
async def test_search_shows_the_failed_exchange(audit: Audit, code: str) -> None:
    (query_id,) = [q for q, when in audit.failed.items() if when == "later"]
    ran = await xroad_mn(
        "node", "log", "search", "--dir", str(audit.homes[code]), "--x-road-id", query_id, "--json"
    )
    records = ran.json()["records"]
    assert [r["message"] for r in records] == ["request"]
    failure = records[0]["failure"]
    assert failure["code"] == FAILURE_CODES[code], failure
    assert audit.started <= datetime.fromisoformat(failure["failed_at"]) <= datetime.now(UTC)
    answered = await xroad_mn(
        "node", "log", "search", "--dir", str(audit.homes[code]), "--x-road-id", audit.query_ids[-1], "--json"
    )
    assert [r["failure"] for r in answered.json()["records"]] == [None, None]


@pytest.mark.parametrize("code", ["ss1", "ss2"])
async def test_search_by_a_cyrillic_data_subject_finds_exactly_its_exchanges(audit: Audit, code: str) -> None:
    """Exchange 0 (REST: the subject in a header) and 1 (SOAP: in the mn:dataSubject header element) of the
    later round, still in the database; the number is given in clear and hashed by the node."""
    later = [q for q in audit.query_ids if q.startswith("later-")]
    for i in (0, 1):
        ran = await xroad_mn(
            "node", "log", "search", "--dir", str(audit.homes[code]),
            "--subject", regnum_of("later", i), "--json",
        )  # fmt: skip
        records = ran.json()["records"]
        assert [(r["x_road_id"], r["message"]) for r in records] == [
            (later[i], "request"),
            (later[i], "response"),
        ], records


async def test_an_archive_removed_from_the_middle_is_named(audit: Audit) -> None:
    home = await copy_home(audit, "ss1", "gap")
    chain = audit.archives["ss1"]
    (home / "archive" / chain[1].name).unlink()
    result = await verify(home, expect=1)
    first = result["broken"][0]
    assert first["archive"] == chain[2].name, result
    assert first["code"] == "archive_linking_failed", first
    assert f"{chain[1].name} is missing from the chain" in first["reason"], first


async def test_an_edited_linkinginfo_is_named(audit: Audit) -> None:
    home = await copy_home(audit, "ss2", "linking")
    chain = audit.archives["ss2"]
    target = home / "archive" / chain[1].name
    with zipfile.ZipFile(target) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w") as zf:
        for info, data in entries:
            if info.filename == LINKING_INFO:
                lines = data.decode().split("\n")
                digest, name = lines[2].split()
                lines[2] = f"{digest[:-1]}{'0' if digest[-1] != '0' else '1'} {name}"
                data = "\n".join(lines).encode()
            zf.writestr(info, data)
    target.write_bytes(rewritten.getvalue())
    result = await verify(home, expect=1)
    assert result["broken"][0]["archive"] == chain[1].name, result


async def test_module_timings(audit: Audit) -> None:
    print(audit.backend, {k: round(v, 1) for k, v in audit.seconds.items()})


BODY_COLUMNS: Final = {("message_records", "message"), ("message_attachments", "data")}
"""Where the log keeps the messages themselves: a registration number may be there, signed; nowhere else."""


@pytest.mark.parametrize("code", ["ss1", "ss2"])
async def test_no_registration_number_in_clear_outside_the_messages(audit: Audit, code: str) -> None:
    """Every other column of every table of the node's database — search columns, failures, operational
    monitoring (whose REST paths named the citizen) — holds no registration number, as text or
    percent-encoded in a path."""
    seen = 0
    async with node_database(audit.homes[code]) as engine, engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"message_records", "opmon_records", "exchange_failures"} <= set(tables)
        with_path = select(func.count()).select_from(OpRecordRow).where(OpRecordRow.rest_path.is_not(None))
        assert (await conn.execute(with_path)).scalar_one() > 0
        for table in tables:
            rows = await conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(rows.keys())
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    if value is None or (table, column) in BODY_COLUMNS:
                        continue
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    clear = unquote(raw.decode("utf-8", errors="replace"))
                    assert not REGISTRATION_NUMBER.search(clear), (table, column, clear[:200])
                    seen += 1
    assert seen > 1000
