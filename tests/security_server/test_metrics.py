"""The node's Prometheus metrics from its stores, on both databases: exchange counters and latency histograms
from ``opmon_totals``, the time-stamping backlog and the last time-stamp from the message log (stamped by
the dev trust services' real TSA), certificates and global configuration; parsed back with
``prometheus_client``'s own parser. Dropped operational data counted across processes; the OCSP cache's
nextUpdate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import AsyncEngine

from security_server.db import CertificateStatus
from security_server.messagelog import MessageLog, MessageLogStore, Timestamper
from security_server.metrics import NodeMetrics, exposition
from security_server.ocsp import OcspStatusKind, OwnOcspCache
from security_server.ocsp.cache import single_status
from security_server.operations import CertificateState, GlobalConfState
from security_server.opmonitoring import OpMonitor, OpMonitoringStore
from security_server.opmonitoring.models import LATENCY_BUCKETS
from security_server.settings import NodeSettings
from tests.test_signature import Evidence, build_evidence
from trust_services.app import RunningTrustService
from xroad_mn.identifiers import MemberId, format_id
from xroad_mn.tokens.base import KeyUsage
from xroad_mn.wire.opmonitoring import CLIENT, PRODUCER, OpRecord

from .messagelog_fixtures import signed_record, trust_with_tsas

SERVICE = MemberId("MN", "GOV", "2").subsystem("reg").service("get", "v1")
OTHER = MemberId("MN", "GOV", "2").subsystem("reg").service("list")


@pytest.fixture(scope="module")
def evidence() -> Evidence:
    return build_evidence()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _rec(side: str, duration_ms: int, *, ok: bool = True, service_code: str = "get") -> OpRecord:
    version = "v1" if service_code == "get" else None
    return OpRecord(
        side, 1_000_000, response_out_ts=1_000_000 + duration_ms, succeeded=ok,
        client_xroad_instance="MN", client_member_class="GOV", client_member_code="1",
        client_subsystem_code="kyc",
        service_xroad_instance="MN", service_member_class="GOV", service_member_code="2",
        service_subsystem_code="reg", service_code=service_code, service_version=version,
    )  # fmt: skip


def _scrape(metrics: NodeMetrics) -> list[Sample]:
    """Every sample of the exposition, through Prometheus' parser."""
    text = exposition(metrics).decode("utf-8")
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the one sample ``name`` with ``labels`` (among others)."""
    found = [s.value for s in samples if s.name == name and s.labels.items() >= labels.items()]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def _absent(samples: list[Sample], name: str) -> bool:
    return all(s.name != name for s in samples)


def _certificate(evidence: Evidence, *, next_update: datetime | None) -> CertificateState:
    cert = evidence.key.certificate
    return CertificateState(
        key_id="k-sign",
        usage=KeyUsage.SIGNING,
        member=MemberId("MN", "GOV", "5012345"),
        certificate=cert,
        sha256="ab" * 32,
        status=CertificateStatus.REGISTERED,
        active=True,
        ocsp_status=OcspStatusKind.GOOD,
        ocsp_this_update=evidence.now,
        ocsp_error=None,
        ocsp_next_update=next_update,
    )


async def test_metrics_from_the_stores(
    node_db: AsyncEngine,
    evidence: Evidence,
    trust_service: RunningTrustService,
    session: aiohttp.ClientSession,
) -> None:
    opmon = OpMonitoringStore(node_db)
    await opmon.write([_rec(CLIENT, 3), _rec(CLIENT, 30), _rec(CLIENT, 300)], monitoring_ts=10)
    await opmon.write(
        [_rec(CLIENT, 2000, ok=False), _rec(PRODUCER, 7, service_code="list")], monitoring_ts=11
    )
    log_store = MessageLogStore(node_db)
    try:
        trust = trust_with_tsas(evidence, trust_service.directory, [trust_service.urls.tsa])
        timestamper = Timestamper(log_store, lambda: trust, session, acceptable_failure_period_seconds=14400)
        message_log = MessageLog(log_store, timestamper=timestamper)
        async with message_log.running():
            await asyncio.gather(*(message_log.log(signed_record(evidence, f"q-{i}")) for i in range(3)))
        waiting = await log_store.stamping_backlog()
        assert (waiting.unstamped, waiting.last_timestamp) == (3, None)
        now = datetime.now(UTC)
        before = NodeMetrics(
            at=now,
            totals=await opmon.totals(),
            backlog=waiting,
            last_archived=None,
            certificates=(),
            globalconf=GlobalConfState(None, None, None, None, "global_conf_outdated", "no configuration"),
            opmon_dropped=0,
        )
        samples = _scrape(before)
        assert _value(samples, "xroad_messagelog_unstamped_records") == 3
        assert _absent(samples, "xroad_messagelog_last_timestamp_age_seconds")  # never stamped: left out
        assert _absent(samples, "xroad_messagelog_last_archived_age_seconds")
        assert _value(samples, "xroad_globalconf_valid") == 0
        assert _absent(samples, "xroad_globalconf_age_seconds")

        # Exchanges by side, service and status.
        exchanges = samples
        get, listing = format_id(SERVICE), format_id(OTHER)
        total = "xroad_exchanges_total"
        assert _value(exchanges, total, side="client", service=get, status="success") == 3
        assert _value(exchanges, total, side="client", service=get, status="failure") == 1
        assert _value(exchanges, total, side="producer", service=listing, status="success") == 1
        assert len([s for s in exchanges if s.name == total]) == 3

        # The histogram: cumulative buckets in order, +Inf and _count equal to the counter, the sum.
        hist = samples
        series = {"side": "client", "service": get, "status": "success"}
        buckets = [s for s in hist if s.name.endswith("_bucket") and s.labels.items() >= series.items()]
        bounds = [s.labels["le"] for s in buckets]
        assert bounds == [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts)
        by_bound = dict(zip(bounds, counts, strict=True))
        assert (by_bound["0.005"], by_bound["0.025"]) == (1, 1)
        assert (by_bound["0.05"], by_bound["0.25"], by_bound["0.5"], by_bound["+Inf"]) == (2, 2, 3, 3)
        assert _value(hist, "xroad_exchange_duration_seconds_count", **series) == 3
        assert _value(hist, "xroad_exchange_duration_seconds_sum", **series) == pytest.approx(0.333)
        failed = {**series, "status": "failure"}
        assert _value(hist, "xroad_exchange_duration_seconds_bucket", le="1.0", **failed) == 0
        assert _value(hist, "xroad_exchange_duration_seconds_bucket", le="2.5", **failed) == 1

        # Time-stamped: the backlog drains and the newest time-stamp is seconds old.
        assert await timestamper.timestamp_now() == 3
        stamped = await log_store.stamping_backlog()
        assert stamped.unstamped == 0
        assert stamped.last_timestamp is not None
        at = datetime.now(UTC)
        expires = at + timedelta(minutes=10)
        next_update = evidence.now + timedelta(hours=1)
        after = NodeMetrics(
            at=at,
            totals=await opmon.totals(),
            backlog=stamped,
            last_archived=at - timedelta(seconds=42),
            certificates=(_certificate(evidence, next_update=next_update),),
            globalconf=GlobalConfState("MN", at - timedelta(seconds=12), 12.0, expires),
            opmon_dropped=5,
        )
        samples = _scrape(after)
        assert _value(samples, "xroad_messagelog_unstamped_records") == 0
        age = _value(
            samples,
            "xroad_messagelog_last_timestamp_age_seconds",
        )
        assert 0 <= age < 60
        assert _value(samples, "xroad_messagelog_last_archived_age_seconds") == 42
        assert _value(samples, "xroad_globalconf_valid") == 1
        assert _value(samples, "xroad_globalconf_age_seconds") == 12
        assert _value(samples, "xroad_globalconf_expiry_timestamp_seconds") == pytest.approx(
            expires.timestamp()
        )
        cert = {"key_id": "k-sign", "usage": "sign", "member": "MEMBER:MN/GOV/5012345", "sha256": "ab" * 32}
        not_after = evidence.key.certificate.not_valid_after_utc.timestamp()
        name = "xroad_certificate_not_after_timestamp_seconds"
        assert _value(samples, name, **cert) == not_after
        name = "xroad_certificate_ocsp_next_update_timestamp_seconds"
        assert _value(samples, name, **cert) == next_update.timestamp()
        name = "xroad_certificate_ocsp_this_update_timestamp_seconds"
        assert _value(samples, name, **cert) == pytest.approx(evidence.now.timestamp())
        assert _value(samples, "xroad_certificate_ocsp_good", **cert) == 1
        assert _value(samples, "xroad_opmonitoring_buffer_dropped_total") == 5
    finally:
        log_store.close()


def test_ocsp_cache_keeps_next_update(evidence: Evidence, tmp_path: Path) -> None:
    """The node's OCSP cache reads nextUpdate from a response it holds, and again after a restart (what the
    ``ocsp_next_update`` metric reports)."""
    pki = evidence.pki
    this_update = evidence.now.replace(microsecond=0) - timedelta(minutes=10)
    next_update = this_update + timedelta(hours=2)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=pki.member_sign.certificate,
            issuer=pki.intermediate.certificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=this_update,
            next_update=next_update,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, pki.ocsp_responder.certificate)
        .certificates([pki.ocsp_responder.certificate])
        .sign(pki.ocsp_responder.private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    cert = pki.member_sign.certificate
    said = single_status(response, cert)
    assert (said.kind, said.this_update, said.next_update) == (OcspStatusKind.GOOD, this_update, next_update)
    cache = OwnOcspCache(tmp_path / "ocsp")
    assert cache.put(cert, response, fetched_at=evidence.now).next_update == next_update
    restarted = OwnOcspCache(tmp_path / "ocsp")
    restarted.load([cert])
    state = restarted.status(cert)
    assert state is not None
    assert (state.status, state.next_update) == (OcspStatusKind.GOOD, next_update)


async def test_dropped_records_are_counted_across_processes(node_db: AsyncEngine, tmp_path: Path) -> None:
    """Two processes' buffers (two monitors on one database) drop what overflows; each write adds its drops
    to the node's count, which ``/metrics`` reports."""
    settings = NodeSettings(home=tmp_path, opmon_buffer_size=2)
    first, second = (OpMonitor(OpMonitoringStore(node_db), settings) for _ in range(2))
    for i in range(5):
        first.record(_rec(CLIENT, i))
    for i in range(3):
        second.record(_rec(PRODUCER, i))
    assert (first.dropped, first.unreported_drops, second.unreported_drops) == (3, 3, 1)
    assert await first.store.dropped() == 0
    assert await first.flush() == 2
    assert (first.unreported_drops, await second.store.dropped()) == (0, 3)
    assert await second.flush() == 2
    assert await first.store.dropped() == 4
    assert await first.flush() == 0  # nothing new: the count stays
    assert await first.store.dropped() == 4
    assert sum(t.count for t in await first.store.totals()) == 4
