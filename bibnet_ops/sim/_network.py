"""Synthetic library networks: the 58-wilaya network when no inventory is given, and extra annexes
and municipal libraries around the wilaya capitals when more sites are asked for than the inventory has.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from bibnet_ops.model import Device, OpeningHours, Region, SecretRef, Site
from bibnet_ops.sim._wilayas import WILAYAS

__all__ = ["REGIONS", "base_network", "region_of", "resize_network"]

REGIONS: dict[str, Region] = {
    "centre": Region("centre", "Centre", "الوسط"),
    "ouest": Region("ouest", "Ouest", "الغرب"),
    "est": Region("est", "Est", "الشرق"),
    "sud-est": Region("sud-est", "Sud-Est", "الجنوب الشرقي"),
    "sud-ouest": Region("sud-ouest", "Sud-Ouest", "الجنوب الغربي"),
}
# One regional hub per region: the other wilaya libraries of the region hang off it.
HUBS = {"centre": 16, "ouest": 31, "est": 25, "sud-est": 30, "sud-ouest": 8}


def region_of(lat: float, lon: float) -> str:
    """A rough region for a point in Algeria (north/south split at 33.5°N)."""
    if lat < 33.5:
        return "sud-ouest" if lon < 2.5 else "sud-est"
    if lon < 1.8:
        return "ouest"
    return "centre" if lon < 4.8 else "est"


def _devices(site_id: str, scanners: int, tls: bool) -> tuple[Device, ...]:
    host = f"{site_id}.bibnet.dz"
    scheme = "https" if tls else "http"
    refs = {"community": SecretRef("env:BIBNET_SNMP_COMMUNITY")}
    out = [
        Device("catalogue", "ils-server", f"{scheme}://{host}",
               overrides={"tls": {"enabled": True}} if tls else {}),
        Device("oai", "oai-sync", f"{scheme}://{host}"),
        Device("router", "switch", f"gw.{host}:161", credentials=refs),
    ]
    out += [Device(f"scanner-{i}", "book-scanner", f"scanner-{i}.{host}:161", credentials=refs)
            for i in range(1, scanners + 1)]
    return tuple(out)


def base_network() -> list[Site]:
    """The national library and the 58 wilaya libraries, regional hubs in between."""
    sites = [Site(
        id="bna", name_fr="Bibliothèque nationale d'Algérie", name_ar="المكتبة الوطنية الجزائرية",
        wilaya=16, region="centre", lat=36.7468, lon=3.0744, kind="national",
        tags=("national", "koha", "core"), devices=(*_devices("bna", 2, True),
                                                    Device("collector", "collector-host", "localhost")),
    )]
    for code, name_fr, name_ar, lat, lon in WILAYAS:
        region = region_of(lat, lon)
        hub = HUBS[region]
        sid = f"bplp-{code:02d}"
        sites.append(Site(
            id=sid,
            name_fr=f"Bibliothèque principale de lecture publique de {name_fr}",
            name_ar=f"المكتبة الرئيسية للمطالعة العمومية - {name_ar}",
            wilaya=code, region=region, lat=lat, lon=lon,
            kind="hub" if code == hub else "library",
            tags=("bplp", "koha", *(("hub",) if code == hub else ())),
            parent="bna" if code == hub else f"bplp-{hub:02d}",
            devices=_devices(sid, 1 + code % 2, tls=code == hub),
        ))
    return sites


def _by_depth(sites: list[Site]) -> list[Site]:
    """Sites ordered parents first (stable within a level), so any prefix keeps its uplinks."""
    ids = {s.id for s in sites}
    parent = {s.id: s.parent if s.parent in ids else None for s in sites}

    def depth(sid: str) -> int:
        d, seen = 0, {sid}
        while (p := parent[sid]) is not None and p not in seen:
            seen.add(p)
            sid, d = p, d + 1
        return d

    return sorted(sites, key=lambda s: depth(s.id))


def resize_network(sites: Sequence[Site], n: int | None, seed: int = 0) -> list[Site]:
    """The first `n` sites, or all of them plus synthetic annexes and municipal libraries up to `n`.

    Extra sites hang off the wilaya libraries (or any site when there are none), round-robin, with
    coordinates a few kilometres from their parent.
    """
    sites = list(sites)
    if n is None or n == len(sites):
        return sites
    if n <= len(sites):
        return _by_depth(sites)[:n]
    rng = random.Random(seed)
    parents = [s for s in sites if s.kind in ("library", "hub")] or sites
    taken = {s.id for s in sites}
    counts: dict[str, int] = {}
    k = 0
    while len(sites) < n:
        parent = parents[k % len(parents)]
        k += 1
        counts[parent.id] = counts.get(parent.id, 0) + 1
        j = counts[parent.id]
        kind = "annex" if j % 3 else "municipal"
        sid = f"{parent.id}-{'a' if kind == 'annex' else 'm'}{j:02d}"
        if sid in taken:
            continue
        taken.add(sid)
        place = parent.name_fr.rsplit(" de ", 1)[-1].rsplit(" d'", 1)[-1]
        label = "Annexe" if kind == "annex" else "Bibliothèque communale"
        label_ar = "ملحقة" if kind == "annex" else "المكتبة البلدية"
        sites.append(Site(
            id=sid, name_fr=f"{label} n°{j} de {place}", name_ar=f"{label_ar} رقم {j}",
            wilaya=parent.wilaya, region=parent.region,
            lat=round(parent.lat + rng.uniform(-0.25, 0.25), 4),
            lon=round(parent.lon + rng.uniform(-0.25, 0.25), 4),
            kind=kind, tags=(kind, "koha"), parent=parent.id,
            opening_hours=OpeningHours(), devices=_devices(sid, 1, tls=False),
        ))
    return sites
