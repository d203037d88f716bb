"""Serving /metrics over HTTP on its own thread (prometheus_client's server: OpenMetrics when asked)."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bibnet_ops.inventory._address import parse_address
from bibnet_ops.metrics._exporter import EngineExporter, MetricsSource

__all__ = ["MetricsServer"]

log = logging.getLogger(__name__)


class MetricsServer:
    """`/metrics` for one collector: its checks, sites and health, plus the process' CPU and memory.

    Args:
        source: the running collector.
        address: `HOST:PORT` to listen on (port 0: a free one; `url` tells which).
        collector_id: value of the `collector` label on health series (default: the host name).

    Raises (from `start`):
        MetricsAddressError: an unusable address.
        OSError: the port is taken or the address is not local.
    """

    def __init__(self, source: MetricsSource, address: str, collector_id: str | None = None) -> None:
        self.host, self.port = parse_address(address)
        self.registry = CollectorRegistry(auto_describe=False)
        # process_cpu_seconds_total, process_resident_memory_bytes...: the standard names dashboards expect
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.exporter = EngineExporter(source, collector_id or socket.gethostname())
        self.registry.register(self.exporter)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        """Listen and serve on a daemon thread; returns at once."""
        self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("metrics: %s", self.url)
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop listening (scrapes in progress finish on their own threads)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
