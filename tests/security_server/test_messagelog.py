"""The message log writer on SQLite and PostgreSQL: group commit, failures that fail every waiter and write
nothing, and the records as stored; body logging switched off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.messagelog import (
    BodyLoggingPolicy,
    LogRecord,
    MessageLog,
    MessageLogStore,
    loggable_record,
)
from security_server.messagelog.bodylog import loggable_rest_message, loggable_soap_message
from security_server.messagelog.models import MessageRecordRow
from security_server.settings import NodeSettings
from tests.test_signature import Evidence, build_evidence
from xroad_mn.errors import FaultCode, XRoadError
from xroad_mn.identifiers import MemberId
from xroad_mn.signature import SignatureData

from .messagelog_fixtures import (
    CLIENT,
    SERVICE,
    batch_signed_records,
    signed_record,
    soap_message,
)

POISON = "poison-query-id"


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(MessageRecordRow))).scalar_one())


async def test_concurrent_logs_share_commits(node_db: AsyncEngine, evidence: Evidence) -> None:
    records = batch_signed_records(evidence, [f"q-{i}" for i in range(200)])
    commits: list[int] = []

    def on_commit(_conn: Any) -> None:
        commits.append(1)

    store = MessageLogStore(node_db)
    event.listen(store.writing_engine, "commit", on_commit)
    message_log = MessageLog(store)
    async with message_log.running():
        ids = await asyncio.gather(*(message_log.log(r) for r in records))
    event.remove(store.writing_engine, "commit", on_commit)
    store.close()

    assert len(set(ids)) == 200
    assert await _count(node_db) == 200
    # 200 records, a handful of transactions: the writer groups what arrives while it commits.
    assert 1 <= message_log.commits == len(commits) <= 5
    found = await MessageLogStore(node_db).find("q-7")
    assert [r.id for r in found] == [ids[7]]
    assert found[0].signature == records[7].signature
    assert found[0].message == records[7].message
    assert not found[0].timestamped


async def test_attachments_and_client_are_kept(node_db: AsyncEngine, evidence: Evidence) -> None:
    store = MessageLogStore(node_db)
    request = signed_record(evidence, "q-att", attachments=(b"\x00one", b"two"))
    response = signed_record(evidence, "q-att", response=True)
    message_log = MessageLog(store)
    async with message_log.running():
        first = await message_log.log(request)
        second = await message_log.log(response)
    both = await store.find("q-att", client=CLIENT)
    assert [(r.id, r.response, r.attachments) for r in both] == [
        (first, False, (b"\x00one", b"two")),
        (second, True, ()),
    ]
    assert [r.id for r in await store.find("q-att", response=True)] == [second]
    assert await store.find("q-att", client=CLIENT.subsystem("other")) == []
    assert await store.find("q-att", client=MemberId("MN", "GOV", "1")) == []


async def _install_poison_trigger(engine: AsyncEngine) -> None:
    """A real database failure for one query id: the database itself refuses the insert."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON message_records "
                    f"WHEN NEW.query_id = '{POISON}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.query_id = '{POISON}' THEN RAISE EXCEPTION 'poisoned'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON message_records "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            )


async def test_database_failure_fails_every_waiter_and_writes_nothing(
    node_db: AsyncEngine, evidence: Evidence
) -> None:
    await _install_poison_trigger(node_db)
    records = batch_signed_records(evidence, [f"g-{i}" for i in range(20)] + [POISON])
    message_log = MessageLog(MessageLogStore(node_db))
    async with message_log.running():
        results = await asyncio.gather(*(message_log.log(r) for r in records), return_exceptions=True)
        assert all(isinstance(r, XRoadError) and r.code == FaultCode.LOGGING_FAILED for r in results), results
        assert await _count(node_db) == 0  # no half-written group
        # The writer survives: the next group is written.
        assert await message_log.log(signed_record(evidence, "after")) >= 1
    assert await _count(node_db) == 1


async def test_log_is_refused_when_the_writer_does_not_run(node_db: AsyncEngine, evidence: Evidence) -> None:
    message_log = MessageLog(MessageLogStore(node_db))
    with pytest.raises(XRoadError) as refused:
        await message_log.log(signed_record(evidence, "early"))
    assert refused.value.code == FaultCode.LOGGING_FAILED
    async with message_log.running():
        pass
    with pytest.raises(XRoadError) as late:
        await message_log.log(signed_record(evidence, "late"))
    assert late.value.code == FaultCode.LOGGING_FAILED


async def test_queued_records_are_written_at_stop(node_db: AsyncEngine, evidence: Evidence) -> None:
    message_log = MessageLog(MessageLogStore(node_db))
    records = batch_signed_records(evidence, [f"s-{i}" for i in range(30)])
    async with message_log.running():
        waiters = [asyncio.create_task(message_log.log(r)) for r in records]
        await asyncio.sleep(0)  # queued, not yet written
    assert len({await w for w in waiters}) == 30
    assert await _count(node_db) == 30


# -- body logging ------------------------------------------------------------------------------------------

PROVIDER = SERVICE.client
REST_SERVICE = MemberId("MN", "GOV", "9999").subsystem("registry").service("people")
REST_REQUEST = (
    b"POST\r\n/r1/MN/GOV/9999/registry/people/persons/38001010000?full=1\r\n"
    b"Content-Type:application/json\r\nAuthorization:Bearer secret\r\nX-Road-Client:MN/GOV/5012345\r\n"
    b"X-Road-Id:q-rest\r\nx-road-request-id:abc\r\n"
)
REST_RESPONSE = (
    b"200\r\nOK\r\ncontent-type:application/json\r\nx-road-id:q-rest\r\n"
    b"x-road-request-hash:AAAA\r\nset-cookie:s=1\r\n"
)


def test_soap_body_is_emptied_and_only_xroad_headers_kept() -> None:
    soap = soap_message("q-1").replace(
        b"</SOAP-ENV:Header>",
        b'<xrd:securityServer id:objectType="SERVER"><id:xRoadInstance>MN</id:xRoadInstance>'
        b'</xrd:securityServer><x:other xmlns:x="urn:other">v</x:other></SOAP-ENV:Header>',
    )
    out = loggable_soap_message(soap)
    assert b"<xrd:id>q-1</xrd:id>" in out
    assert b"<id:memberCode>5012345</id:memberCode>" in out
    assert b"<xrd:protocolVersion>4.0</xrd:protocolVersion>" in out
    assert b"securityServer" not in out
    assert b"urn:other" not in out
    assert b'<ns:getRandom xmlns:ns="urn:x"/>' in out
    assert "äõ".encode() not in out


def test_soap_that_is_not_xml_is_invalid_soap() -> None:
    with pytest.raises(XRoadError) as e:
        loggable_soap_message(b"<not-closed")
    assert e.value.code == FaultCode.INVALID_SOAP


def test_rest_keeps_only_the_xroad_headers_and_the_service_path() -> None:
    assert loggable_rest_message(REST_REQUEST, REST_SERVICE) == (
        b"POST\r\n/r1/MN/GOV/9999/registry/people\r\nX-Road-Client:MN/GOV/5012345\r\n"
        b"X-Road-Id:q-rest\r\nx-road-request-id:abc\r\n"
    )
    assert loggable_rest_message(REST_RESPONSE, REST_SERVICE) == (
        b"200\r\nOK\r\nx-road-id:q-rest\r\nx-road-request-hash:AAAA\r\n"
    )


def test_policy_follows_the_default_and_the_per_subsystem_lists(tmp_path: Any) -> None:
    sub = PROVIDER.subsystem("health") if isinstance(PROVIDER, MemberId) else PROVIDER
    service = sub.service("records")
    on = BodyLoggingPolicy.from_settings(
        NodeSettings(home=tmp_path, disabled_body_logging_local_producer_subsystems=["MN/GOV/9999/health"])
    )
    assert not on.logs_body(service, local_producer=True)
    assert on.logs_body(service, local_producer=False)
    assert on.logs_body(REST_SERVICE, local_producer=True)
    off = BodyLoggingPolicy.from_settings(
        NodeSettings(
            home=tmp_path,
            message_body_logging=False,
            enabled_body_logging_remote_producer_subsystems=["MN/GOV/9999/health"],
        )
    )
    assert off.logs_body(service, local_producer=False)
    assert not off.logs_body(service, local_producer=True)
    assert not off.logs_body(REST_SERVICE, local_producer=False)


def test_member_in_a_body_logging_list_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="per subsystem"):
        NodeSettings(home=tmp_path, disabled_body_logging_local_producer_subsystems=["MN/GOV/9999"])


def test_records_without_body_lose_attachments(evidence: Evidence) -> None:
    record = signed_record(evidence, "q-off", attachments=(b"secret",))
    off = BodyLoggingPolicy(message_body_logging=False)
    stripped = loggable_record(record, off, local_producer=True)
    assert stripped.attachments == ()
    assert b"getRandom" in stripped.message
    assert "äõ".encode() not in stripped.message
    assert loggable_record(record, BodyLoggingPolicy(), local_producer=True) is record
    rest = LogRecord(
        "q-rest",
        "abc",
        CLIENT,
        REST_SERVICE,
        False,
        True,
        REST_REQUEST,
        (b'{"a":1}',),
        SignatureData(b"<x/>"),
    )
    rest_off = loggable_record(rest, off, local_producer=False)
    assert rest_off.attachments == ()
    assert b"Authorization" not in rest_off.message


async def test_body_logging_off_record_is_stored_without_body(
    node_db: AsyncEngine, evidence: Evidence
) -> None:
    record = loggable_record(
        signed_record(evidence, "q-nobody", attachments=(b"att",)),
        BodyLoggingPolicy(message_body_logging=False),
        local_producer=True,
    )
    message_log = MessageLog(MessageLogStore(node_db))
    async with message_log.running():
        await message_log.log(record)
    (stored,) = await MessageLogStore(node_db).find("q-nobody")
    assert stored.attachments == ()
    assert "äõ".encode() not in stored.message
