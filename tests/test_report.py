"""Reports from a hand-filled store: figures per site/region/kind, and every output format."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bibnet_ops.inventory._model import CheckTemplate, Inventory, TemplateCheck
from bibnet_ops.model import CheckSpec, CheckStatus, Device, Region, Site
from bibnet_ops.reports import REPORT_SCHEMA_VERSION, build_report, percentile, render_report
from bibnet_ops.store import MaintenanceWindow, SiteTransition, SqliteStore, Transition
from bibnet_ops.store._rollup import Agg, bucket_of

ALG = ZoneInfo("Africa/Algiers")
SAT, SUN = date(2026, 1, 3), date(2026, 1, 4)


def at(day: int, hhmm: str) -> float:
    hh, mm = map(int, hhmm.split(":"))
    return datetime.combine(date(2026, 1, day), time(hh, mm), ALG).timestamp()


def make_inventory(root: Path) -> Inventory:
    templates = {
        "book-scanner": CheckTemplate(
            "book-scanner",
            "scanner",
            "",
            (
                TemplateCheck("uptime", "snmp", "", metric="uptime"),
                TemplateCheck("pages", "snmp", "", metric="pages_per_hour"),
            ),
        ),
        "oai-sync": CheckTemplate("oai-sync", "oai", "", (TemplateCheck("sync", "oaipmh", "", metric="sync_lag"),)),
    }
    sites = {
        "bplp-31": Site("bplp-31", "BPLP d'Oran", "المكتبة الرئيسية لوهران", 31, "ouest"),
        "bplp-16": Site("bplp-16", "BPLP d'Alger", "المكتبة الرئيسية للجزائر", 16, "centre"),
    }
    checks = []
    for sid in sites:
        for name, metric in (("uptime", "uptime"), ("pages", "pages_per_hour")):
            checks.append(CheckSpec(sid, "scanner-1", name, "snmp", "x", template="book-scanner", metric=metric))
        checks.append(CheckSpec(sid, "oai", "sync", "oaipmh", "x", template="oai-sync", metric="sync_lag"))
    sites = {
        k: Site(**{**v.__dict__, "devices": (Device("scanner-1", "book-scanner", "x"),)}) for k, v in sites.items()
    }
    return Inventory(
        root=root,
        name="Réseau test",
        sites=sites,
        templates=templates,
        checks=checks,
        regions={"ouest": Region("ouest", "Ouest", "الغرب"), "centre": Region("centre", "Centre", "الوسط")},
        settings={"sla": {"target": 99.0, "pages_per_day": 1500}, "collector": {}},
    )


def _agg(value: float | None = None, delta: float | None = None) -> Agg:
    agg = Agg()
    agg.add(CheckStatus.OK, 0.01, value, delta)
    return agg


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "h.db")
    run = s.start_run(at(1, "00:00"), "host", 1)
    s.heartbeat(run, at(10, "00:00"), stopped=True)
    before = at(1, "00:00")
    transitions = [
        Transition(c, before, "UNKNOWN", "OK", True)
        for c in (
            "bplp-31/scanner-1/uptime",
            "bplp-31/scanner-1/pages",
            "bplp-31/oai/sync",
            "bplp-16/scanner-1/uptime",
            "bplp-16/scanner-1/pages",
            "bplp-16/oai/sync",
        )
    ]
    transitions += [
        Transition("bplp-31/scanner-1/pages", at(3, "09:50"), "OK", "CRITICAL", False, "soft"),
        Transition("bplp-31/scanner-1/pages", at(3, "10:00"), "OK", "CRITICAL", True, "no pages"),
        Transition("bplp-31/scanner-1/pages", at(3, "11:00"), "CRITICAL", "OK", True, "pages again"),
    ]
    sites = [
        SiteTransition("bplp-31", before, "UNKNOWN", "UP"),
        SiteTransition("bplp-16", before, "UNKNOWN", "UP"),
        SiteTransition("bplp-31", at(3, "16:00"), "UP", "DOWN", "catalogue down"),
        SiteTransition("bplp-31", at(4, "10:00"), "DOWN", "UP", "recovered"),
    ]
    day = bucket_of("day", at(3, "12:00"))
    rollups = [
        ("day", "bplp-31/scanner-1/pages", day, _agg(delta=1200)),
        ("day", "bplp-31/scanner-1/pages", day + 1, _agg(delta=900)),
        ("day", "bplp-31/scanner-1/pages", day + 2, _agg(delta=5000)),  # Monday: outside the period
    ]
    hour = bucket_of("hour", at(3, "00:00"))
    rollups += [("hour", "bplp-31/oai/sync", hour + i, _agg(value=10.0 * (i + 1))) for i in range(20)]
    s.write_batch(transitions, sites, rollups)
    window = MaintenanceWindow(0, "site", "bplp-16", at(4, "09:00"), at(4, "11:00"), reason="onduleur")
    s.add_maintenance(window, "amina", at(2, "12:00"))
    return s


def test_percentile_nearest_rank() -> None:
    assert percentile([10.0 * (i + 1) for i in range(20)], 95) == 190.0
    assert percentile([5.0], 95) == 5.0 and percentile([], 95) is None


def test_site_report_figures(tmp_path: Path, store: SqliteStore) -> None:
    report = build_report(store, make_inventory(tmp_path), SAT, SUN, by="site", hours="opening", now=at(20, "00:00"))
    rows = {r.key: r for r in report.rows}
    oran, alger = rows["bplp-31"], rows["bplp-16"]
    assert oran.service_min == 2 * 510
    assert oran.down_min == 150  # Sat 16:00-17:00 and Sun 08:30-10:00: one outage across the closing time
    assert oran.outages == 1 and oran.longest_outage_min == 150 and oran.mttr_min == 150
    assert oran.availability_pct == pytest.approx(100 * 870 / 1020)
    assert oran.sla_met is False
    assert oran.pages == 2100 and oran.pages_per_day == 1050 and oran.pages_target_met is False
    assert oran.sync_lag_p95_s == 190.0 and oran.sync_lag_max_s == 200.0
    assert alger.maintenance_excluded_min == 120 and alger.up_min == 900 and alger.availability_pct == 100.0
    assert alger.pages == 0
    assert report.total is not None
    assert report.total.availability_pct == pytest.approx(100 * 1770 / 1920)
    assert report.unknown_periods == []
    (window,) = report.maintenance
    assert window.excluded_min == 120 and window.created_by == "amina" and window.reason == "onduleur"
    (outage,) = report.outages
    assert outage.reason == "catalogue down" and outage.charged_min == 150


def test_region_and_kind_reports(tmp_path: Path, store: SqliteStore) -> None:
    inv = make_inventory(tmp_path)
    by_region = build_report(store, inv, SAT, SUN, by="region", now=at(20, "00:00"))
    assert [(r.key, r.name_ar, r.down_min) for r in by_region.rows] == [("centre", "الوسط", 0), ("ouest", "الغرب", 150)]
    by_kind = build_report(store, inv, SAT, SUN, by="kind", now=at(20, "00:00"))
    scanner = next(r for r in by_kind.rows if r.key == "scanner")
    assert scanner.members == 2 and scanner.down_min == 60  # the soft CRITICAL at 09:50 is not counted
    # 2 x 1020 service minutes, less 120 of maintenance at bplp-16, 60 of them down
    assert scanner.availability_pct == pytest.approx(100 * (1920 - 60) / 1920)
    assert scanner.pages == 2100 and scanner.pages_per_day == pytest.approx(2100 / 4)


def test_24x7_and_a_period_not_yet_over(tmp_path: Path, store: SqliteStore) -> None:
    report = build_report(store, make_inventory(tmp_path), SAT, SUN, hours="24x7", now=at(4, "00:00"))
    oran = next(r for r in report.rows if r.key == "bplp-31")
    assert oran.service_min == 24 * 60  # Sunday has not happened yet
    assert oran.down_min == 8 * 60  # 16:00 until midnight, still going on
    assert report.outages[0].ongoing


def test_collector_gap_is_reported(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "gap.db")
    s.write_batch([], [SiteTransition("bplp-31", at(1, "00:00"), "UNKNOWN", "UP")], [])
    run = s.start_run(at(3, "00:00"), "h", 1)
    s.heartbeat(run, at(3, "12:00"), stopped=True)
    report = build_report(s, make_inventory(tmp_path), SAT, SAT, hours="24x7", now=at(20, "00:00"))
    oran = next(r for r in report.rows if r.key == "bplp-31")
    assert oran.unknown_min == 12 * 60 and oran.up_min == 12 * 60
    assert [(p.start, p.end) for p in report.unknown_periods] == [(at(3, "12:00"), at(4, "00:00"))]


def test_renderers(tmp_path: Path, store: SqliteStore) -> None:
    report = build_report(store, make_inventory(tmp_path), SAT, SUN, now=at(20, "00:00"))
    raw = render_report(report, "csv")
    assert isinstance(raw, bytes) and raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0]["name_ar"] == "المكتبة الرئيسية للجزائر" and table[-1]["key"] == "total"
    assert table[1]["down_min"] == "150" and table[1]["sla_met"] == "no"
    data = json.loads(render_report(report, "json"))
    assert data["schema_version"] == REPORT_SCHEMA_VERSION == 1
    assert data["period_from"] == "2026-01-03" and data["hours"] == "opening"
    assert data["outages"][0]["start"] == "2026-01-03T16:00:00+01:00"
    assert data["rows"][1]["availability_pct"] == pytest.approx(85.2941, abs=1e-4)
    assert len(data["rules"]) >= 8
    md = render_report(report, "md")
    assert isinstance(md, str) and "| BPLP d'Oran |" in md and "## Accounting rules" in md
    html = render_report(report, "html")
    assert isinstance(html, str) and "@page" in html and "<svg" in html and "A4" in html
    assert 'dir="rtl"' in html and "onduleur" in html
    assert not re.search(r"(src|href)=\"(http|//)|<script|<link", html)  # self-contained


def test_json_field_list_matches_docs() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "reports.md").read_text(encoding="utf-8")
    from dataclasses import fields

    from bibnet_ops.reports import ReportRow, UptimeReport

    for f in [*fields(UptimeReport), *fields(ReportRow)]:
        assert f"`{f.name}`" in doc, f"docs/reports.md does not describe {f.name}"


def test_json_is_the_plain_dump_of_the_report(tmp_path: Path, store: SqliteStore) -> None:
    # render_json writes long lists by hand for speed: it must be exactly json.dumps of the report
    from dataclasses import asdict

    from bibnet_ops.reports import Outage, UnknownPeriod, fmt_local

    def plain(value: object, key: str = "") -> object:
        if isinstance(value, dict):
            return {k: plain(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if key in ("since", "until", "generated_at", "start", "end") and isinstance(value, int | float):
            return fmt_local(value, report.timezone, with_seconds=True)
        return round(value, 4) if isinstance(value, float) else value

    report = build_report(store, make_inventory(tmp_path), SAT, SUN, by="device", now=at(20, "00:00"))
    report.outages.append(
        Outage('a/"b"', 'Bibliothèque "El Nour" \\ مكتبة\n', at(3, "10:00") + 0.25, at(3, "11:00"), 1e-7, True)
    )
    report.unknown_periods.append(UnknownPeriod(at(4, "01:00"), at(4, "02:00") + 0.5))
    report.rows[0].pages = float("inf")
    for r in (report, build_report(store, make_inventory(tmp_path), SUN, SUN, by="kind", now=at(20, "00:00"))):
        data = asdict(r)
        data = {"schema_version": data.pop("schema_version"), **data}
        assert render_report(r, "json") == json.dumps(plain(data), ensure_ascii=False, indent=2) + "\n"
    assert '"name_fr": "Bibliothèque \\"El Nour\\" \\\\ مكتبة\\n"' in str(render_report(report, "json"))
