"""Reports end to end: a scripted outage on the simulator, `bibnet-ops collect`, then `bibnet-ops report`.

Everything runs as the user runs it: the simulator and the collector are real subprocesses on loopback,
the history is a real SQLite file, and the report is read back in JSON, CSV and HTML. Only the check
timings of the written inventory are shortened (see `shorten_checks`), so the whole run takes ~25 s.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from bibnet_ops.inventory import load_inventory
from bibnet_ops.store import SqliteStore

ROOT = Path(__file__).resolve().parents[1]

TARGET = "bplp-03"  # a library behind the national library, with no site behind it
OUTAGE_START = 8.0  # seconds after the simulator started: the collector has seen every site UP by then
OUTAGE_SECONDS = 9.0
# Check timings written into every device of the simulated inventory.
INTERVAL = 1.0
RETRY_INTERVAL = 0.5
RETRIES = 2
RECOVER_AFTER = 1
TIMEOUT = 1.0  # an SNMP agent falls silent during an outage: each poll of it lasts the timeout
# The collector sees the site DOWN once its router's checks are HARD CRITICAL: at the first poll after
# the outage starts (up to one interval later; a silent agent's poll ends a timeout later), then
# retries - 1 more failures at retry_interval. It sees it up again at the first poll after the outage
# ends (up to one interval, plus a timeout for a poll still waiting on the silent agent) and
# recover_after - 1 successes at retry_interval. The measured outage is the scripted one with both ends
# shifted later by those delays, so it differs from it by at most the larger delay: within one check
# interval + timeout + retries x retry_interval.
TOLERANCE = INTERVAL + TIMEOUT + RETRIES * RETRY_INTERVAL

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1"}


def shorten_checks(config: Path, sites: set[str] | None = None, **timings: float | int) -> None:
    """Give every check of every device of `sites` (default all) these timings, as device overrides.

    Existing override tables (e.g. `enabled = true`) are kept; the checks come from the templates.
    """
    inventory = load_inventory(config)
    for path in sorted((config / "sites").glob("*.toml")):
        if sites is not None and path.stem not in sites:
            continue
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        # the machine running the test is not what it watches: its CPU load would only add noise
        data["devices"] = [d for d in data.get("devices", []) if inventory.templates[d["template"]].kind != "collector"]
        for device in data["devices"]:
            template = inventory.templates[device["template"]]
            overrides = device.setdefault("overrides", {})
            for check in template.checks:
                overrides.setdefault(check.name, {}).update(timings)
        path.write_text(tomli_w.dumps(data), encoding="utf-8")


def widen_site_concurrency(config: Path, per_site: int) -> None:
    """Let every check of a site be polled at once (silent agents would otherwise queue the others)."""
    path = config / "network.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.setdefault("collector", {})["per_site_concurrency"] = per_site
    path.write_text(tomli_w.dumps(data), encoding="utf-8")


@dataclass
class Lines:
    """A subprocess's stdout lines, read by a thread, with the monotonic time each arrived."""

    proc: subprocess.Popen[str]
    lines: list[tuple[float, str]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    def start(self) -> Lines:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, match: Callable[[str], bool], timeout: float) -> float:
        """The arrival time of the first line matching; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, line in self.lines:
                    if match(line):
                        return at
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    text = "\n".join(line for _, line in self.lines[-30:])
                    pytest.fail(f"no expected line within {timeout} s (exit {self.proc.poll()}):\n{text}")
                self.cond.wait(min(left, 0.2))


@contextmanager
def running(cmd: list[str], stderr: Path) -> Iterator[Lines]:
    """A bibnet-ops subprocess (stderr into a file), stopped with SIGTERM (killed if it lingers) at the end."""
    with stderr.open("w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bibnet_ops", *cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
            env=ENV,
        )
    lines = Lines(proc)
    try:
        yield lines.start()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(timeout=10)
        if lines.reader is not None:
            lines.reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def site_event(site: str, new: str | None, old: str | None = None) -> Callable[[str], bool]:
    """Matches the collector's JSON line for a site status change (to `new`, from `old`, when given)."""

    def match(line: str) -> bool:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return False
        return (  # the first status of a site is not printed: it is reported as UP -> UP
            event.get("event") == "site"
            and event.get("site") == site
            and (new is None or event.get("new") == new)
            and (old is None or event.get("old") == old)
        )

    return match


def report(config: Path, store: Path, first: date, last: date, fmt: str) -> bytes:
    cmd = [sys.executable, "-m", "bibnet_ops", "--config", str(config), "report", "--from", first.isoformat(),
           "--to", last.isoformat(), "--hours", "24x7", "--store", str(store), "--format", fmt]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_scripted_outage_is_reported_with_its_duration(tmp_path: Path) -> None:
    config, db = tmp_path / "cfg", tmp_path / "cfg" / "h.db"
    scenario = tmp_path / "outage.toml"
    scenario.write_text(
        f'[scenario]\nname = "one outage"\n\n[[fault]]\nkind = "outage"\nsite = "{TARGET}"\n'
        f'start = "{OUTAGE_START}s"\nduration = "{OUTAGE_SECONDS}s"\n',
        encoding="utf-8",
    )
    sim_cmd = ["sim", "--sites", "5", "--scenario", str(scenario), "--always-open", "--seed", "3",
               "--write-config", str(config)]
    launched = time.monotonic()
    with running(sim_cmd, tmp_path / "sim.log") as sim:
        ready = sim.wait_for(lambda line: line.startswith("ready:"), timeout=30)
        # the simulator's clock starts before it prints "ready", so the outage starts at most this late
        outage_by = ready + OUTAGE_START
        assert TARGET in {p.stem for p in (config / "sites").glob("*.toml")}
        # the other sites (the target's parent among them) get relaxed timings, so a loaded machine
        # cannot fake an outage of theirs that would hide the target behind an UNREACHABLE
        others = {p.stem for p in (config / "sites").glob("*.toml")} - {TARGET}
        shorten_checks(config, others, interval=2.0, retry_interval=1.0, retries=4, recover_after=1, timeout=4.0)
        shorten_checks(config, {TARGET}, interval=INTERVAL, retry_interval=RETRY_INTERVAL, retries=RETRIES,
                       recover_after=RECOVER_AFTER, timeout=TIMEOUT)
        widen_site_concurrency(config, 32)
        zone = ZoneInfo(load_inventory(config).timezone)
        first_day = datetime.now(zone).date()
        collect_cmd = ["--config", str(config), "collect", "--json", "--store", str(db)]
        with running(collect_cmd, tmp_path / "collect.log") as collect:
            down = collect.wait_for(site_event(TARGET, "DOWN"), timeout=OUTAGE_START + 2 * TOLERANCE + 10)
            assert down <= outage_by + TOLERANCE + 2, "the outage was seen late"
            # back UP, or DEGRADED for a moment (a counter rate across the gap): both count as up
            recovered = collect.wait_for(site_event(TARGET, None, old="DOWN"), timeout=OUTAGE_SECONDS + 2 * TOLERANCE)
            time.sleep(max(0.0, recovered + 1.0 - time.monotonic()))  # some up time after the recovery
            collect.proc.send_signal(signal.SIGTERM)
            assert collect.proc.wait(timeout=10) == 0
        last_day = datetime.now(zone).date()

    # what the store kept of the site: seen UP before the outage (so the outage is whole), DOWN, up again
    store = SqliteStore(db, readonly=True)
    try:
        kept = store.site_transitions(0.0, time.time() + 60, [TARGET])
    finally:
        store.close()
    assert [t.new for t in kept[:2]] == ["UP", "DOWN"] and {t.new for t in kept[2:]} <= {"UP", "DEGRADED"}, kept
    assert kept[1].time - kept[0].time > 2.0, "the collector saw the site too late to see its outage start"

    data = json.loads(report(config, db, first_day, last_day, "json"))
    rows = {row["key"]: row for row in data["rows"]}
    assert set(rows) == {"bna", "bplp-02", "bplp-03", "bplp-06", "bplp-08"}
    outages = [o for o in data["outages"] if o["key"] == TARGET]
    assert len(outages) == 1, data["outages"]
    measured = outages[0]["charged_min"] * 60
    assert abs(measured - OUTAGE_SECONDS) <= TOLERANCE, (measured, OUTAGE_SECONDS, TOLERANCE)
    assert not outages[0]["ongoing"] and not outages[0]["started_before"]
    row = rows[TARGET]
    assert row["outages"] == 1
    assert row["down_min"] == pytest.approx(outages[0]["charged_min"])
    assert row["longest_outage_min"] == pytest.approx(outages[0]["charged_min"])
    watched = (row["up_min"] + row["down_min"]) * 60
    expected_pct = 100.0 * (watched - OUTAGE_SECONDS) / watched
    assert abs(row["availability_pct"] - expected_pct) <= 100.0 * TOLERANCE / watched, (row, expected_pct)
    for key, other in rows.items():
        if key != TARGET:
            assert other["outages"] == 0 and other["down_min"] == 0, other
            assert other["availability_pct"] == 100.0, other
    assert [o["key"] for o in data["outages"]] == [TARGET]
    assert time.monotonic() - launched < 60

    text = report(config, db, first_day, last_day, "csv")
    assert text.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel then reads the Arabic names
    table = list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"), newline="")))
    by_key = {line["key"]: line for line in table}
    assert by_key[TARGET]["name_ar"] == row["name_ar"] and "المكتبة" in row["name_ar"]
    assert by_key[TARGET]["outages"] == "1" and by_key["bna"]["outages"] == "0"
    assert table[-1]["key"] == "total"

    page = report(config, db, first_day, last_day, "html").decode("utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert html.escape(row["name_fr"]) in page and row["name_ar"] in page
    assert "Outage" in page and outages[0]["reason"].split(":")[0] in page
    # self-contained: prints offline, nothing fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"""url\(\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<link" not in page.lower() and "<script src" not in page.lower()
