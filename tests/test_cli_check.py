"""`bibnet-ops check` and `bibnet-ops collect` as real processes against loopback HTTP servers."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from loopback_http import LoopbackServer
from test_engine_support import FakeDevice

from bibnet_ops.cli.check_cmd import format_table, format_value, worst_exit
from bibnet_ops.model import CheckSpec, CheckStatus, Sample

TEMPLATE = """\
[template]
name = "web"
kind = "catalogue"
description = "A web front end"

[[checks]]
name = "home"
probe = "http"
description = "The home page answers"
interval = {interval}
timeout = 0.5
retries = 1
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
"""


@asynccontextmanager
async def config(tmp_path: Path, sites: dict[str, str | None], interval: float = 0.2
                 ) -> AsyncIterator[dict[str, FakeDevice]]:
    """A config dir in `tmp_path/config` with one web device per site, each a real loopback server."""
    devices: dict[str, FakeDevice] = {}
    root = tmp_path / "config"
    (root / "sites").mkdir(parents=True)
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "web.toml").write_text(TEMPLATE.format(interval=interval), encoding="utf-8")
    (root / "network.toml").write_text(
        '[network]\nname = "test"\ntimezone = "Africa/Algiers"\ntemplates = "../checks"\n'
        "[collector]\nconcurrency = 10\nper_site_concurrency = 2\n", encoding="utf-8")
    try:
        for site_id, parent in sites.items():
            fake = FakeDevice()
            fake.server = await LoopbackServer(fake.handle).start()
            devices[site_id] = fake
            (root / "sites" / f"{site_id}.toml").write_text(SITE.format(
                id=site_id, url=fake.url, parent=f'parent = "{parent}"' if parent else ""), encoding="utf-8")
        yield devices
    finally:
        for fake in devices.values():
            if fake.server is not None:
                await fake.server.stop()


async def bibnet(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bibnet_ops", "--config", str(tmp_path / "config"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_check_exit_status_is_the_worst_result(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None, "oran": None}) as devices:
        devices["oran"].mode = "fail"
        code, out, _ = await bibnet(tmp_path, "check", "alger")
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split() == ["CHECK", "STATUS", "VALUE", "LATENCY", "REASON"]
        assert lines[1].startswith("alger/web/home") and " OK " in lines[1]
        code, out, _ = await bibnet(tmp_path, "check")
        assert code == 2
        table, _, details = out.partition("\n\n")
        assert all(len(line) <= 80 for line in table.splitlines())
        # a problem whose reason the 80-column table cut is repeated whole below it
        for line in table.splitlines():
            if line.endswith("…"):
                ident = line.split()[0]
                assert any(d.startswith(f"{ident}: ") and not d.endswith("…") for d in details.splitlines())
        code, out, _ = await bibnet(tmp_path, "check", "--json")
        rows = [json.loads(line) for line in out.splitlines()]
        assert {r["id"]: r["status"] for r in rows} == {"alger/web/home": "OK", "oran/web/home": "CRITICAL"}
        assert "503" in rows[1]["reason"]
        code, _, err = await bibnet(tmp_path, "check", "nowhere")
        assert code == 3 and "no check matches" in err


async def test_check_reports_config_errors_and_exits_2(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None}):
        site = tmp_path / "config" / "sites" / "alger.toml"
        site.write_text(site.read_text(encoding="utf-8").replace('template = "web"', 'template = "nope"'),
                        encoding="utf-8")
        code, _, err = await bibnet(tmp_path, "check")
        assert code == 2
        assert "error:" in err and "nope" in err


def test_table_fits_80_columns_and_truncates_reasons() -> None:
    check = CheckSpec(site_id="bplp-31-annexe-es-senia", device_id="catalogue", name="opac", probe="http",
                      address="http://127.0.0.1:1", unit="s", metric="latency")
    sample = Sample(check.id, CheckStatus.CRITICAL, reason="connection refused " * 10, value=None, latency=0.0123)
    lines = format_table([check], [sample], width=80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].endswith("…")
    assert format_value(0.0341, "s") == "0.034 s" and format_value(1200.0, "pages/h") == "1200 pages/h"
    assert worst_exit([sample, Sample("x", CheckStatus.UNKNOWN)]) == 2
    assert worst_exit([Sample("x", CheckStatus.UNKNOWN), Sample("y", CheckStatus.OK)]) == 3
    assert worst_exit([]) == 3


async def test_collect_prints_changes_and_stops_within_a_second_on_sigterm(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None, "blida": "alger", "oran": None}) as devices:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bibnet_ops", "--config", str(tmp_path / "config"), "collect",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        try:
            await asyncio.sleep(1.0)  # the first round of polls
            devices["oran"].mode = "fail"
            devices["alger"].mode = "hang"  # polls in flight when the signal arrives
            devices["blida"].mode = "hang"
            lines: list[str] = []
            async with asyncio.timeout(10):
                while not any("SITE oran" in line and "DOWN" in line for line in lines):
                    lines.append((await proc.stdout.readline()).decode())
            assert any("oran/web/home  OK -> CRITICAL  HARD" in line for line in lines)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 5)
            elapsed = time.monotonic() - t0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err
    assert elapsed < 1.0, elapsed
    assert b"Traceback" not in err and b"Unclosed" not in err


async def test_collect_once_json(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None, "oran": None}, interval=60) as devices:
        devices["oran"].mode = "fail"
        t0 = time.monotonic()
        code, out, err = await bibnet(tmp_path, "collect", "--once", "--json")
        assert time.monotonic() - t0 < 10
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 2, err
    states = [r for r in rows if r["event"] == "state"]
    assert [(r["check"], r["new"], r["hard"]) for r in states] == [("oran/web/home", "CRITICAL", True)]
    assert rows[-1] == {"event": "summary", "sites": {"DOWN": 1, "UP": 1}, "checks": 2}
