"""How long a /metrics scrape takes at network scale: 2,000 sites (~16,000 checks), every check with a result.

The engine is built for the whole network but not run: each check is fed one synthetic result (value,
extra values, latency), as after a first round. Then /metrics is scraped over loopback HTTP the way
Prometheus does it (OpenMetrics), and the exporter's own work is timed apart from the HTTP server's.

    PYTHONPATH=. python benchmarks/metrics.py --sites 2000 --scrapes 7
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from bibnet_ops.collector import Collector
from bibnet_ops.inventory import load_inventory
from bibnet_ops.inventory.loader import _resolve_checks
from bibnet_ops.metrics import MetricsServer
from bibnet_ops.model import CheckStatus, Sample
from bibnet_ops.sim import base_network
from bibnet_ops.sim._network import resize_network

REPO = Path(__file__).resolve().parent.parent


def network(sites: int) -> object:
    shipped = load_inventory(REPO / "config")
    grown = resize_network(base_network(), sites, seed=1)
    checks = [c for site in grown for device in site.devices if device.template in shipped.templates
              for c in _resolve_checks(site, device, shipped.templates[device.template], shipped.root)]
    return replace(shipped, sites={s.id: s for s in grown}, checks=checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--scrapes", type=int, default=7)
    args = parser.parse_args()
    inventory = network(args.sites)
    collector = Collector(inventory, store=False, alerts=False)  # type: ignore[arg-type]
    rng = random.Random(1)
    now = time.time()
    for spec in inventory.checks:  # type: ignore[attr-defined]
        status = CheckStatus.OK if rng.random() > 0.02 else CheckStatus.CRITICAL
        sample = Sample(spec.id, status, "synthetic", value=rng.random() * 100, values={"total": 1e6},
                        latency=rng.random() / 10, time=now)
        collector.engine._on_result(spec, sample)
    checks, sites = len(inventory.checks), len(inventory.sites)  # type: ignore[attr-defined]
    server = MetricsServer(collector, "127.0.0.1:0").start()
    try:
        exporter_times, exporter_cpu, http_times, http_cpu, size, series = [], [], [], [], 0, 0
        for _ in range(args.scrapes):
            t0, c0 = time.perf_counter(), time.process_time()
            body = openmetrics_latest(server.registry)
            exporter_times.append(time.perf_counter() - t0)
            exporter_cpu.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            reply = httpx.get(server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"},
                              timeout=60)
            http_times.append(time.perf_counter() - t0)
            http_cpu.append(time.process_time() - c0)
            size = len(reply.content)
            series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        print(f"{sites} sites, {checks} checks: {series} series, {size / 1e6:.1f} MB per scrape")
        ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"  # noqa: E731
        print(f"exporter (snapshot + exposition): wall {ms(exporter_times)}; CPU {ms(exporter_cpu)}")
        print(f"HTTP scrape over loopback: wall {ms(http_times)}; CPU of this process {ms(http_cpu)}")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
