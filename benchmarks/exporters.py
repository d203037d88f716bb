"""Benchmark: our engine beside Debian's blackbox_exporter and snmp_exporter, on the same simulated targets.

Starts `bibnet-ops sim --sites N` as a child process, then in one run, alternately (ours, exporter, ours,
exporter... `--rounds` times each):

- SNMP: the book scanners' `uptime` and `pages` checks through our engine (they share one GET of sysUpTime
  and the page counter per scanner and round), and `prometheus-snmp-exporter` scraped on
  `/probe?module=scanner&target=...` for the same agents, its module (written here by hand into a temp
  `snmp.yml`, no generator) GETting the same two OIDs with the same community;
- HTTP: the catalogue servers' `opac` checks (GET, status 200, body contains "Koha") through our engine,
  and `prometheus-blackbox-exporter` scraped on `/probe?module=opac&target=URL` with the same
  expectations (and the simulator's CA for HTTPS).

Our checks and the exporters' probes run at the same rate (`--rate` per minute). Our CPU is this process's
(nothing else runs in it during our phases); an exporter's is read from /proc for its own process, over
the same measured window, and the scraper that drives it runs in this process and is not counted. Prints
CPU seconds per 1,000 checks or probes and the ratios: one of our checks against one exporter probe.

Installs the two Debian packages with apt-get when they are missing and we are root (as `make bench-deps`).

    .venv/bin/python benchmarks/exporters.py [--sites 100] [--rate 12000] [--seconds 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
from poll import Phase, paced, run_engine, start_sim

from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import CheckSpec
from bibnet_ops.probes import snmp as snmp_probe
from bibnet_ops.probes.http import HttpOptions

EXPORTERS = {
    "snmp": ("prometheus-snmp-exporter", "/usr/bin/prometheus-snmp-exporter"),
    "blackbox": ("prometheus-blackbox-exporter", "/usr/bin/prometheus-blackbox-exporter"),
}


def ensure_exporters() -> None:
    """Install the exporters' Debian packages if missing (root only), or say how to."""
    missing = [pkg for pkg, path in EXPORTERS.values() if not Path(path).exists() and not shutil.which(pkg)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(f"missing {', '.join(missing)}: run `make bench-deps` (or apt-get install them) first")
    print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_snmp_yml(path: Path, community: str, oids: list[str], timeout: float) -> None:
    """snmp_exporter 0.21's config: module `scanner`, one GET of the scanner checks' OIDs, v2c, no retry."""
    metrics = []
    for oid in oids:
        column = oid.rsplit(".", 1)[0] if oid.endswith(".0") else oid
        name = "sysUpTime" if oid == snmp_probe.SYS_UPTIME else "prtMarkerLifeCount"
        kind = "gauge" if name == "sysUpTime" else "counter"
        metrics.append(f"  - name: {name}\n    oid: {column}\n    type: {kind}\n    help: {name} ({oid})\n")
        if not oid.endswith(".0"):
            # a counter instance of a table: the exporter needs its index labels to name the series
            metrics[-1] = (f"  - name: {name}\n    oid: {oid.rsplit('.', 2)[0]}\n    type: {kind}\n"
                           f"    help: {name} ({oid})\n    indexes:\n"
                           "    - labelname: hrDeviceIndex\n      type: gauge\n"
                           "    - labelname: prtMarkerIndex\n      type: gauge\n")
    text = (
        "scanner:\n  get:\n" + "".join(f"  - {oid}\n" for oid in oids)
        + "  metrics:\n" + "".join(metrics)
        + f"  version: 2\n  max_repetitions: 25\n  retries: 0\n  timeout: {timeout:g}s\n"
        + f"  auth:\n    community: {community}\n"
    )
    path.write_text(text)


def write_blackbox_yml(path: Path, ca_file: str, body: str, timeout: float) -> None:
    """blackbox_exporter's config: module `opac`, a GET expecting 200 and the body text our check expects."""
    lines = [
        "modules:", "  opac:", "    prober: http", f"    timeout: {timeout:g}s", "    http:",
        "      method: GET", "      valid_status_codes: [200]", "      preferred_ip_protocol: ip4",
        "      ip_protocol_fallback: false", f"      fail_if_body_not_matches_regexp: [{body!r}]",
    ]
    if ca_file:
        lines += ["      tls_config:", f"        ca_file: {ca_file}"]
    path.write_text("\n".join(lines) + "\n")


def start_exporter(binary: str, config: Path, port: int) -> subprocess.Popen[bytes]:
    """Start an exporter on 127.0.0.1:port and wait until it serves /metrics."""
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"{binary} exited: {err[-400:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{binary} did not start")


def exporter_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds the exporter process has used, from /proc/<pid>/stat (via psutil)."""
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 reply from a kept-alive connection: status and body (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])
    length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]) if b"content-length:" in lower else 0
    return status, await reader.readexactly(length)


async def drive(name: str, proc: subprocess.Popen[bytes], port: int, paths: list[str], per_minute: float,
                seconds: float, warmup: float, concurrency: int) -> Phase:
    """Scrape `paths` in turn at `per_minute`; count successful probes and the exporter's CPU after a warm-up.

    The scraper is a bare HTTP/1.1 client on kept-alive connections (a few tens of µs per request), so that
    this process keeps up with the pace even on a loaded machine; what the exporter does is the same.
    """
    # a probe counts as successful when the exporter returned what our check reads
    wanted = (b"probe_success 1",) if "blackbox" in name else (b"\nsysUpTime ", b"\nprtMarkerLifeCount{")
    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode() for path in paths]
    counts = {"done": 0, "failed": 0, "measuring": 0}
    failures: dict[str, int] = {}
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (index := await queue.get()) is not None:
                try:
                    writer.write(requests[index % len(requests)])
                    status, body = await _read_reply(reader)
                    ok = status == 200 and all(w in body for w in wanted)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    ok = False
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                if counts["measuring"]:
                    counts["done"] += 1
                    counts["failed"] += 0 if ok else 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    loop = asyncio.get_running_loop()
    step = 60.0 / per_minute
    start = loop.time()
    measure_at, stop_at = start + warmup, start + warmup + seconds
    cpu0 = t0 = 0.0
    i = 0
    while True:
        now = loop.time()
        if not counts["measuring"] and now >= measure_at:
            counts["measuring"], cpu0, t0 = 1, exporter_cpu(proc), time.monotonic()
        if now >= stop_at:
            break
        delay = start + i * step - now
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
        i += 1
    counts["measuring"] = 0
    wall, cpu = time.monotonic() - t0, exporter_cpu(proc) - cpu0
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers, return_exceptions=True)
    phase = Phase(name, counts["done"], wall, cpu, failures=counts["failed"], load=psutil.getloadavg()[0])
    if failures:
        phase.note = "; ".join(f"{n}x {k}" for k, n in failures.items())
    return phase


def secret(check: CheckSpec, name: str) -> str:
    ref = check.credentials[name]
    return ref.resolve()


async def main_async(args: argparse.Namespace, inventory: Inventory, tmp: Path) -> None:
    remote = [c for c in inventory.checks if c.probe != "host"]
    # v2c scanners only: the exporter's module has one community (a v3 scanner would need a module per user)
    scanners = [c for c in remote if c.probe == "snmp" and c.name in ("uptime", "pages")
                and str(c.params.get("mode", "get")) in ("get", "rate") and "community" in c.credentials]
    opac = [c for c in remote if c.probe == "http" and c.name == "opac"]
    if not scanners or not opac:
        raise SystemExit("the simulated network has no book scanners or OPAC checks")
    per_site = int(inventory.settings.get("collector", {}).get("per_site_concurrency") or 4)
    oids = [snmp_probe.SYS_UPTIME, str(next(c for c in scanners if c.name == "pages").params["oid"])]
    agents = sorted({c.address for c in scanners})
    snmp_yml, blackbox_yml = tmp / "snmp.yml", tmp / "blackbox.yml"
    write_snmp_yml(snmp_yml, secret(scanners[0], "community"), oids, scanners[0].timeout)
    options = [HttpOptions.from_check(c) for c in opac]
    ca = next((o.ca_file for o in options if o.ca_file), "")
    body = str(opac[0].params.get("body_contains", ""))
    write_blackbox_yml(blackbox_yml, str(Path(ca).resolve()) if ca else "", body, opac[0].timeout)
    snmp_port, bb_port = free_port(), free_port()
    snmp_exp = start_exporter(EXPORTERS["snmp"][1], snmp_yml, snmp_port)
    bb_exp = start_exporter(EXPORTERS["blackbox"][1], blackbox_yml, bb_port)
    snmp_paths = [f"/snmp?module=scanner&target={quote(a)}" for a in agents]
    bb_paths = [f"/probe?module=opac&target={quote(o.url, safe='')}" for o in options]
    print(f"{len(inventory.sites)} sites: {len(scanners)} scanner SNMP checks on {len(agents)} agents "
          f"(exporter module GETs {', '.join(oids)}), {len(opac)} OPAC HTTP checks; "
          f"{args.rate:.0f} checks or probes per minute each phase", flush=True)
    results: dict[str, list[Phase]] = {}
    try:
        for round_ in range(args.rounds):
            pairs = (("snmp", scanners, snmp_port, snmp_paths, snmp_exp), ("http", opac, bb_port, bb_paths, bb_exp))
            for kind, checks, port, paths, proc in pairs:
                ours = await run_engine(f"{kind} ours", inventory, paced(checks, args.rate), args.seconds,
                                        args.warmup, args.concurrency, per_site)
                exporter = "snmp_exporter" if kind == "snmp" else "blackbox_exporter"
                theirs = await drive(f"{kind} {exporter}", proc, port, paths, args.rate, args.seconds, args.warmup,
                                     args.scrapers)
                for phase in (ours, theirs):
                    results.setdefault(phase.name, []).append(phase)
                    print(f"round {round_ + 1} {phase.name:<24} {phase.rate * 60:8.0f}/min "
                          f"{phase.cpu_per_1000:6.3f} CPU s/1000, {phase.cpu / phase.wall * 100:5.1f} % of a core, "
                          f"{phase.failures} failed, load {phase.load:.2f}"
                          + (f"; {phase.note}" if phase.note else ""), flush=True)
    finally:
        for proc in (snmp_exp, bb_exp):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
    print()
    print(f"{'':<36} {'CPU s per 1,000':>20} {'ours/theirs':>14}")
    for kind, exporter in (("snmp", "snmp_exporter"), ("http", "blackbox_exporter")):
        ours = [p.cpu_per_1000 for p in results[f"{kind} ours"]]
        theirs = [p.cpu_per_1000 for p in results[f"{kind} {exporter}"]]
        ratios = [a / b for a, b in zip(ours, theirs, strict=True) if b > 0]
        print(f"{kind + ' ours (per check)':<36} {' / '.join(f'{x:.3f}' for x in ours):>20}")
        print(f"{kind + ' ' + exporter + ' (per probe)':<36} {' / '.join(f'{x:.3f}' for x in theirs):>20} "
              f"{' / '.join(f'{r:.2f}x' for r in ratios):>14}")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--rate", type=float, default=12000, help="checks (or probes) per minute in each phase")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="times each phase pair runs, alternately")
    parser.add_argument("--concurrency", type=int, default=200, help="our engine's concurrency bound")
    parser.add_argument("--scrapers", type=int, default=32, help="kept-alive connections scraping an exporter")
    args = parser.parse_args()
    ensure_exporters()
    with tempfile.TemporaryDirectory(prefix="bibnet-exporters-") as tmp:
        sim = start_sim(args.sites, Path(tmp) / "config")
        try:
            cwd = os.getcwd()
            os.chdir(Path(tmp) / "config")  # secrets are file: references relative to the config
            try:
                inventory = load_inventory(Path(tmp) / "config")
                asyncio.run(main_async(args, inventory, Path(tmp)))
            finally:
                os.chdir(cwd)
        finally:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()


if __name__ == "__main__":
    sys.exit(main())
