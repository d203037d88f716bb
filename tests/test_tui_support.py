"""A fixed inventory and fixed states for dashboard tests and snapshots (no tests here).

Snapshots must not move: the network, the states, the clock and the host figures are all fixed.
"""

from __future__ import annotations

from pathlib import Path

from bibnet_ops.events import Sample, SiteStatusChange, StateChange
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckSpec, CheckStatus, Region, Site, SiteStatus
from bibnet_ops.tui.source import PollHealth, StaticSource

# 2026-03-15 10:30:00 Africa/Algiers (UTC+1).
FROZEN_NOW = 1773567000.0
T0 = FROZEN_NOW - 3600

_SITES = [
    # id, name_fr, name_ar, wilaya, region, kind, lat, lon, parent
    ("bna", "Bibliothèque nationale d'Algérie", "المكتبة الوطنية الجزائرية", 16, "centre", "national",
     36.7469, 3.0732, None),
    ("bplp-16", "Bibliothèque principale de lecture publique d'Alger", "مكتبة الجزائر", 16, "centre", "library",
     36.7325, 3.0872, "bna"),
    ("bplp-31", "Bibliothèque principale de lecture publique d'Oran", "المكتبة الرئيسية - وهران", 31, "ouest", "hub",
     35.6969, -0.6331, "bna"),
    ("bm-31-01", "Bibliothèque municipale d'Es Senia", "مكتبة السانية", 31, "ouest", "municipal",
     35.6483, -0.6236, "bplp-31"),
    ("bplp-13", "Bibliothèque principale de lecture publique de Tlemcen", "مكتبة تلمسان", 13, "ouest", "library",
     34.8828, -1.3167, "bplp-31"),
    ("bplp-25", "Bibliothèque principale de lecture publique de Constantine", "مكتبة قسنطينة", 25, "est", "hub",
     36.35, 6.6, "bna"),
    ("bm-25-01", "Bibliothèque municipale d'El Khroub", "مكتبة الخروب", 25, "est", "municipal",
     36.2636, 6.6936, "bplp-25"),
    ("bplp-23", "Bibliothèque principale de lecture publique d'Annaba", "مكتبة عنابة", 23, "est", "library",
     36.9, 7.767, "bplp-25"),
    ("bplp-07", "Bibliothèque principale de lecture publique de Biskra", "مكتبة بسكرة", 7, "sud-est", "library",
     34.85, 5.733, "bna"),
    ("bplp-30", "Bibliothèque principale de lecture publique d'Ouargla", "مكتبة ورقلة", 30, "sud-est", "library",
     31.95, 5.317, "bna"),
    ("bplp-11", "Bibliothèque principale de lecture publique de Tamanrasset", "مكتبة تمنراست", 11, "sud-est",
     "library", 22.7889, 5.5256, "bna"),
    ("bplp-08", "Bibliothèque principale de lecture publique de Béchar", "مكتبة بشار", 8, "sud-ouest", "library",
     31.617, -2.217, "bna"),
    ("bplp-01", "Bibliothèque principale de lecture publique d'Adrar", "مكتبة أدرار", 1, "sud-ouest", "library",
     27.867, -0.283, "bplp-08"),
]

REGIONS = {
    "centre": Region("centre", "Centre", "الوسط"),
    "ouest": Region("ouest", "Ouest", "الغرب"),
    "est": Region("est", "Est", "الشرق"),
    "sud-est": Region("sud-est", "Sud-Est", "الجنوب الشرقي"),
    "sud-ouest": Region("sud-ouest", "Sud-Ouest", "الجنوب الغربي"),
}


def fixed_inventory(root: Path | None = None) -> Inventory:
    """Thirteen sites in five regions, each with a catalogue, a scanner and an OAI provider."""
    sites = {}
    checks = []
    for sid, fr, ar, wilaya, region, kind, lat, lon, parent in _SITES:
        sites[sid] = Site(sid, fr, ar, wilaya, region, lat, lon, kind, (kind, "koha"), parent)
        checks += [
            CheckSpec(sid, "catalogue", "opac", "http", f"http://{sid}.test", metric="latency", unit="s"),
            CheckSpec(sid, "scanner-1", "pages", "snmp", f"{sid}-scanner:161", metric="pages_per_hour",
                      unit="pages/h"),
            CheckSpec(sid, "oai", "sync-lag", "oaipmh", f"http://{sid}.test/oai", metric="sync_lag", unit="s"),
        ]
    return Inventory(root=root or Path("/nonexistent"), name="test", sites=sites, regions=dict(REGIONS),
                     checks=checks)


def _site(sid: str, new: SiteStatus, minutes: float, reason: str = "", root: str | None = None) -> SiteStatusChange:
    return SiteStatusChange(sid, FROZEN_NOW - minutes * 60, SiteStatus.UP, new, reason, root)


def _check(cid: str, new: CheckStatus, minutes: float, reason: str, hard: bool = True) -> StateChange:
    site = cid.split("/", 1)[0]
    return StateChange(cid, site, FROZEN_NOW - minutes * 60, CheckStatus.OK, new, hard, reason)


def fixed_events() -> list[object]:
    """Every site UP with samples, then an outage at Constantine, a lagging Biskra, Tamanrasset in maintenance."""
    events: list[object] = []
    for sid, *_ in _SITES:
        events.append(SiteStatusChange(sid, T0, SiteStatus.UP, SiteStatus.UP))
        for i in range(12):
            t = T0 + i * 300
            events.append(Sample(f"{sid}/catalogue/opac", CheckStatus.OK, "", 0.05 + 0.01 * (i % 5),
                                 latency=0.05 + 0.01 * (i % 5), time=t))
            events.append(Sample(f"{sid}/scanner-1/pages", CheckStatus.OK, "", 100.0 + 10 * (i % 4),
                                 {"total": 10_000 + 25 * i}, latency=0.01, time=t))
            events.append(Sample(f"{sid}/oai/sync-lag", CheckStatus.OK, "", 600.0, latency=0.02, time=t))
    changes: list[StateChange | SiteStatusChange] = [
        _check("bplp-25/catalogue/opac", CheckStatus.CRITICAL, 12, "connection refused"),
        _check("bplp-25/oai/sync-lag", CheckStatus.CRITICAL, 12, "connection refused"),
        _site("bplp-25", SiteStatus.DOWN, 12, "catalogue down", None),
        _site("bm-25-01", SiteStatus.UNREACHABLE, 11, "behind bplp-25", "bplp-25"),
        _site("bplp-23", SiteStatus.UNREACHABLE, 11, "behind bplp-25", "bplp-25"),
        _check("bplp-07/oai/sync-lag", CheckStatus.WARNING, 40, "sync lag 3h 10m (warning above 2h)"),
        _site("bplp-07", SiteStatus.DEGRADED, 40, "sync lag"),
        _check("bplp-31/scanner-1/pages", CheckStatus.WARNING, 3, "3 pages/h (warning below 5)", hard=False),
        _site("bplp-11", SiteStatus.MAINTENANCE, 90, "planned maintenance"),
    ]
    # The engine emits in time order; so does this fixture.
    events += sorted(changes, key=lambda e: e.time)
    return events


def fixed_source() -> StaticSource:
    return StaticSource(fixed_events(), PollHealth(checks_per_second=12.5, lag=0.2, last_poll_age=1.0))


def frozen_host() -> tuple[float, float]:
    return 12.0, 41.0


def frozen_clock() -> float:
    return FROZEN_NOW


DAY = 86400.0


def history_events() -> list[object]:
    """Two days of history before the fixed picture: all sites UP, an old Constantine outage, older latencies."""
    start = FROZEN_NOW - 2 * DAY
    events: list[object] = [SiteStatusChange(sid, start, SiteStatus.UP, SiteStatus.UP) for sid, *_ in _SITES]
    down, up = FROZEN_NOW - 30 * 3600, FROZEN_NOW - 29.5 * 3600
    events += [
        StateChange("bplp-25/catalogue/opac", "bplp-25", down, CheckStatus.OK, CheckStatus.CRITICAL, True, "HTTP 503"),
        SiteStatusChange("bplp-25", down, SiteStatus.UP, SiteStatus.DOWN, "catalogue HTTP 503"),
        StateChange("bplp-25/catalogue/opac", "bplp-25", up, CheckStatus.CRITICAL, CheckStatus.OK, True, "HTTP 200"),
        SiteStatusChange("bplp-25", up, SiteStatus.DOWN, SiteStatus.UP, "recovered"),
    ]
    # Slower replies before the dashboard's own hour: only the store knows them.
    for i in range(6):
        t = FROZEN_NOW - 100 * 60 + i * 300
        events.append(Sample("bplp-25/catalogue/opac", CheckStatus.OK, "", 0.2, latency=0.2, time=t))
    return [*events, *fixed_events()]


def write_history(path: Path, inventory: Inventory | None = None) -> Path:
    """A real history store, written by the real StoreWriter: a collector ran for the two days up to FROZEN_NOW."""
    from bibnet_ops.store import StoreWriter, check_infos

    inv = inventory or fixed_inventory()
    clock = [FROZEN_NOW - 2 * DAY]
    writer = StoreWriter(path, checks=check_infos(inv.checks), timezone=inv.timezone, clock=lambda: clock[0]).start()
    for event in history_events():
        writer.handle(event)  # type: ignore[arg-type]
    writer.flush()
    clock[0] = FROZEN_NOW
    writer.close()
    return path
