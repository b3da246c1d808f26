"""The operational monitoring tables: write a batch of records, query them as X-Road does, purge old ones.

Example::

    >>> store = OpMonitoringStore(engine)  # doctest: +SKIP
    >>> await store.write(records, monitoring_ts=1700000000)  # doctest: +SKIP
    >>> page = await store.query(1700000000, 1700000059, limit=10000)  # doctest: +SKIP
    >>> page.records[0].service_code, page.next_records_from  # doctest: +SKIP
    ('getDebt', None)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from security_server.opmonitoring.models import (
    DROPPED,
    LATENCY_BUCKETS,
    OpCounterRow,
    OpRecordRow,
    OpTotalsRow,
    bucket_column,
)
from xroad_mn.database import completing_calls, transaction
from xroad_mn.errors import FaultCode
from xroad_mn.identifiers import ClientId, SubsystemId, format_id
from xroad_mn.wire.opmonitoring import OpRecord

__all__ = ["OpMonitoringStore", "QueryPage", "Totals"]

_FIELDS = tuple(f.name for f in dataclasses.fields(OpRecord))
_BUCKET_COLUMNS = tuple(bucket_column(b) for b in LATENCY_BUCKETS)
SUCCESS = "success"
FAILURE = "failure"


@dataclass(frozen=True)
class QueryPage:
    """Records of one query, oldest first, and where the next query starts when some were left out."""

    records: list[OpRecord]
    next_records_from: int | None


@dataclass(frozen=True)
class Totals:
    """One ``opmon_totals`` row: exchanges of a side, service and outcome, with cumulative buckets."""

    side: str
    service: str
    status: str
    count: int
    duration_sum_ms: int
    buckets: tuple[int, ...]
    """Cumulative counts for :data:`~security_server.opmonitoring.models.LATENCY_BUCKETS`."""


def _party(prefix: str, client: ClientId) -> ColumnElement[bool]:
    subsystem = client.subsystem_code if isinstance(client, SubsystemId) else None
    columns = OpRecordRow.__table__.c
    sub_column = columns[f"{prefix}_subsystem_code"]
    return and_(
        columns[f"{prefix}_xroad_instance"] == client.instance,
        columns[f"{prefix}_member_class"] == client.member_class,
        columns[f"{prefix}_member_code"] == client.member_code,
        sub_column.is_(None) if subsystem is None else sub_column == subsystem,
    )


def _filters(client_filter: ClientId | None, provider_filter: ClientId | None) -> list[ColumnElement[bool]]:
    """X-Road's: ``client_filter`` in either role (client or service provider); ``provider_filter`` as the
    service provider."""
    out: list[ColumnElement[bool]] = []
    if client_filter is not None:
        out.append(or_(_party("client", client_filter), _party("service", client_filter)))
    if provider_filter is not None:
        out.append(_party("service", provider_filter))
    return out


def _record(row: Any) -> OpRecord:
    return OpRecord(**{name: getattr(row, name) for name in _FIELDS})


def _totals_key(record: OpRecord) -> tuple[str, str, str]:
    service = record.service
    return (
        record.security_server_type,
        format_id(service) if service is not None else "unknown",
        SUCCESS if record.succeeded else FAILURE,
    )


@completing_calls
class OpMonitoringStore:
    """The operational monitoring tables on ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self.engine, code=FaultCode.INTERNAL_ERROR, what="operational monitoring")

    async def write(self, records: Sequence[OpRecord], *, monitoring_ts: int, dropped: int = 0) -> None:
        """Insert ``records`` (their ``monitoringDataTs`` set to ``monitoring_ts``), add them to the totals
        and ``dropped`` to the node's count of dropped records, in one transaction."""
        if not records and not dropped:
            return
        rows = [{**{n: getattr(r, n) for n in _FIELDS}, "monitoring_data_ts": monitoring_ts} for r in records]
        increments: dict[tuple[str, str, str], list[int]] = {}
        for record in records:
            acc = increments.setdefault(_totals_key(record), [0, 0] + [0] * len(LATENCY_BUCKETS))
            duration = record.duration_ms or 0
            acc[0] += 1
            acc[1] += duration
            for i, bound in enumerate(LATENCY_BUCKETS):
                if duration <= bound * 1000:
                    acc[2 + i] += 1
        async with self._tx() as conn:
            if rows:
                await conn.execute(insert(OpRecordRow), rows)
            for (side, service, status), acc in increments.items():
                await self._add_totals(conn, side, service, status, acc)
            if dropped:
                await self._add_counter(conn, DROPPED, dropped)

    async def _add_counter(self, conn: AsyncConnection, name: str, amount: int) -> None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(OpCounterRow).values(name=name, value=amount)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"value": OpCounterRow.value + statement.excluded.value}
            )
        )

    async def dropped(self) -> int:
        """Records the node's processes dropped (and counted in a later write), ever."""
        async with self._tx() as conn:
            value = await conn.scalar(select(OpCounterRow.value).where(OpCounterRow.name == DROPPED))
        return int(value or 0)

    async def _add_totals(
        self, conn: AsyncConnection, side: str, service: str, status: str, acc: list[int]
    ) -> None:
        values: dict[str, object] = {
            "side": side,
            "service": service,
            "status": status,
            "count": acc[0],
            "duration_sum_ms": acc[1],
            **dict(zip(_BUCKET_COLUMNS, acc[2:], strict=True)),
        }
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(OpTotalsRow).values(values)
        table = OpTotalsRow.__table__.c
        added = {
            name: table[name] + statement.excluded[name]
            for name in ("count", "duration_sum_ms", *_BUCKET_COLUMNS)
        }
        await conn.execute(
            statement.on_conflict_do_update(index_elements=["side", "service", "status"], set_=added)
        )

    async def query(
        self,
        records_from: int,
        records_to: int,
        *,
        limit: int,
        client_filter: ClientId | None = None,
        provider_filter: ClientId | None = None,
    ) -> QueryPage:
        """Records with ``records_from <= monitoringDataTs <= records_to``, oldest first. At most ``limit``
        plus the rest of the last second included (a second is never split); ``next_records_from`` is the
        next second when records beyond it remain (X-Road's overflow rule)."""
        where = [
            OpRecordRow.monitoring_data_ts >= records_from,
            OpRecordRow.monitoring_data_ts <= records_to,
            *_filters(client_filter, provider_filter),
        ]
        base = select(OpRecordRow).where(*where)
        async with self._tx() as conn:
            rows = (
                await conn.execute(base.order_by(OpRecordRow.monitoring_data_ts, OpRecordRow.id).limit(limit))
            ).all()
            if len(rows) < limit:
                return QueryPage([_record(r) for r in rows], None)
            last = int(rows[-1].monitoring_data_ts)
            kept = [r for r in rows if r.monitoring_data_ts != last]
            same_second = (
                await conn.execute(
                    base.where(OpRecordRow.monitoring_data_ts == last).order_by(OpRecordRow.id)
                )
            ).all()
            more = None
            if last < records_to:
                more = (
                    await conn.execute(
                        select(OpRecordRow.id).where(*where, OpRecordRow.monitoring_data_ts > last).limit(1)
                    )
                ).first()
        records = [_record(r) for r in (*kept, *same_second)]
        return QueryPage(records, last + 1 if more is not None else None)

    async def producer_records_since(
        self, since_ms: int, *, provider_filter: ClientId | None = None
    ) -> list[OpRecord]:
        """``Producer`` records whose request arrived at or after ``since_ms`` (health statistics)."""
        query = select(OpRecordRow).where(
            OpRecordRow.security_server_type == "Producer",
            OpRecordRow.request_in_ts >= since_ms,
            *_filters(None, provider_filter),
        )
        async with self._tx() as conn:
            return [_record(r) for r in (await conn.execute(query.order_by(OpRecordRow.id))).all()]

    async def last_outcomes(
        self, *, provider_filter: ClientId | None = None
    ) -> list[tuple[tuple[str | None, ...], bool, int]]:
        """Per service (its id parts) and outcome, the latest response time of ``Producer`` records."""
        c = OpRecordRow
        parts = (c.service_xroad_instance, c.service_member_class, c.service_member_code,
                 c.service_subsystem_code, c.service_code, c.service_version)  # fmt: skip
        query = (
            select(*parts, c.succeeded, func.max(func.coalesce(c.response_out_ts, c.request_in_ts)))
            .where(c.security_server_type == "Producer", *_filters(None, provider_filter))
            .group_by(*parts, c.succeeded)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(query)).all()
        return [(tuple(r[:6]), bool(r[6]), int(r[7])) for r in rows]

    async def delete_older_than(self, monitoring_ts: int) -> int:
        """Delete records stored before ``monitoring_ts`` (Unix seconds); how many were deleted."""
        async with self._tx() as conn:
            result = await conn.execute(
                delete(OpRecordRow).where(OpRecordRow.monitoring_data_ts < monitoring_ts)
            )
        return int(result.rowcount)

    async def totals(self) -> list[Totals]:
        """Every totals row (for ``/metrics``)."""
        async with self._tx() as conn:
            result = await conn.execute(select(OpTotalsRow).order_by(OpTotalsRow.service))
            rows = result.mappings().all()
        return [
            Totals(
                str(r["side"]),
                str(r["service"]),
                str(r["status"]),
                int(r["count"]),
                int(r["duration_sum_ms"]),
                tuple(int(r[name]) for name in _BUCKET_COLUMNS),
            )
            for r in rows
        ]
