"""The message log end to end: a few hundred exchanges through two nodes, archived, verified, tampered with.

The federation of :mod:`tests.security_server.exchange_world` (consumer node 127.0.0.24, provider node
127.0.0.25, SQLite) carries :data:`EXCHANGES` concurrent REST and SOAP exchanges naming data subjects, and a
few that fail after their request was logged (the provider's IS for the service ``dead`` does not listen).
Everything is time-stamped; the consumer archives with ``xroad-mn node log archive`` in a process of its own,
the provider with the same command in this one, rotating small archives so each chain has several; the
cleaner then deletes the archived records from both databases, and a second, smaller round of exchanges
stays in the databases. The nodes are stopped and an auditor's commands run on their homes:

- ``node log verify --archives`` passes on both with the right counts, and names the failed exchanges with
  their X-Road fault code and time (archived or not);
- ``xroad-mn archive verify`` / ``verify-chain`` pass on the archives; containers taken out of them verify
  with ``xmlsec1 --verify`` and their time-stamps with ``openssl ts -verify``;
- on copies of a node's home, one at a time: a byte changed in a record in the database, a record deleted
  from it, an archive removed from the middle of the chain, an archive's ``linkinginfo`` edited (the zip
  rewritten) — each makes ``node log verify`` exit 1 naming the record or archive.
"""

from __future__ import annotations

import asyncio
import io
import random
import shutil
import sqlite3
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import pytest
import pytest_asyncio

from security_server.app import EXCHANGE_KEY
from security_server.home import database_file
from security_server.messagelog import Timestamper
from security_server.messagelog.archiver import clean_once
from security_server.proxy.node import ExchangeNode
from tests.security_server.exchange_world import CONSUMER, PROVIDER, SOAP_NS, Federation, federation_in
from tests.security_server.test_exchange_e2e import _openssl_ts_verify, _xmlsec_verify
from tests.security_server.test_node_e2e import Ran, xroad_mn
from trust_services.store import TrustFiles
from xroad_mn.archive import LINKING_INFO
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


async def _count_records(home: Path) -> int:
    def count() -> int:
        with sqlite3.connect(database_file(home)) as db:
            return int(db.execute("SELECT count(*) FROM message_records").fetchone()[0])

    return await asyncio.to_thread(count)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def audit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Audit]:
    root: Path = tmp_path_factory.mktemp("mlog-e2e")
    overrides = {
        "archive_max_filesize": ARCHIVE_MAX_BYTES,
        "archive_interval_seconds": 3600,
        "keep_records_for_days": 0,
        "clean_interval_seconds": 3600,
    }
    seconds: dict[str, float] = {}
    start = time.monotonic()
    async with federation_in(root, addresses=ADDRESSES, overrides=overrides) as fed:
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
        audit = Audit(root, fed, TrustFiles(root / "trust"), homes, [], seconds=seconds)

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


def _copy(audit: Audit, code: str, name: str) -> Path:
    copy = audit.root / f"{code}-{name}"
    shutil.copytree(audit.homes[code], copy)
    return copy


def _sql(home: Path, statement: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database_file(home)) as db:
        return db.execute(statement, args).fetchall()


async def test_a_changed_byte_in_a_record_is_named(audit: Audit) -> None:
    home = _copy(audit, "ss1", "byte")
    record_id, query_id, message = _sql(
        home,
        "SELECT id, query_id, message FROM message_records WHERE response = 1 ORDER BY id LIMIT 1 OFFSET 3",
    )[0]
    changed = bytearray(message)
    changed[len(changed) // 2] ^= 0x01
    _sql(home, "UPDATE message_records SET message = ? WHERE id = ?", bytes(changed), record_id)
    result = await verify(home, expect=1, database_only=True)
    assert result["broken_count"] == 1, result
    broken = result["broken"][0]
    assert (broken["record_id"], broken["x_road_id"]) == (record_id, query_id)


async def test_a_deleted_record_is_named(audit: Audit) -> None:
    home = _copy(audit, "ss2", "deleted")
    request_id, query_id = _sql(
        home, "SELECT id, query_id FROM message_records WHERE response = 0 AND query_id LIKE 'later-%' "
        "ORDER BY id LIMIT 1 OFFSET 5",
    )[0]  # fmt: skip
    _sql(home, "DELETE FROM message_attachments WHERE record_id = ?", request_id)
    _sql(home, "DELETE FROM message_records WHERE id = ?", request_id)
    result = await verify(home, expect=1, database_only=True)
    assert result["broken_count"] == 1, result
    broken = result["broken"][0]
    assert broken["code"] == "missing_request"
    assert broken["x_road_id"] == query_id


async def test_a_deleted_response_is_named_and_not_taken_for_a_failure(audit: Audit) -> None:
    home = _copy(audit, "ss1", "no-response")
    response_id, query_id = _sql(
        home, "SELECT id, query_id FROM message_records WHERE response = 1 AND query_id LIKE 'later-%' "
        "ORDER BY id LIMIT 1 OFFSET 2",
    )[0]  # fmt: skip
    (request_id,) = _sql(
        home, "SELECT id FROM message_records WHERE response = 0 AND query_id = ?", query_id
    )[0]
    _sql(home, "DELETE FROM message_attachments WHERE record_id = ?", response_id)
    _sql(home, "DELETE FROM message_records WHERE id = ?", response_id)
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
    home = _copy(audit, "ss1", "gap")
    chain = audit.archives["ss1"]
    (home / "archive" / chain[1].name).unlink()
    result = await verify(home, expect=1)
    first = result["broken"][0]
    assert first["archive"] == chain[2].name, result
    assert first["code"] == "archive_linking_failed", first
    assert f"{chain[1].name} is missing from the chain" in first["reason"], first


async def test_an_edited_linkinginfo_is_named(audit: Audit) -> None:
    home = _copy(audit, "ss2", "linking")
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
    print({k: round(v, 1) for k, v in audit.seconds.items()})


BODY_COLUMNS: Final = {("message_records", "message"), ("message_attachments", "data")}
"""Where the log keeps the messages themselves: a registration number may be there, signed; nowhere else."""


@pytest.mark.parametrize("code", ["ss1", "ss2"])
async def test_no_registration_number_in_clear_outside_the_messages(audit: Audit, code: str) -> None:
    """Every other column of every table of the node's database — search columns, failures, operational
    monitoring (whose REST paths named the citizen) — holds no registration number, as text or
    percent-encoded in a path."""
    home = audit.homes[code]
    tables = [name for (name,) in _sql(home, "SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert {"message_records", "opmon_records", "exchange_failures"} <= set(tables)
    assert _sql(home, "SELECT count(*) FROM opmon_records WHERE rest_path IS NOT NULL")[0][0] > 0
    seen = 0
    for table in tables:
        columns = [row[1] for row in _sql(home, f'PRAGMA table_info("{table}")')]
        for row in _sql(home, f'SELECT * FROM "{table}"'):
            for column, value in zip(columns, row, strict=True):
                if value is None or (table, column) in BODY_COLUMNS:
                    continue
                raw = value if isinstance(value, bytes) else str(value).encode()
                text = unquote(raw.decode("utf-8", errors="replace"))
                assert not REGISTRATION_NUMBER.search(text), (table, column, text[:200])
                seen += 1
    assert seen > 1000
