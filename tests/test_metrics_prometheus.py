"""/metrics scraped by Debian's real Prometheus server from a real `bibnet-ops collect` polling the simulator.

The test starts the simulator (loopback HTTP and SNMP agents), a collector process with `--metrics` on a
free port, and `/usr/bin/prometheus` (temp dir, free port, scrape every second), then asks Prometheus'
HTTP API what an operator would: is the collector up, what is a site's status, how many pages a scanner
has scanned.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bibnet_ops.inventory import load_inventory
from bibnet_ops.sim import Simulator, SimulatorThread

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SITES = ["bna", "bplp-16"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_templates(target: Path) -> Path:
    """The shipped templates with intervals of a second, so a test sees several rounds quickly."""
    target.mkdir(parents=True)
    for path in (REPO / "checks").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^interval = \d+", "interval = 1", text)
        text = re.sub(r"(?m)^retry_interval = \d+", "retry_interval = 0.5", text)
        text = re.sub(r"(?m)^retries = \d+", "retries = 2", text)
        text = re.sub(r"(?m)^timeout = \d+", "timeout = 2", text)
        (target / path.name).write_text(text, encoding="utf-8")
    return target


@pytest.fixture
def simulated(tmp_path: Path) -> Iterator[tuple[SimulatorThread, Path]]:
    shipped = load_inventory(REPO / "config")
    runner = SimulatorThread(Simulator([shipped.sites[s] for s in SITES], seed=4, always_open=True))
    sim = runner.start()
    try:
        config = sim.write_config(tmp_path / "config")
        checks = fast_templates(tmp_path / "checks")
        net = config / "network.toml"
        text = re.sub(r'(?m)^templates = ".*"$', f'templates = "{checks}"', net.read_text(encoding="utf-8"))
        net.write_text(text, encoding="utf-8")
        yield runner, config
    finally:
        runner.stop()


def wait_metrics_url(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text(encoding="utf-8", errors="replace")
        if match := re.search(r"metrics: (http://\S+/metrics)", text):
            return match.group(1)
        time.sleep(0.1)
    raise AssertionError("the collector never said where /metrics is:\n" + text)


def query(api: str, expr: str) -> list[dict[str, object]]:
    response = httpx.get(f"{api}/api/v1/query", params={"query": expr}, timeout=5)
    if response.status_code == 503:  # still starting (replaying its write-ahead log)
        return []
    reply = response.json()
    assert reply["status"] == "success", reply
    return list(reply["data"]["result"])


def wait_query(api: str, expr: str, timeout: float = 40.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = query(api, expr)
        except httpx.HTTPError:
            found = []
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="Debian's prometheus package is not installed "
                    "(make test installs it: apt-get install prometheus)")
def test_prometheus_scrapes_the_collector(tmp_path: Path, simulated: tuple[SimulatorThread, Path]) -> None:
    runner, config = simulated
    collector_log = tmp_path / "collector.log"
    prometheus_log = tmp_path / "prometheus.log"
    with collector_log.open("wb") as log:
        collector = subprocess.Popen(
            [sys.executable, "-m", "bibnet_ops", "collect", "--config", str(config), "--no-store",
             "--metrics", "127.0.0.1:0", "--log-format", "text"], stdout=subprocess.DEVNULL, stderr=log)
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        url = wait_metrics_url(collector, collector_log)
        target = url.removeprefix("http://").removesuffix("/metrics")
        port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: bibnet\n    static_configs:\n"
            f"      - targets: ['{target}']\n", encoding="utf-8")
        with prometheus_log.open("wb") as plog:
            prometheus = subprocess.Popen(
                [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                 "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=plog)
        api = f"http://127.0.0.1:{port}"

        up = wait_query(api, 'up{job="bibnet"} == 1')
        assert up, prometheus_log.read_text()
        # the library answers: UP
        assert wait_query(api, 'bibnet_site_status{site="bplp-16",status="UP"} == 1')
        # a scanner's pages: the lifetime counter, and pages per hour once two readings exist
        pages = wait_query(api, 'bibnet_check_values{site="bplp-16",kind="scanner",check="pages",name="total"}')
        assert pages and all(float(p["value"][1]) > 0 for p in pages)  # type: ignore[index]
        rate = wait_query(api, 'bibnet_check_value{site="bplp-16",check="pages",unit="pages/h"} >= 0')
        assert rate
        # the collector's own health
        assert wait_query(api, "rate(bibnet_collector_polls_total[5s]) > 0")
        assert wait_query(api, "process_resident_memory_bytes > 0")
        # a site cut off: Prometheus sees it DOWN, and its checks CRITICAL
        runner.call(runner.sim.set_fault, "bplp-16", "outage")
        down = wait_query(api, 'bibnet_site_status{site="bplp-16",status="DOWN"} == 1', timeout=60)
        assert down
        assert wait_query(api, 'bibnet_check_status{site="bplp-16",kind="network"} == 2')
        # the other site is not dragged down with it (its status may be DEGRADED on a loaded machine: the
        # collector host's own CPU check belongs to it)
        assert query(api, 'bibnet_site_status{site="bna",status="DOWN"} == 0')
    finally:
        if prometheus is not None:
            prometheus.send_signal(signal.SIGTERM)
            try:
                prometheus.wait(15)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()
        collector.send_signal(signal.SIGTERM)
        try:
            collector.wait(15)
        except subprocess.TimeoutExpired:
            collector.kill()
            collector.wait()
    assert collector.returncode == 0, collector_log.read_text()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_the_alert_rules_in_the_docs_are_valid(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    match = re.search(r"# /etc/prometheus/bibnet.rules.yml\n(.*?)```", docs, re.S)
    assert match, "docs/metrics.md lost its rules example"
    rules = tmp_path / "bibnet.rules.yml"
    rules.write_text(match.group(1), encoding="utf-8")
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout
