"""Operational monitoring on the node (X-Road's op-monitor, in process): per-exchange records, their store
and buffer, and the two monitoring services; the totals feed ``/metrics`` (:mod:`security_server.metrics`).

* :class:`OpTrace` collects one side's facts of one exchange (the proxies fill it in);
* :class:`OpMonitor` buffers the records and writes them in batches, off the request path;
* :class:`OpMonitoringStore` holds them (``opmon_records``) with running totals (``opmon_totals``).
"""

from __future__ import annotations

from security_server.opmonitoring.monitor import OpMonitor
from security_server.opmonitoring.store import OpMonitoringStore, QueryPage, Totals
from security_server.opmonitoring.trace import CLIENT, PRODUCER, OpTrace, now_ms

__all__ = ["CLIENT", "PRODUCER", "OpMonitor", "OpMonitoringStore", "OpTrace", "QueryPage", "Totals", "now_ms"]
