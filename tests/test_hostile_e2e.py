"""A real collector against every hostile device at once (`bibnet-ops collect` and `bibnet-ops sim`).

The simulator serves the demo network's first 17 sites with `config/scenarios/hostile.toml`: one
server that hangs, trickles, floods an endless body, lies about its Content-Length, is not HTTP, sends
20,000 headers, closes kept-alive connections, or never ends its OAI-PMH list; one SNMP agent that is
silent, sends garbage, answers with a wrong request id, or with a 60 KB value; a counter about to wrap
and a rebooted scanner. `collect --once --json` polls every check at the same time and prints each
state change as it happens; the test stamps each line as it arrives:

- each check ended within its own timeout (its first state change arrives at most its timeout, plus
  the collector's start-up, after the collector was started);
- the other sites' checks were not delayed: none of them failed (a check held up past its timeout
  would be CRITICAL "no answer within ...");
- the collector's peak resident memory stayed under `RSS_BOUND`;
- every failure reason is the specific one docs/hostile.md promises a technician.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bibnet_ops.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "config" / "scenarios" / "hostile.toml"
RSS_BOUND = 160 * 1024 * 1024
"""Peak RSS allowed to the collector. Measured on the 2-core machine: 76 MiB against the same 17 sites
healthy, 96 MiB hostile (the endless bodies are read up to `max_body`, 1 MiB, 4 MiB for OAI-PMH, and at
most 256 KiB wait unread per connection); what is left is headroom, not room for a leak to grow into."""
ALLOWANCE = 5.0  # seconds: the collector's start-up, then 186 checks at once on a loaded 2-core machine

HOSTILE_HTTP = {
    "bplp-02": r"no answer within {timeout} s from 127\.0\.0\.1:\d+",
    "bplp-03": r"reply from 127\.0\.0\.1:\d+ incomplete after {timeout} s: only \d+ bytes arrived "
               r"\(the device sends too slowly\)",
    "bplp-06": r"(GET /cgi-bin/koha/opac-main\.pl: body lacks a catalogue search form "
               r"\(only the first 1048576 bytes were read\)"
               r"|JSON body larger than max_body, cannot judge it \(only the first 1048576 bytes were read\)"
               r"|OAI-PMH reply larger than max_body \(4194304 bytes\), not parsed)",
    "bplp-09": r"127\.0\.0\.1:\d+ closed the connection mid-reply: (\d+) of the (\d+) body bytes it announced",
    "bplp-10": r"127\.0\.0\.1:\d+ does not speak HTTP: it answered 'SSH-2\.0-OpenSSH_9\.2p1 Debian-2\+deb12u3'",
    "bplp-15": r"reply header from 127\.0\.0\.1:\d+ too large \(over 100 KiB\), refused",
}
# SNMP reasons come from the snmp probe (engineer h16's work, merged)
HOSTILE_SNMP = {
    "bplp-17/scanner-1": r"no SNMP answer from 127\.0\.0\.1:\d+ within {timeout} s "
                         r"\(agent down or wrong community\?\)",
    "bplp-35/scanner-1": r"no valid SNMP answer from 127\.0\.0\.1:\d+ within {timeout} s "
                         r"\(\d+ unreadable repl(y|ies)\)",
    "bplp-44/scanner-1": r"no valid SNMP answer from 127\.0\.0\.1:\d+ within {timeout} s "
                         r"\(\d+ repl(y|ies) to no request of ours: wrong request id \d+\)",
    "bplp-26/router": r"no valid SNMP answer from 127\.0\.0\.1:\d+ within {timeout} s "
                      r"\(\d+ repl(y|ies) of up to 60,\d\d\d bytes long, over our 16,384-byte limit\)",
}
# hostile, yet every check must come out OK: kept-alive races resent, endless lists cut at max_requests,
# a counter about to wrap (bplp-16's reboot comes three minutes in, after this test)
HOSTILE_BUT_OK = ("bplp-16", "bplp-42")


@pytest.fixture
def hostile_network(tmp_path: Path) -> Iterator[Path]:
    """`bibnet-ops sim` serving the hostile scenario; yields the config directory it wrote."""
    cfg = tmp_path / "cfg"
    cmd = [sys.executable, "-m", "bibnet_ops", "sim", "--sites", "17", "--seed", "3",
           "--scenario", str(SCENARIO), "--write-config", str(cfg)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and not line.startswith("ready:"):
            line = proc.stdout.readline()
            if not line:
                break
        assert line.startswith("ready: 17 sites"), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield cfg
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


class PeakRss:
    """Follows a process's peak resident memory (VmHWM) from /proc while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while True:
            try:
                text = status.read_text()
            except OSError:
                return
            match = re.search(r"VmHWM:\s+(\d+) kB", text)
            if match is None:  # a zombie: the process has exited
                return
            self.peak = max(self.peak, int(match.group(1)) * 1024)
            time.sleep(0.05)

    def join(self) -> None:
        self._thread.join(timeout=5)


def _device(check_id: str) -> str:
    return check_id.rsplit("/", 1)[0]


def _matches(table: dict[str, str], check_id: str) -> str | None:
    return table.get(_device(check_id)) or table.get(check_id.split("/", 1)[0])


def _seconds(timeout: float) -> str:
    return re.escape(f"{timeout:.1f}")


class Lines:
    """Reads a process's stdout in a thread, stamping each line with its arrival (monotonic clock)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self.lines.append((time.monotonic(), line))

    def join(self) -> None:
        self._thread.join(timeout=10)
        self._stdout.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to follow the collector's memory")
def test_collector_against_every_hostile_device_at_once(hostile_network: Path) -> None:
    cfg = hostile_network
    inventory = load_inventory(cfg)
    checks = {spec.id: spec for site in inventory.sites for spec in inventory.checks_of(site)}
    spawned = time.monotonic()
    collector = subprocess.Popen(
        [sys.executable, "-m", "bibnet_ops", "--config", str(cfg), "collect", "--once", "--json", "--no-store"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    rss = PeakRss(collector.pid)
    lines = Lines(collector)
    try:
        # --once waits for every failing check to turn HARD (retries spaced by each retry_interval): ~70 s
        collector.wait(timeout=240)
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.wait()
    lines.join()
    rss.join()
    assert collector.stderr is not None
    err = collector.stderr.read()
    collector.stderr.close()

    # the run: every check polled, no crash, the worst status reported
    assert "Traceback" not in err, err[-3000:]
    events = [(at - spawned, json.loads(text)) for at, text in lines.lines if text.strip()]
    summary = events[-1][1]
    assert summary["event"] == "summary" and summary["checks"] == len(checks), events[-3:]
    assert collector.returncode == 2  # CRITICAL: the worst status found
    print(f"collector: {events[-1][0]:.0f} s, peak RSS {rss.peak / 2**20:.0f} MiB")
    assert 0 < rss.peak < RSS_BOUND, f"collector peak RSS {rss.peak / 2**20:.0f} MiB"

    first: dict[str, tuple[float, str, str]] = {}
    for after, event in events:
        if event.get("event") == "state":
            first.setdefault(event["check"], (after, event["new"], event["reason"]))
    problems: list[str] = []
    for check_id, spec in sorted(checks.items()):
        state = first.get(check_id)
        # each check's first result came within its own timeout (plus the collector's start-up)
        if state is not None and state[0] > spec.timeout + ALLOWANCE:
            problems.append(f"{check_id}: first result {state[0]:.1f} s after start, timeout {spec.timeout} s")
        status, reason = (state[1], state[2]) if state is not None else ("OK", "")
        http_pattern = _matches(HOSTILE_HTTP, check_id)
        snmp_pattern = _matches(HOSTILE_SNMP, check_id)
        pattern = http_pattern if spec.probe in ("http", "oaipmh") else snmp_pattern
        if pattern is not None:
            if status not in ("CRITICAL", "UNKNOWN") or not re.fullmatch(
                    pattern.format(timeout=_seconds(spec.timeout)), reason):
                problems.append(f"{check_id}: {status} {reason!r} does not match {pattern!r}")
        elif spec.probe != "host" and status in ("CRITICAL", "UNKNOWN"):
            # every other check answered in time: no hostile neighbour held it up or broke it (the
            # collector's own host checks are left out: eight engineers' tests keep this machine busy)
            where = "hostile but should pass" if check_id.startswith(HOSTILE_BUT_OK) else "healthy site"
            problems.append(f"{check_id} ({where}): {status} {reason!r}")
    assert not problems, "\n".join(problems)

    # a short body names both what arrived and what was announced, and they differ by the lie (4 KiB)
    lied = [re.search(r"(\d+) of the (\d+) body bytes", reason)
            for check_id, (_, _, reason) in first.items() if check_id.startswith("bplp-09/")]
    assert lied and all(m is not None and int(m.group(2)) - int(m.group(1)) == 4096 for m in lied)
