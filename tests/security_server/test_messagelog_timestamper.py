"""The timestamper against the dev trust services' real TSA (HTTP), single and batch; failover to the next
TSA; refusal after the acceptable failure period and resumption; evidence export verified by our verifier,
``openssl ts -verify`` and ``xroad-mn asic verify``; X-Road's ``/asic`` answers."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from security_server.cli import app as node_cli
from security_server.home import create_home, globalconf_dir, open_home
from security_server.messagelog import (
    LogRecord,
    MessageLog,
    MessageLogStore,
    Timestamper,
    asic_response,
    export_exchange,
)
from security_server.messagelog.models import MessageRecordRow, MessageSignatureRow
from security_server.operations import open_node_store
from tests.test_signature import Evidence, build_evidence
from trust_services.app import RunningTrustService
from trust_services.store import TrustServiceStore
from xroad_mn.archive import asic_entry_name
from xroad_mn.asic import MIMETYPE, read_container, verify_container
from xroad_mn.cli.asic import app as asic_cli
from xroad_mn.errors import ErrorKind, FaultCode, XRoadError
from xroad_mn.globalconf.params import (
    ApprovedCAEntry,
    ApprovedTSAEntry,
    CaInfo,
    OcspInfo,
    SharedParameters,
    build_shared_params,
)
from xroad_mn.globalconf.trust import TrustMaterial
from xroad_mn.signature import parse_signature

from .messagelog_fixtures import CLIENT, DEAD_TSA, batch_signed_records, signed_record, trust_with_tsas


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


class Clock:
    """The node's clock, moved by the test (the failure period is hours long)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, engine: AsyncEngine, evidence: Evidence, tsa: RunningTrustService) -> None:
        self.store = MessageLogStore(engine)
        self.evidence = evidence
        self.tsa = tsa
        self.trust = trust_with_tsas(evidence, tsa.directory, [tsa.urls.tsa])
        self.clock = Clock()

    def load_trust(self) -> TrustMaterial:
        return self.trust


@pytest.fixture
async def world(node_db: AsyncEngine, evidence: Evidence, trust_service: RunningTrustService) -> World:
    return World(node_db, evidence, trust_service)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _timestamper(
    world: World,
    session: aiohttp.ClientSession,
    *,
    records_limit: int = 10000,
    acceptable_failure_period_seconds: float = 14400,
) -> Timestamper:
    return Timestamper(
        world.store,
        world.load_trust,
        session,
        records_limit=records_limit,
        acceptable_failure_period_seconds=acceptable_failure_period_seconds,
        clock=world.clock,
    )


async def _log(world: World, timestamper: Timestamper, records: list[LogRecord]) -> list[int]:
    message_log = MessageLog(world.store, timestamper=timestamper, clock=world.clock)
    async with message_log.running():
        return list(await asyncio.gather(*(message_log.log(r) for r in records)))


def _verify(world: World, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        result = verify_container(data, trust=world.trust)
        assert str(result.signer) == str(CLIENT), name
        assert result.timestamp_time is not None


def _openssl_ts_verify(openssl: str, tmp_path: Path, token: bytes, data: bytes, world: World) -> None:
    """``openssl ts -verify`` of ``token`` over ``data`` against the trust services' CA."""
    (tmp_path / "token.der").write_bytes(token)
    (tmp_path / "data.bin").write_bytes(data)
    ca = TrustServiceStore.open(world.tsa.directory).ca.certificate
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [openssl, "ts", "-verify", "-token_in", "-in", "token.der", "-data", "data.bin", "-CAfile", "ca.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


async def test_single_timestamp_is_embedded_and_verifies(
    world: World, session: aiohttp.ClientSession, tmp_path: Path, openssl: str
) -> None:
    timestamper = _timestamper(world, session)
    (record_id,) = await _log(world, timestamper, [signed_record(world.evidence, "q-single")])
    assert await timestamper.timestamp_now() == 1
    assert await timestamper.timestamp_now() == 0  # nothing waits
    files = await export_exchange(world.store, "q-single")
    assert [name for name, _ in files] == [f"q-single-request-{_b32(record_id)}.asice"]
    container = read_container(files[0][1])
    assert container.timestamp is None  # single: inside the signature
    parsed = parse_signature(container.signature.signature_xml)
    assert parsed.timestamp_token is not None
    _verify(world, files)

    # An outside tool: openssl checks the token over the decoded SignatureValue against the TSA's CA.
    await asyncio.to_thread(
        _openssl_ts_verify, openssl, tmp_path, parsed.timestamp_token, parsed.signature_value, world
    )


def _b32(value: int) -> str:
    return (
        asic_entry_name("x", response=False, record_id=value)
        .removeprefix("x-request-")
        .removesuffix(".asice")
    )


async def test_batch_timestamp_covers_every_waiting_record(
    world: World, session: aiohttp.ClientSession, tmp_path: Path, openssl: str
) -> None:
    timestamper = _timestamper(world, session)
    records = batch_signed_records(world.evidence, ["q-b1", "q-b2", "q-b3"])
    records.append(signed_record(world.evidence, "q-b1", attachments=(b"\x00body",), response=True))
    await _log(world, timestamper, records)
    assert await timestamper.timestamp_now() == 4
    files = await export_exchange(world.store, "q-b1")
    assert [n.split("-")[2] for n, _ in files] == ["request", "response"]
    for _, data in files:
        container = read_container(data)
        assert container.timestamp is not None
        assert parse_signature(container.signature.signature_xml).timestamp_token is None
    _verify(world, files + await export_exchange(world.store, "q-b3"))

    token = read_container(files[0][1]).timestamp
    assert token is not None
    await asyncio.to_thread(
        _openssl_ts_verify, openssl, tmp_path, token.token, token.hash_chain_result, world
    )


async def test_records_limit_splits_rounds(world: World, session: aiohttp.ClientSession) -> None:
    timestamper = _timestamper(world, session, records_limit=2)
    await _log(world, timestamper, batch_signed_records(world.evidence, ["l1", "l2", "l3"]))
    assert [await timestamper.timestamp_now() for _ in range(3)] == [2, 1, 0]
    _verify(world, await export_exchange(world.store, "l3"))


async def test_failover_to_the_next_tsa(world: World, session: aiohttp.ClientSession) -> None:
    world.trust = trust_with_tsas(world.evidence, world.tsa.directory, [DEAD_TSA, world.tsa.urls.tsa])
    timestamper = _timestamper(world, session)
    await _log(world, timestamper, [signed_record(world.evidence, "q-fail-over")])
    assert await timestamper.timestamp_now() == 1
    assert timestamper.failing_since is None
    _verify(world, await export_exchange(world.store, "q-fail-over"))


async def test_refuses_after_the_failure_period_and_resumes(
    world: World, session: aiohttp.ClientSession
) -> None:
    live = world.trust
    world.trust = trust_with_tsas(world.evidence, world.tsa.directory, [DEAD_TSA])
    timestamper = _timestamper(world, session, acceptable_failure_period_seconds=14400)
    message_log = MessageLog(world.store, timestamper=timestamper, clock=world.clock)
    async with message_log.running():
        await message_log.log(signed_record(world.evidence, "q-r1"))
        with pytest.raises(XRoadError) as failed:
            await timestamper.timestamp_now()
        assert failed.value.code == FaultCode.TIMESTAMPER_FAILED
        world.clock.now += timedelta(seconds=14400)
        await message_log.log(signed_record(world.evidence, "q-r2"))  # within the period: accepted
        world.clock.now += timedelta(seconds=1)
        with pytest.raises(XRoadError) as refused:
            await message_log.log(signed_record(world.evidence, "q-r3"))
        assert refused.value.code == FaultCode.TIMESTAMPER_FAILED
        assert await world.store.find("q-r3") == []

        world.trust = live  # a TSA answers again
        assert await timestamper.timestamp_now() == 2
        await message_log.log(signed_record(world.evidence, "q-r3"))
    _verify(world, await export_exchange(world.store, "q-r2"))
    assert timestamper.last_success == world.clock.now


async def test_background_task_stamps_when_woken(world: World, session: aiohttp.ClientSession) -> None:
    timestamper = _timestamper(world, session)
    async with timestamper.running():
        rounds = await timestamper.wait_for_round(0)  # the first round found nothing
        await _log(world, timestamper, [signed_record(world.evidence, "q-bg")])
        timestamper.wake()
        async with asyncio.timeout(10):
            await timestamper.wait_for_round(rounds)
    (record,) = await world.store.find("q-bg")
    assert record.timestamped


# -- /asic -------------------------------------------------------------------------------------------------

PARAMS = {"xRoadInstance": "MN", "memberClass": "GOV", "memberCode": "5012345", "queryId": "q-asic"}


async def _asic_error(
    world: World, params: dict[str, str], timestamper: Timestamper | None = None
) -> XRoadError:
    with pytest.raises(XRoadError) as e:
        await asic_response(world.store, params, timestamper=timestamper)
    return e.value


async def test_asic_answers_as_x_road(world: World, session: aiohttp.ClientSession) -> None:
    timestamper = _timestamper(world, session)
    await _log(
        world,
        timestamper,
        [signed_record(world.evidence, "q-asic"), signed_record(world.evidence, "q-asic", response=True)],
    )
    not_stamped = await _asic_error(world, PARAMS)
    assert (not_stamped.code, not_stamped.kind) == (FaultCode.INTERNAL_ERROR, ErrorKind.INTERNAL)
    forced = await asic_response(world.store, {**PARAMS, "force": ""}, timestamper=timestamper)
    assert (forced.content_type, forced.filename) == ("application/zip", "q-asic.zip")
    with zipfile.ZipFile(io.BytesIO(forced.body)) as zf:
        names = zf.namelist()
        assert [n.split("-")[2] for n in names] == ["request", "response"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        _verify(world, [(n, zf.read(n)) for n in names])

    unique = await asic_response(world.store, {**PARAMS, "responseOnly": "", "unique": ""})
    assert unique.content_type == MIMETYPE
    assert "-response-" in unique.filename
    _verify(world, [(unique.filename, unique.body)])
    requests = await asic_response(world.store, {**PARAMS, "requestOnly": ""})
    assert requests.filename == "q-asic-request.zip"

    missing = await _asic_error(world, {k: v for k, v in PARAMS.items() if k != "queryId"})
    assert (missing.code, missing.kind) == (FaultCode.BAD_REQUEST, ErrorKind.BAD_INPUT)
    both = await _asic_error(world, {**PARAMS, "requestOnly": "", "responseOnly": ""})
    assert both.kind == ErrorKind.BAD_INPUT
    lone_unique = await _asic_error(world, {**PARAMS, "unique": ""})
    assert lone_unique.kind == ErrorKind.BAD_INPUT
    other = await _asic_error(world, {**PARAMS, "subsystemCode": "elsewhere"})
    assert (other.code, other.kind) == (FaultCode.NOT_FOUND, ErrorKind.NOT_FOUND)


# -- node log export ---------------------------------------------------------------------------------------


def _write_conf(trust: TrustMaterial, conf: Path) -> None:
    """A configuration directory approving exactly ``trust`` (as ``xroad-mn asic verify --conf`` reads)."""
    shared = SharedParameters(
        instance=trust.instance,
        ocsp_freshness_seconds=trust.ocsp_freshness_seconds,
        approved_cas=tuple(
            ApprovedCAEntry(
                ca.name,
                CaInfo(ca.top_ca, tuple(OcspInfo(r.url, r.certificate) for r in ca.ocsp_responders)),
                ca.certificate_profile_info,
                authentication_only=ca.authentication_only,
                intermediate_cas=tuple(
                    CaInfo(cert, tuple(OcspInfo(r.url, r.certificate) for r in responders))
                    for cert, responders in zip(
                        ca.intermediates, ca.intermediate_ocsp_responders, strict=True
                    )
                ),
            )
            for ca in trust.approved_cas
        ),
        approved_tsas=tuple(ApprovedTSAEntry(t.name, t.url, t.certificate) for t in trust.approved_tsas),
    )
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "instance-identifier").write_text(shared.instance)
    (conf / shared.instance).mkdir(exist_ok=True)
    (conf / shared.instance / "shared-params.xml").write_bytes(build_shared_params(shared, version=2))


async def test_node_log_export_writes_containers_that_asic_verify_accepts(
    evidence: Evidence, trust_service: RunningTrustService, tmp_path: Path
) -> None:
    home = create_home(tmp_path / "node", {"address": "127.0.0.2"})
    settings = open_home(home)
    trust = trust_with_tsas(evidence, trust_service.directory, [trust_service.urls.tsa])
    async with open_node_store(settings) as node_store, aiohttp.ClientSession() as session:
        store = MessageLogStore(node_store.engine)
        timestamper = Timestamper(store, lambda: trust, session)
        message_log = MessageLog(store, timestamper=timestamper)
        async with message_log.running():
            await message_log.log(signed_record(evidence, "q-cli"))
            await message_log.log(signed_record(evidence, "q-cli", response=True))
        assert await timestamper.timestamp_now() == 2
    _write_conf(trust, globalconf_dir(home))

    out = tmp_path / "evidence"
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke,
        node_cli,
        ["log", "export", "--dir", str(home), "--x-road-id", "q-cli", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert len(files) == 2
    for item in files:
        verified = runner.invoke(
            asic_cli, ["verify", item["file"], "--conf", str(globalconf_dir(home)), "--json"]
        )
        assert verified.exit_code == 0, verified.stdout
        assert json.loads(verified.stdout)["valid"] is True

    missing = await asyncio.to_thread(
        runner.invoke,
        node_cli,
        ["log", "export", "--dir", str(home), "--x-road-id", "nope", "--out", str(out)],
    )
    assert missing.exit_code != 0


async def _shared_counts(engine: AsyncEngine) -> tuple[int, int]:
    """(shared signature documents, records whose own signature column is empty)."""
    async with engine.connect() as conn:
        shared = (await conn.execute(select(func.count()).select_from(MessageSignatureRow))).scalar_one()
        empty = (
            await conn.execute(
                select(func.count())
                .select_from(MessageRecordRow)
                .where(func.length(MessageRecordRow.signature) == 0)
            )
        ).scalar_one()
    return int(shared), int(empty)


async def test_a_batch_signature_is_kept_once_and_every_record_still_verifies(
    world: World, session: aiohttp.ClientSession
) -> None:
    engine = world.store.engine
    batch = batch_signed_records(world.evidence, ["q-s1", "q-s2", "q-s3"])
    alone = signed_record(world.evidence, "q-s4")
    ids = await _log(world, _timestamper(world, session), [*batch, alone])
    assert await _shared_counts(engine) == (1, 3)  # the lone signature stays in its record

    # Records read back carry the whole document and the batch's hash-chain result.
    stored = await world.store.find("q-s2")
    assert stored[0].signature == batch[1].signature

    # One record stamped alone: the token goes into its own copy of the document, with the chain result.
    single = _timestamper(world, session, records_limit=1)
    assert await single.timestamp_now() == 1
    assert await _shared_counts(engine) == (1, 2)
    first = (await world.store.find("q-s1"))[0]
    assert first.signature.hash_chain_result == batch[0].signature.hash_chain_result
    assert parse_signature(first.signature.signature_xml).timestamp_token is not None
    # The rest in one batch time-stamp; every container verifies.
    assert await _timestamper(world, session).timestamp_now() == 3
    files = []
    for query_id in ("q-s1", "q-s2", "q-s3", "q-s4"):
        files += await export_exchange(world.store, query_id)
    _verify(world, files)

    # Archived and deleted, the shared document goes with its last record.
    await world.store.mark_archived(ids)
    assert await world.store.delete_archived(datetime.now(UTC) + timedelta(days=1), 10) == 4
    assert await _shared_counts(engine) == (0, 0)
