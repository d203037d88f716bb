"""The /metrics exposition of a running collector, scraped over HTTP from a real engine polling loopback servers."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from test_engine_support import network

from bibnet_ops.collector import Collector
from bibnet_ops.metrics import MetricsAddressError, MetricsServer, parse_address

LAYOUT = {"hub": (None, ["switch"]), "lib": ("hub", ["web", "scanner"])}
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class Outbox:
    def __init__(self) -> None:
        self.items = 7

    def depth(self) -> int:
        return self.items


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(url, headers={"Accept": OPENMETRICS}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def one(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    values = [v for lab, v in found.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(values) == 1, (name, labels, found.get(name))
    return values[0]


async def test_metrics_show_checks_sites_and_health(tmp_path: Path) -> None:
    async with network(LAYOUT) as net:
        net.set("fail", "lib/scanner")
        collector = Collector(net.inventory, store=tmp_path / "h.db", alerts=False, first_spread=0.05)
        server = MetricsServer(collector, "127.0.0.1:0", collector_id="oran-1").start()
        runner = asyncio.create_task(collector.run())
        try:
            async with asyncio.timeout(10):
                while collector.snapshot().sites["lib"].status is None or \
                        collector.snapshot().checks["lib/scanner/http"].hard_status.value != "CRITICAL":
                    await asyncio.sleep(0.05)
            found = await asyncio.to_thread(scrape, server.url)
            labels = {"site": "lib", "device": "scanner", "check": "http", "kind": "catalogue", "template": "web"}
            assert one(found, "bibnet_check_status", **labels) == 2.0
            assert "bibnet_check_soft" not in found  # every check is in its HARD state now
            assert one(found, "bibnet_check_value", site="lib", device="web", metric="", unit="s") > 0
            assert one(found, "bibnet_check_status", site="lib", device="web") == 0.0
            assert one(found, "bibnet_check_latency_seconds", site="lib", device="web") > 0
            assert one(found, "bibnet_check_last_poll_timestamp_seconds", site="lib", device="web") > 1.7e9
            assert one(found, "bibnet_site_status", site="lib", status="DEGRADED") == 1.0
            assert one(found, "bibnet_site_status", site="lib", status="UP") == 0.0
            assert one(found, "bibnet_site_status", site="hub", status="UP") == 1.0
            assert one(found, "bibnet_collector_checks", collector="oran-1") == 3.0
            assert one(found, "bibnet_collector_polls_total", collector="oran-1") >= 3.0
            assert one(found, "bibnet_collector_scheduling_lag_seconds", collector="oran-1", quantile="0.99") >= 0
            assert one(found, "bibnet_collector_store_commits_total", collector="oran-1") >= 0
            assert one(found, "process_resident_memory_bytes") > 1e6
            assert "process_cpu_seconds_total" in found
            assert "bibnet_collector_outbox_depth" not in found  # no outbox: no series, not a false 0
            for name in found:  # Prometheus naming: base units, counters end in _total
                assert not name.endswith(("_ms", "_milliseconds", "_bytes_total_total"))
            collector.attach_buffer(Outbox())
            # a reload: the removed device's series disappear, the added site's appear
            inv = net.inventory
            new = dataclasses.replace(inv, checks=[c for c in inv.checks if c.device_id != "scanner"])
            collector.reload(new)
            found = await asyncio.to_thread(scrape, server.url)
            assert one(found, "bibnet_collector_outbox_depth", collector="oran-1") == 7.0
            assert not [lab for lab, _ in found["bibnet_check_status"] if lab["device"] == "scanner"]
            assert one(found, "bibnet_collector_reloads_total", collector="oran-1") == 1.0
            assert one(found, "bibnet_collector_last_reload_timestamp_seconds", collector="oran-1") > 1.7e9
        finally:
            collector.stop()
            await runner
            server.stop()


def test_listen_addresses() -> None:
    assert parse_address("127.0.0.1:9877") == ("127.0.0.1", 9877)
    assert parse_address("[::1]:9877") == ("::1", 9877)
    assert parse_address(":9877") == ("127.0.0.1", 9877)
    assert parse_address("localhost:0") == ("localhost", 0)
    for bad in ("9877", "::1:9877", "127.0.0.1:http", "127.0.0.1:70000", "[::1]9877", "bad host!:1"):
        with pytest.raises(MetricsAddressError):
            parse_address(bad)


async def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    async with network({"s": (None, ["web"])}) as net:
        collector = Collector(net.inventory, store=False, alerts=False)
        first = MetricsServer(collector, "127.0.0.1:0").start()
        try:
            with pytest.raises(OSError):
                MetricsServer(collector, f"127.0.0.1:{first.port}").start()
        finally:
            first.stop()


async def test_a_soft_failure_is_marked_soft_until_it_turns_hard(tmp_path: Path) -> None:
    async with network({"s": (None, ["web"])}, retries=3, retry_interval=5.0) as net:
        net.set("fail", "s")
        collector = Collector(net.inventory, store=False, alerts=False, first_spread=0.05)
        server = MetricsServer(collector, "127.0.0.1:0").start()
        runner = asyncio.create_task(collector.run())
        try:
            async with asyncio.timeout(10):
                while collector.snapshot().checks["s/web/http"].status is None:
                    await asyncio.sleep(0.05)
            found = await asyncio.to_thread(scrape, server.url)
            assert one(found, "bibnet_check_status", site="s") == 2.0  # CRITICAL now...
            assert one(found, "bibnet_check_soft", site="s") == 1.0  # ...but SOFT: attempt 1 of 3
            # every check of the site fails, still SOFT: its fate is open, so it has no status series yet
            assert not found.get("bibnet_site_status")
        finally:
            collector.stop()
            await runner
            server.stop()
