"""Benchmark: the engine polling a simulated network, against a bare loop of the same requests.

Starts `bibnet-ops sim --sites N --write-config DIR` as a child process (so the simulator's CPU is not
counted), waits for its "ready:" line, then in this process measures:

1. HTTP checks through the engine, with one connection pool per site (the probe's design) and with one
   shared pool, and a bare loop of httpx GETs of the same URLs at the same concurrency for each (its
   clients and connections warmed up first, as the engine's are); for the per-site design also a bare
   loop of GETs on httpx's transport layer as the probe sends them (httpcore, asyncio network backend);
2. SNMP GET checks (modes get/rate) through the engine and a bare loop of pysnmp GETs;
3. every remote check (HTTP, OAI-PMH, SNMP) at the target rate: checks/s achieved, CPU share of one
   core, scheduling lag p50/p99, timeouts;
4. each probe kind alone (OAI-PMH identify and lag, SNMP get/rate, walk, walk_rate) at `--kind-rate`;
5. the realistic mix: every remote check at its template's own interval, the intervals scaled so that
   the simulated sites generate the checks/min of a `--network-sites` network (and the SNMP walk's
   interface-index cache ages on the same scaled clock);

and prints CPU seconds per 1,000 checks, the engine/baseline ratios, peak RSS, the load average after
each phase, and the SNMP requests this process sent per SNMP check (GETs of one device coalesce).

    .venv/bin/python benchmarks/poll.py [--sites 100] [--rate 20000] [--seconds 20] [--concurrency 200]
                                        [--phases http,snmp,engine,all,kinds,mix] [--network-sites 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import resource
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import psutil

from bibnet_ops import probes
from bibnet_ops.engine import Engine, PollHealth
from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes import _httpclient, http
from bibnet_ops.probes import snmp as snmp_probe
from bibnet_ops.probes._httpnet import AsyncioBackend
from bibnet_ops.probes.http import HttpOptions

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SIM: psutil.Process | None = None
SNMP_SENT = [0]  # SNMP datagrams this process has sent (every pysnmp engine's dispatcher)


def count_snmp_requests() -> None:
    """Count every datagram a pysnmp dispatcher sends (requests, retries and v3 discovery alike)."""
    from pysnmp.carrier.base import AbstractTransportDispatcher

    send = AbstractTransportDispatcher.send_message

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        SNMP_SENT[0] += 1
        return send(self, *args, **kwargs)

    AbstractTransportDispatcher.send_message = counting


def sim_cpu() -> float:
    """CPU seconds the simulator process has used so far."""
    if SIM is None:
        return 0.0
    times = SIM.cpu_times()
    return float(times.user + times.system)


async def noop_probe(check: CheckSpec) -> Sample:
    """A probe that answers at once: what is left is the engine's own cost."""
    await asyncio.sleep(0)
    return Sample(check.id, CheckStatus.OK, "ok", value=0.001, latency=0.001, time=time.time())


@dataclasses.dataclass
class Phase:
    """What one measured phase did."""

    name: str
    checks: int
    wall: float
    cpu: float
    health: PollHealth | None = None
    failures: int = 0
    sim_cpu: float = 0.0
    note: str = ""
    snmp_checks: int = 0
    snmp_requests: int = 0
    load: float = 0.0

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / max(1, self.checks) * 1000

    @property
    def rate(self) -> float:
        return self.checks / self.wall


def start_sim(sites: int, directory: Path) -> subprocess.Popen[str]:
    """Start the simulator and wait for its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bibnet_ops", "sim", "--sites", str(sites), "--always-open", "--seed", "1",
         "--write-config", str(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        if line.startswith("ready:"):
            print(f"sim {line.strip()}", flush=True)
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("the simulator did not become ready")


def at_network_scale(checks: list[CheckSpec], sites: int, network_sites: int) -> tuple[list[CheckSpec], float]:
    """The checks at their own intervals, shortened so `sites` sites poll as often as `network_sites` do."""
    scale = sites / network_sites
    return [dataclasses.replace(c, interval=c.interval * scale, retry_interval=c.retry_interval * scale)
            for c in checks], scale


def kind_of(check: CheckSpec) -> str:
    """The probe kind and mode a per-kind phase groups checks by."""
    mode = str(check.params.get("mode", "get"))
    if check.probe == "snmp":
        return "snmp get/rate" if mode in ("get", "rate") else f"snmp {mode}"
    if check.probe == "oaipmh":
        return f"oaipmh {mode}"
    return check.probe


def paced(checks: list[CheckSpec], per_minute: float) -> list[CheckSpec]:
    """The checks with one common interval so that together they run `per_minute` polls a minute."""
    interval = len(checks) * 60.0 / per_minute
    return [dataclasses.replace(c, interval=interval, retry_interval=interval) for c in checks]


async def run_engine(name: str, inventory: Inventory, checks: list[CheckSpec], seconds: float, warmup: float,
                     concurrency: int, per_site: int) -> Phase:
    """Run the engine on `checks`; measure CPU and completed polls after a warm-up."""
    # each check's first poll falls anywhere in its own interval, as in a collector that has run a while
    engine = Engine(inventory, checks, concurrency=concurrency, per_site_concurrency=per_site,
                    first_spread=max((c.interval for c in checks), default=1.0), seed=1)
    failures = {"n": 0}
    snmp_ids = {c.id for c in checks if c.probe == "snmp"}
    snmp_done = {"n": 0, "measuring": 0}

    reasons: Counter[str] = Counter()
    latencies: list[float] = []

    def count(event: object) -> None:
        if isinstance(event, Sample):
            if snmp_done["measuring"] and event.check_id in snmp_ids:
                snmp_done["n"] += 1
            if event.latency is not None:
                latencies.append(event.latency)
            if event.status != CheckStatus.OK:
                failures["n"] += 1
                reasons[re.sub(r"[0-9.]+", "N", event.reason)[:60]] += 1

    engine.subscribe(count)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(warmup)
    done0, cpu0, t0, fail0 = engine.health().completed, time.process_time(), time.monotonic(), failures["n"]
    sim0, sent0 = sim_cpu(), SNMP_SENT[0]
    snmp_done["measuring"] = 1
    await asyncio.sleep(seconds)
    health = engine.health()
    phase = Phase(name, health.completed - done0, time.monotonic() - t0, time.process_time() - cpu0, health,
                  failures["n"] - fail0, sim_cpu() - sim0, snmp_checks=snmp_done["n"],
                  snmp_requests=SNMP_SENT[0] - sent0, load=psutil.getloadavg()[0])
    snmp_done["measuring"] = 0
    engine.stop()
    await task
    if latencies:
        latencies.sort()
        phase.note = (f"probe latency p50 {latencies[len(latencies) // 2] * 1000:.0f} ms "
                      f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms")
    if reasons:
        phase.note += "; not OK: " + "; ".join(f"{n}x {r}" for r, n in reasons.most_common(3))
    return phase


async def bare_loop(name: str, total: int, concurrency: int, per_minute: float,
                    request: Callable[[int], Awaitable[bool]]) -> Phase:
    """Start `request(i)` `total` times at `per_minute`, at most `concurrency` at once; measure CPU.

    Paced like the engine so that the simulator sees the same load and both sides do the same work.
    """
    slots = asyncio.Semaphore(concurrency)
    failures = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        nonlocal failures
        try:
            if not await request(i):
                failures += 1
        finally:
            slots.release()

    loop = asyncio.get_running_loop()
    step = 60.0 / per_minute
    cpu0, t0, sim0, sent0 = time.process_time(), loop.time(), sim_cpu(), SNMP_SENT[0]
    for i in range(total):
        delay = t0 + i * step - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    sent = SNMP_SENT[0] - sent0
    return Phase(name, total, loop.time() - t0, time.process_time() - cpu0, failures=failures,
                 sim_cpu=sim_cpu() - sim0, snmp_checks=total if sent else 0, snmp_requests=sent,
                 load=psutil.getloadavg()[0])


async def warm_up(urls: list[tuple[str, str]], concurrency: int, request: Callable[[int], Awaitable[bool]]) -> None:
    """One untimed request per URL, so a bare loop, like the engine after its warm-up, starts with its
    clients, TLS contexts and keep-alive connections in place."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await request(i)

    await asyncio.gather(*(one(i) for i in range(len(urls))))


def ssl_contexts(checks: list[CheckSpec], options: list[HttpOptions], shared: bool) -> Callable[[str], ssl.SSLContext]:
    """A TLS context per site trusting its CA file (or one trusting every CA file), built on first use."""
    cas = {c.site_id: o.ca_file for c, o in zip(checks, options, strict=True) if o.ca_file}
    built: dict[str, ssl.SSLContext] = {}

    def context(site: str) -> ssl.SSLContext:
        key = "*" if shared else site
        if key not in built:
            ctx = ssl.create_default_context()
            for ca in sorted(set(cas.values())) if shared else [cas[site]] if site in cas else []:
                ctx.load_verify_locations(cafile=ca)
            built[key] = ctx
        return built[key]

    return context


async def bare_http(name: str, checks: list[CheckSpec], total: int, concurrency: int, per_minute: float,
                    shared: bool) -> Phase:
    """Plain httpx GETs of the checks' URLs (one client per site, or one shared client)."""
    options = [HttpOptions.from_check(c) for c in checks]
    urls = [(c.site_id, o.url) for c, o in zip(checks, options, strict=True)]
    context = ssl_contexts(checks, options, shared)
    limits = httpx.Limits(max_connections=concurrency if shared else 8)
    clients: dict[str, httpx.AsyncClient] = {}

    def client(site: str) -> httpx.AsyncClient:
        key = "*" if shared else site
        if key not in clients:
            clients[key] = httpx.AsyncClient(limits=limits, trust_env=False, timeout=10, verify=context(site))
        return clients[key]

    async def get(i: int) -> bool:
        site, url = urls[i % len(urls)]
        try:
            reply = await client(site).get(url)
            return reply.status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await warm_up(urls, concurrency, get)
        return await bare_loop(name, total, concurrency, per_minute, get)
    finally:
        for c in clients.values():
            await c.aclose()


async def bare_transport(name: str, checks: list[CheckSpec], total: int, concurrency: int,
                         per_minute: float) -> Phase:
    """Plain GETs on httpx's transport layer as the probe uses it: an httpcore pool per site on the
    probe's asyncio network backend, `pool.request()` per GET (body read whole), nothing else."""
    options = [HttpOptions.from_check(c) for c in checks]
    urls = [(c.site_id, o.url) for c, o in zip(checks, options, strict=True)]
    context = ssl_contexts(checks, options, False)
    backend = AsyncioBackend()
    pools: dict[str, httpcore.AsyncConnectionPool] = {}

    def pool(site: str) -> httpcore.AsyncConnectionPool:
        if site not in pools:
            pools[site] = httpcore.AsyncConnectionPool(ssl_context=context(site), max_connections=8,
                                                       network_backend=backend)
        return pools[site]

    async def get(i: int) -> bool:
        site, url = urls[i % len(urls)]
        try:
            reply = await pool(site).request("GET", url)
            return reply.status == 200
        except httpcore.NetworkError:
            return False

    try:
        await warm_up(urls, concurrency, get)
        return await bare_loop(name, total, concurrency, per_minute, get)
    finally:
        for p in pools.values():
            await p.aclose()


async def bare_snmp(name: str, checks: list[CheckSpec], total: int, concurrency: int, per_minute: float) -> Phase:
    """Plain pysnmp GETs of sysUpTime from the same agents with the same credentials."""
    from pysnmp.hlapi.v3arch.asyncio import (
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
    )

    engine = SnmpEngine()
    targets: dict[str, Any] = {}
    auths = [snmp_probe._credentials(c).build() for c in checks]
    for c in checks:
        if c.address not in targets:
            host, _, port = c.address.rpartition(":")
            targets[c.address] = await UdpTransportTarget.create((host, int(port)), timeout=5, retries=0)

    async def get(i: int) -> bool:
        c = checks[i % len(checks)]
        err, status, _, _ = await get_cmd(engine, auths[i % len(checks)], targets[c.address], ContextData(),
                                          ObjectType(ObjectIdentity(SYS_UPTIME)), lookupMib=False)
        return not err and not status

    try:
        return await bare_loop(name, total, concurrency, per_minute, get)
    finally:
        engine.close_dispatcher()


def use_shared_http_client(on: bool, concurrency: int) -> None:
    """Make the http probe use one client for every site (benchmark only) or restore per-site clients."""
    if on:
        _httpclient.MAX_IN_FLIGHT = concurrency
        http.fetch = lambda _site, *a, **kw: _httpclient.fetch("*", *a, **kw)
    else:
        _httpclient.MAX_IN_FLIGHT = 8
        http.fetch = _httpclient.fetch


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PHASES = ("http", "snmp", "engine", "all", "kinds", "mix")


async def main_async(args: argparse.Namespace, inventory: Inventory) -> list[tuple[str, str]]:
    remote = [c for c in inventory.checks if c.probe != "host"]
    http_checks = [c for c in remote if c.probe == "http" and not c.params.get("tls_expiry")]
    snmp_checks = [c for c in remote if c.probe == "snmp" and c.params.get("mode", "get") in ("get", "rate")]
    per_site = int(inventory.settings.get("collector", {}).get("per_site_concurrency") or 4)
    conc = args.concurrency
    wanted = set(args.phases.split(","))
    out: list[tuple[str, str]] = []
    phases: dict[str, Phase] = {}
    run: Callable[..., Awaitable[Phase]]

    print(f"{len(inventory.sites)} sites, {len(remote)} remote checks "
          f"({len(http_checks)} http, {len(snmp_checks)} snmp get/rate)", flush=True)
    if "http" in wanted:
        for shared in (False, True):
            label = "shared client" if shared else "client per site"
            use_shared_http_client(shared, conc)
            run = run_engine
            phases[f"http engine {label}"] = p = await run(
                f"http engine {label}", inventory, paced(http_checks, args.rate), args.seconds, args.warmup, conc,
                per_site)
            phases[f"http bare {label}"] = await bare_http(f"http bare {label}", http_checks,
                                                           max(p.checks, 2000), conc, args.rate, shared)
            if not shared:
                phases["http bare transport"] = await bare_transport(
                    "http bare transport", http_checks, max(p.checks, 2000), conc, args.rate)
        use_shared_http_client(False, conc)
    if "snmp" in wanted:
        phases["snmp engine"] = p = await run_engine("snmp engine", inventory, paced(snmp_checks, args.rate),
                                                     args.seconds, args.warmup, conc, per_site)
        phases["snmp bare"] = await bare_snmp("snmp bare", snmp_checks, max(p.checks, 2000), conc, args.rate)
    if "engine" in wanted:
        probes._cache["noop"] = noop_probe
        phases["engine alone (no-op probe)"] = await run_engine(
            "engine alone (no-op probe)", inventory,
            paced([dataclasses.replace(c, probe="noop") for c in remote], args.rate), args.seconds, args.warmup,
            conc, per_site)
    if "all" in wanted:
        phases["all remote checks"] = await run_engine("all remote checks", inventory, paced(remote, args.rate),
                                                       args.seconds, args.warmup, conc, per_site)
    if "kinds" in wanted:
        by_kind: dict[str, list[CheckSpec]] = {}
        for c in remote:
            by_kind.setdefault(kind_of(c), []).append(c)
        for kind in ("oaipmh identify", "oaipmh lag", "snmp get/rate", "snmp walk", "snmp walk_rate"):
            if by_kind.get(kind):
                snmp_probe.forget_index_cache()
                phases[f"{kind} alone"] = await run_engine(
                    f"{kind} alone", inventory, paced(by_kind[kind], args.kind_rate), args.seconds, args.warmup,
                    conc, per_site)
    if "mix" in wanted:
        mix, scale = at_network_scale(remote, len(inventory.sites), args.network_sites)
        per_minute = sum(60.0 / c.interval for c in mix)
        name = f"realistic mix ({args.network_sites} sites)"
        print(f"{name}: {per_minute:.0f} checks/min due at the templates' intervals", flush=True)
        snmp_probe.forget_index_cache()
        saved_age = snmp_probe.INDEX_MAX_AGE
        snmp_probe.INDEX_MAX_AGE = saved_age * scale
        try:
            phases[name] = await run_engine(name, inventory, mix, args.seconds, args.warmup, conc, per_site)
        finally:
            snmp_probe.INDEX_MAX_AGE = saved_age
    for name, phase in phases.items():
        h = phase.health
        lag = f"lag p50 {h.lag_p50 * 1000:.0f} ms p99 {h.lag_p99 * 1000:.0f} ms, " if h else ""
        line = (f"{phase.rate * 60:8.0f} checks/min, {phase.cpu_per_1000:6.2f} CPU s/1000 checks, "
                f"{phase.cpu / phase.wall * 100:5.1f} % of a core, {lag}{phase.failures} not OK")
        if h:
            line += f", {h.timeouts} engine timeouts"
        line += f"; sim {phase.sim_cpu / phase.wall * 100:.0f} % of a core; load {phase.load:.2f}"
        if phase.snmp_checks:
            line += (f"; SNMP {phase.snmp_requests / phase.snmp_checks:.2f} requests/check "
                     f"({phase.snmp_requests} for {phase.snmp_checks})")
        print(f"{name:<32} {line}", flush=True)
        if phase.note:
            print(f"{'':<32} {phase.note}", flush=True)
        out.append((name, line))
    summary: list[tuple[str, str]] = []
    for label in ("client per site", "shared client"):
        if f"http engine {label}" in phases:
            ratio = phases[f"http engine {label}"].cpu_per_1000 / phases[f"http bare {label}"].cpu_per_1000
            summary.append((f"http engine/bare ({label})", f"{ratio:.2f}x"))
    if "http bare transport" in phases:
        ratio = phases["http engine client per site"].cpu_per_1000 / phases["http bare transport"].cpu_per_1000
        summary.append(("http engine/bare transport", f"{ratio:.2f}x"))
    if "snmp engine" in phases:
        ratio = phases["snmp engine"].cpu_per_1000 / phases["snmp bare"].cpu_per_1000
        summary.append(("snmp engine/bare", f"{ratio:.2f}x"))
    summary.append(("peak RSS", f"{rss_mb():.0f} MB"))
    summary.append(("load average (1, 5, 15 min)", " ".join(f"{x:.2f}" for x in psutil.getloadavg())))
    for name, value in summary:
        print(f"{name:<32} {value}")
    return out + summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20000, help="target checks per minute")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated phases to run (default all: {','.join(PHASES)})")
    parser.add_argument("--kind-rate", type=float, default=3000, help="checks per minute of each per-kind phase")
    parser.add_argument("--network-sites", type=int, default=2000,
                        help="network size the realistic-mix phase reproduces (default 2000)")
    args = parser.parse_args()
    count_snmp_requests()
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))} (choose from {', '.join(PHASES)})")
    with tempfile.TemporaryDirectory(prefix="bibnet-bench-") as tmp:
        global SIM
        sim = start_sim(args.sites, Path(tmp) / "config")
        SIM = psutil.Process(sim.pid)
        try:
            inventory = load_inventory(Path(tmp) / "config")
            asyncio.run(main_async(args, inventory))
        finally:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(10)
            except subprocess.TimeoutExpired:
                sim.kill()


if __name__ == "__main__":
    main()
