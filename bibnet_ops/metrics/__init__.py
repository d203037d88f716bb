"""OpenMetrics `/metrics` for a running collector, with prometheus_client (no Textual, no hand-written exposition).

Usage::

    server = MetricsServer(collector, "127.0.0.1:9877").start()   # serves http://127.0.0.1:9877/metrics
    ...
    server.stop()

`EngineExporter` is a prometheus_client custom collector: every scrape reads the collector's snapshot
and status at that moment, so nothing is updated per poll. The metric list is in docs/metrics.md.
"""

from __future__ import annotations

from bibnet_ops.inventory._address import MetricsAddressError, parse_address
from bibnet_ops.metrics._exporter import CHECK_LABELS, EngineExporter, MetricsSource
from bibnet_ops.metrics._server import MetricsServer

__all__ = [
    "CHECK_LABELS",
    "EngineExporter",
    "MetricsAddressError",
    "MetricsServer",
    "MetricsSource",
    "parse_address",
]
