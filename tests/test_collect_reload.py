"""Reload without restart, against a real `bibnet-ops collect` process receiving SIGHUP.

The collector polls real loopback HTTP servers and alerts a real webhook receiver; the test edits the
configuration directory, runs `bibnet-ops reload`, and checks what a technician would: the new site is
polled, the removed one no longer, the changed check follows its new interval, and the site that was
DOWN stays DOWN with its one alert (no recovery, no repeat) until it really recovers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from loopback_http import LoopbackServer
from test_alert_support import WebhookSink, webhook_sink
from test_engine_support import FakeDevice

from bibnet_ops.store import SqliteStore

__all__ = ["webhook_sink"]

TEMPLATE = """\
[template]
name = "web"
kind = "catalogue"
description = "A web front end"

[[checks]]
name = "home"
probe = "http"
description = "The home page answers"
interval = 0.2
timeout = 0.5
retries = 2
retry_interval = 0.1
metric = "latency"
unit = "s"
[checks.params]
path = "/"
"""

SITE = """\
id = "{id}"
name_fr = "Bibliothèque {id}"
wilaya = 16
region = "centre"
kind = "library"
lat = 36.7
lon = 3.0
{parent}
[[devices]]
id = "web"
template = "web"
address = "{url}"
{extra}
"""

NETWORK = """\
[network]
name = "test"
timezone = "Africa/Algiers"
templates = "../checks"

[collector]
concurrency = 10
per_site_concurrency = 2
pid_file = "../run/collect.pid"

[alerts]
enabled = true
settle = "0.3s"
settle_max = "5s"

[alerts.receivers.chat]
kind = "webhook"
url = "{url}"

[[alerts.rules]]
receivers = ["chat"]
"""


class Lab:
    """A config directory of one web device per site, each a real loopback server."""

    def __init__(self, tmp: Path, sink: WebhookSink) -> None:
        self.tmp = tmp
        self.root = tmp / "config"
        self.devices: dict[str, FakeDevice] = {}
        (self.root / "sites").mkdir(parents=True)
        (tmp / "checks").mkdir()
        (tmp / "checks" / "web.toml").write_text(TEMPLATE, encoding="utf-8")
        (self.root / "network.toml").write_text(NETWORK.format(url=sink.url), encoding="utf-8")

    async def add(self, site: str, parent: str | None = None, extra: str = "") -> None:
        fake = self.devices.get(site)
        if fake is None:
            fake = self.devices[site] = FakeDevice()
            fake.server = await LoopbackServer(fake.handle).start()
        self.write(site, parent, extra)

    def write(self, site: str, parent: str | None = None, extra: str = "") -> None:
        text = SITE.format(id=site, url=self.devices[site].url, parent=f'parent = "{parent}"' if parent else "",
                           extra=extra)
        (self.root / "sites" / f"{site}.toml").write_text(text, encoding="utf-8")

    async def close(self) -> None:
        for fake in self.devices.values():
            if fake.server is not None:
                await fake.server.stop()


@asynccontextmanager
async def lab(tmp: Path, sink: WebhookSink) -> AsyncIterator[Lab]:
    made = Lab(tmp, sink)
    try:
        yield made
    finally:
        await made.close()


async def bibnet(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bibnet_ops", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Lines:
    """Every stdout line of a process, read in the background."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode())

    async def wait_for(self, text: str, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.lines):
                await asyncio.sleep(0.05)


async def until(predicate: object, timeout: float = 15.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _oran_posts(sink: WebhookSink) -> list[tuple[str, str]]:
    return [k for k in sink.kinds() if "oran" in k[1]]


async def test_reload_applies_changes_and_keeps_the_open_outage(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    async with lab(tmp_path, webhook_sink) as net:
        for site, parent in (("alger", None), ("blida", "alger"), ("oran", None)):
            await net.add(site, parent)
        config = str(net.root)
        db = tmp_path / "history.db"
        pid_file = tmp_path / "run" / "collect.pid"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bibnet_ops", "collect", "--config", config, "--store", str(db),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        out = Lines(proc.stdout)
        err = Lines(proc.stderr)
        try:
            await until(pid_file.exists)
            assert int(pid_file.read_text()) == proc.pid
            net.devices["oran"].mode = "fail"
            await out.wait_for("SITE oran  UP -> DOWN")
            await until(lambda: ("problem", "site:oran") in _oran_posts(webhook_sink))
            await asyncio.sleep(0.8)  # nothing more may follow for oran
            posts_before = _oran_posts(webhook_sink)
            assert posts_before == [("problem", "site:oran")]

            # the new configuration: tlemcen added, blida removed, alger's check every second instead of 0.2 s
            await net.add("tlemcen")
            (net.root / "sites" / "blida.toml").unlink()
            net.write("alger", extra="[devices.overrides.home]\ninterval = 1.0\n")
            lines_before = len(out.lines)
            code, stdout, stderr = await bibnet("reload", "--config", config)
            assert code == 0, stderr
            assert f"reload sent to collector pid {proc.pid}" in stdout
            assert "reloaded: 1 check added, 1 removed, 1 changed, 1 unchanged; 1 site added, 1 site removed" \
                in stdout
            hits = {site: dev.hits for site, dev in net.devices.items()}
            await asyncio.sleep(3.0)
            assert net.devices["tlemcen"].hits >= 5, "the added site is polled"
            assert net.devices["blida"].hits <= hits["blida"] + 1, "the removed site is no longer polled"
            assert 1 <= net.devices["alger"].hits - hits["alger"] <= 4, "alger polls every second now"
            assert net.devices["oran"].hits - hits["oran"] >= 10, "the unchanged check polls as before"
            after = out.lines[lines_before:]
            assert not [line for line in after if "oran" in line], after  # no false recovery, no new state
            assert _oran_posts(webhook_sink) == posts_before  # no repeated alert, no recovery
            assert any("reloaded" in line and "1 site added" in line for line in err.lines)

            # the outage goes on across the reload and ends once, with one recovery
            net.devices["oran"].mode = "ok"
            await out.wait_for("SITE oran  DOWN -> UP")
            await until(lambda: ("recovery", "site:oran") in _oran_posts(webhook_sink))
            assert _oran_posts(webhook_sink) == [("problem", "site:oran"), ("recovery", "site:oran")]

            # a broken configuration is refused with file:line, and the running one stays
            (net.root / "sites" / "tlemcen.toml").write_text(
                SITE.format(id="tlemcen", url=net.devices["tlemcen"].url, parent="", extra="")
                .replace("lat = 36.7", 'lat = "north"'), encoding="utf-8")
            code, stdout, stderr = await bibnet("reload", "--config", config)
            assert code == 2
            assert "tlemcen.toml:6: [lat]" in stderr, stderr
            os.kill(proc.pid, signal.SIGHUP)  # the collector refuses it on its own as well
            await until(lambda: any("reload refused" in line and "tlemcen.toml:6: [lat]" in line
                                    for line in err.lines))
            polled = net.devices["tlemcen"].hits
            await asyncio.sleep(1.0)
            assert net.devices["tlemcen"].hits > polled, "the running configuration stays in force"
            assert proc.returncode is None
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await asyncio.gather(out.task, err.task)
        assert proc.returncode == 0, "".join(err.lines)
        assert not pid_file.exists()
        assert not [line for line in err.lines if "Traceback" in line]
        store = SqliteStore(db, readonly=True)
        try:
            hard = [t for t in store.transitions(0, time.time() + 1, ["oran/web/home"]) if t.hard]
        finally:
            store.close()
        assert [(t.old, t.new) for t in hard] == [("OK", "CRITICAL"), ("CRITICAL", "OK")]


async def test_reload_without_a_running_collector_says_so(tmp_path: Path, webhook_sink: WebhookSink) -> None:
    async with lab(tmp_path, webhook_sink) as net:
        await net.add("alger")
        code, _, stderr = await bibnet("reload", "--config", str(net.root))
        assert code == 1
        assert "no running collector" in stderr
        code, _, stderr = await bibnet("reload", "--config", str(net.root), "--pid", str(os.getpid()))
        assert code == 1  # this test process is no collector: it gets no SIGHUP
        assert "is not a running bibnet-ops collector" in stderr


async def test_removing_a_down_site_closes_its_alert_without_a_recovery(tmp_path: Path,
                                                                        webhook_sink: WebhookSink) -> None:
    async with lab(tmp_path, webhook_sink) as net:
        for site in ("alger", "oran"):
            await net.add(site)
        db = tmp_path / "history.db"
        pid_file = tmp_path / "run" / "collect.pid"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bibnet_ops", "collect", "--config", str(net.root), "--store", str(db),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        try:
            await until(pid_file.exists)
            net.devices["oran"].mode = "fail"
            await out.wait_for("SITE oran  UP -> DOWN")
            await until(lambda: ("problem", "site:oran") in _oran_posts(webhook_sink))
            (net.root / "sites" / "oran.toml").unlink()
            os.kill(proc.pid, signal.SIGHUP)  # the signal itself, as `kill -HUP` sends it
            await until(lambda: any("reloaded" in line and "1 site removed" in line for line in err.lines))
            hits = net.devices["oran"].hits
            await asyncio.sleep(1.5)
            assert net.devices["oran"].hits <= hits + 1
            assert _oran_posts(webhook_sink) == [("problem", "site:oran")], "a removal is not a recovery"
            await until(lambda: any("closed without notification" in line and "site:oran" in line
                                    for line in err.lines))
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)
            await asyncio.gather(out.task, err.task)
        assert proc.returncode == 0
        from bibnet_ops.alerts import AlertLog

        alert_log = AlertLog(db, readonly=True)
        try:
            records = [a for a in alert_log.alerts() if a.key == "site:oran"]
        finally:
            alert_log.close()
        assert len(records) == 1 and records[0].closed_at is not None
