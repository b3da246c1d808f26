"""The operational monitoring store on both databases: batches, X-Road's query rules, totals, retention."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.opmonitoring import OpMonitoringStore
from xroad_mn.wire.opmonitoring import CLIENT, OpRecord


def _rec(n: int, *, sub: str = "kyc", ok: bool = True) -> OpRecord:
    return OpRecord(
        CLIENT, 1000 + n, response_out_ts=1000 + n + 30, succeeded=ok,
        client_xroad_instance="MN", client_member_class="GOV", client_member_code="1",
        client_subsystem_code=sub,
        service_xroad_instance="MN", service_member_class="GOV", service_member_code="2",
        service_subsystem_code="reg", service_code="get",
    )  # fmt: skip


async def test_query_limits_keep_whole_seconds_and_filter_by_party(node_db: AsyncEngine) -> None:
    store = OpMonitoringStore(node_db)
    await store.write([_rec(i) for i in range(3)], monitoring_ts=10)
    await store.write([_rec(i, sub="other", ok=False) for i in range(3)], monitoring_ts=11)
    await store.write([_rec(9)], monitoring_ts=12)
    page = await store.query(0, 100, limit=2)
    assert [r.monitoring_data_ts for r in page.records] == [10, 10, 10]  # the second is not split
    assert page.next_records_from == 11
    page = await store.query(11, 100, limit=100)
    assert len(page.records) == 4
    assert page.next_records_from is None
    from xroad_mn.identifiers import MemberId

    other = MemberId("MN", "GOV", "1").subsystem("other")
    page = await store.query(0, 100, limit=100, client_filter=other)
    assert len(page.records) == 3
    assert all(not r.succeeded for r in page.records)
    totals = {(t.status): t for t in await store.totals()}
    assert totals["success"].count == 4
    assert totals["failure"].count == 3
    assert totals["success"].buckets[2] == 0
    assert totals["success"].buckets[3] == 4
    assert await store.delete_older_than(12) == 6
    assert len((await store.query(0, 100, limit=100)).records) == 1
    assert sum(t.count for t in await store.totals()) == 7  # totals outlive retention
