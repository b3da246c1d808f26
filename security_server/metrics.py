"""The node's Prometheus metrics: what ``GET /metrics`` on the admin socket serves.

X-Road exposes a security server's health over JMX, on the machine only; xroad-mn serves the same facts in
Prometheus' text format on the admin API's socket (loopback unless the operator names another address),
behind an API key of any role, like every read of the admin API. Everything is read at scrape time — a few
indexed queries and what the running node holds in memory — into a :class:`NodeMetrics` snapshot, exposed
through a :class:`~prometheus_client.registry.CollectorRegistry` made for that one scrape: no global
registry, no multiprocess mode. Counters that worker processes add to live in the database
(``opmon_totals``), so one scrape of the main process is right for the whole node.

=============================================================  =======================================
metric                                                         from
=============================================================  =======================================
``xroad_exchanges_total{side,service,status}``                 ``opmon_totals``
``xroad_exchange_duration_seconds{side,service,status}``       ``opmon_totals`` (cumulative buckets)
``xroad_messagelog_unstamped_records``                         records waiting for a time-stamp
``xroad_messagelog_last_timestamp_age_seconds``                the newest time-stamp's ``genTime``
``xroad_messagelog_last_archived_age_seconds``                 the last finished archiving round (any process)
``xroad_certificate_not_after_timestamp_seconds{...}``         the node's certificates
``xroad_certificate_ocsp_this_update_timestamp_seconds{...}``  the OCSP responses the node holds
``xroad_certificate_ocsp_next_update_timestamp_seconds{...}``  (only when the responder gives one)
``xroad_certificate_ocsp_good{...}``                           1 while the held response says good
``xroad_globalconf_age_seconds``, ``..._expiry_timestamp_...``  the installed global configuration
``xroad_globalconf_valid``                                     1 while it is usable
``xroad_opmonitoring_buffer_dropped_total``                    operational data records dropped
=============================================================  =======================================

An age whose event never happened (no time-stamp yet, no archiving round yet, no configuration) is left
out rather than given a made-up value; alert on it with ``absent()``. Example::

    >>> snapshot = await gather_metrics(ctx, runtime.node)  # doctest: +SKIP
    >>> text = exposition(snapshot)  # doctest: +SKIP
    >>> b"xroad_exchanges_total" in text  # doctest: +SKIP
    True
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from security_server.messagelog.archivestate import STATE_FILE, load_state
from security_server.messagelog.store import StampingBacklog
from security_server.ocsp import OcspStatusKind
from security_server.operations import (
    CertificateState,
    GlobalConfState,
    NodeContext,
    certificate_states,
    globalconf_state,
)
from security_server.opmonitoring import Totals
from security_server.opmonitoring.models import LATENCY_BUCKETS
from security_server.proxy.node import ExchangeNode
from xroad_mn.errors import XRoadError
from xroad_mn.identifiers import format_id

__all__ = ["CONTENT_TYPE", "NodeCollector", "NodeMetrics", "exposition", "gather_metrics"]

log = structlog.get_logger(__name__)

CONTENT_TYPE: Final = "text/plain; version=0.0.4"
"""Prometheus' text exposition format (UTF-8, Prometheus' default)."""
_CERT_LABELS: Final = ("key_id", "usage", "member", "sha256")


@dataclass(frozen=True)
class NodeMetrics:
    """What one scrape reports, read at ``at``."""

    at: datetime
    totals: Sequence[Totals]
    backlog: StampingBacklog
    last_archived: datetime | None
    """``None`` when this process does not archive, or before its first successful round."""
    certificates: Sequence[CertificateState]
    globalconf: GlobalConfState
    opmon_dropped: int
    """Records dropped by every process of the node (the database's count and this process's not yet
    written)."""


def _side(side: str) -> str:
    return side.lower()


def _seconds_since(at: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (at - then).total_seconds())


def _certificate_labels(cert: CertificateState) -> list[str]:
    member = format_id(cert.member) if cert.member is not None else ""
    return [cert.key_id, cert.usage.value, member, cert.sha256]


def _le(bound: float) -> str:
    """A bucket's ``le`` label as Prometheus' clients write it (``0.005``, ``1.0``, ``10.0``)."""
    return repr(float(bound))


class NodeCollector(Collector):
    """A :class:`NodeMetrics` snapshot as Prometheus metric families."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        yield from self._exchanges()
        yield from self._message_log()
        yield from self._certificates()
        yield from self._globalconf()
        dropped = CounterMetricFamily(
            "xroad_opmonitoring_buffer_dropped",
            "Operational data records dropped because the buffer was full or could not be written.",
        )
        dropped.add_metric([], self.metrics.opmon_dropped)
        yield dropped

    def _exchanges(self) -> Iterable[Metric]:
        labels = ["side", "service", "status"]
        count = CounterMetricFamily(
            "xroad_exchanges", "Exchanges recorded by operational monitoring.", labels=labels
        )
        duration = HistogramMetricFamily(
            "xroad_exchange_duration_seconds",
            "Duration of exchanges, from the request's arrival to the response's departure.",
            labels=labels,
        )
        for row in self.metrics.totals:
            values = [_side(row.side), row.service, row.status]
            count.add_metric(values, row.count)
            buckets = [(_le(b), n) for b, n in zip(LATENCY_BUCKETS, row.buckets, strict=True)]
            duration.add_metric(values, [*buckets, ("+Inf", row.count)], row.duration_sum_ms / 1000)
        yield count
        yield duration

    def _message_log(self) -> Iterable[Metric]:
        m = self.metrics
        yield GaugeMetricFamily(
            "xroad_messagelog_unstamped_records",
            "Message log records waiting for a time-stamp.",
            value=m.backlog.unstamped,
        )
        for name, doc, then in (
            (
                "xroad_messagelog_last_timestamp_age_seconds",
                "Seconds since the newest time-stamp of the message log (its genTime).",
                m.backlog.last_timestamp,
            ),
            (
                "xroad_messagelog_last_archived_age_seconds",
                "Seconds since the archiver's last successful round.",
                m.last_archived,
            ),
        ):
            age = _seconds_since(m.at, then)
            if age is not None:
                yield GaugeMetricFamily(name, doc, value=age)

    def _certificates(self) -> Iterable[Metric]:
        labels = list(_CERT_LABELS)
        not_after = GaugeMetricFamily(
            "xroad_certificate_not_after_timestamp_seconds",
            "When the node's certificate expires (Unix time).",
            labels=labels,
        )
        this_update = GaugeMetricFamily(
            "xroad_certificate_ocsp_this_update_timestamp_seconds",
            "thisUpdate of the OCSP response the node holds for its certificate (Unix time).",
            labels=labels,
        )
        next_update = GaugeMetricFamily(
            "xroad_certificate_ocsp_next_update_timestamp_seconds",
            "nextUpdate of the OCSP response the node holds for its certificate (Unix time).",
            labels=labels,
        )
        good = GaugeMetricFamily(
            "xroad_certificate_ocsp_good",
            "1 while the OCSP response the node holds says good, else 0.",
            labels=labels,
        )
        for cert in self.metrics.certificates:
            values = _certificate_labels(cert)
            not_after.add_metric(values, cert.certificate.not_valid_after_utc.timestamp())
            if cert.ocsp_this_update is not None:
                this_update.add_metric(values, cert.ocsp_this_update.timestamp())
            if cert.ocsp_next_update is not None:
                next_update.add_metric(values, cert.ocsp_next_update.timestamp())
            good.add_metric(values, 1.0 if cert.ocsp_status is OcspStatusKind.GOOD else 0.0)
        yield from (not_after, this_update, next_update, good)

    def _globalconf(self) -> Iterable[Metric]:
        conf = self.metrics.globalconf
        yield GaugeMetricFamily(
            "xroad_globalconf_valid",
            "1 while the installed global configuration is usable (verified and not expired), else 0.",
            value=1.0 if conf.error_code is None else 0.0,
        )
        if conf.age_seconds is not None:
            yield GaugeMetricFamily(
                "xroad_globalconf_age_seconds",
                "Seconds since the installed global configuration was downloaded.",
                value=max(0.0, conf.age_seconds),
            )
        if conf.expires_at is not None:
            yield GaugeMetricFamily(
                "xroad_globalconf_expiry_timestamp_seconds",
                "When the installed global configuration expires (Unix time).",
                value=conf.expires_at.timestamp(),
            )


def exposition(metrics: NodeMetrics) -> bytes:
    """``metrics`` in Prometheus' text format, through a registry of this scrape's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(metrics))
    return generate_latest(registry)


def _last_archiving_round(home: Path) -> datetime | None:
    """When an archiving round last finished, by this process or ``xroad-mn node log archive`` (the
    archiver's state file); ``None`` before the first, or when the file cannot be read (logged)."""
    try:
        return load_state(home / STATE_FILE).last_round
    except XRoadError as e:
        log.warning("archiver_state_unreadable", reason=e.message)
        return None


async def gather_metrics(ctx: NodeContext, exchange: ExchangeNode) -> NodeMetrics:
    """Read a snapshot of the node in ``ctx`` whose message exchange in this process is ``exchange`` (its
    message log and archiver, its operational data buffer): the parts of ``node status`` that matter here
    (certificates with their OCSP status, global configuration), the totals, the time-stamping backlog."""
    at = ctx.clock()
    certificates = await certificate_states(ctx)
    globalconf = await globalconf_state(ctx, at)
    totals = await exchange.opmon.store.totals()
    backlog = await exchange.message_log.store.stamping_backlog()
    return NodeMetrics(
        at=at,
        totals=totals,
        backlog=backlog,
        last_archived=await asyncio.to_thread(_last_archiving_round, ctx.settings.home),
        certificates=certificates,
        globalconf=globalconf,
        opmon_dropped=await exchange.opmon.store.dropped() + exchange.opmon.unreported_drops,
    )
