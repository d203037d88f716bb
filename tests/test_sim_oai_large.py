"""The simulator's OAI-PMH provider holds large repositories cheaply, and the sync-lag check reads them right."""

from __future__ import annotations

import dataclasses
import random
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bibnet_ops.inventory import Inventory, load_inventory
from bibnet_ops.model import CheckStatus
from bibnet_ops.probes import oaipmh, run_probe
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.sim import Simulator
from bibnet_ops.sim._state import CatalogueState

REPO = Path(__file__).resolve().parents[1]
SITE = "bplp-13"


@pytest.mark.parametrize("size", [200, 1_000, 100_000])
def test_implicit_records_list_like_stored_ones(size: int) -> None:
    now = time.time()
    catalogue = CatalogueState(random.Random(3), now, size)
    assert catalogue.count(now) == size
    stamps = [catalogue.stamp(i) for i in range(size)]
    assert stamps == sorted(stamps) and stamps[-1] < now
    for t in (stamps[0] - 5, stamps[0], stamps[size // 2], stamps[size // 2] + 0.5, stamps[-1], now + 1):
        assert catalogue.select(now, t, None)[0] == sum(1 for s in stamps if s < t)
        assert catalogue.select(now, None, t)[1] == sum(1 for s in stamps if s <= t)


def test_a_million_records_cost_no_memory() -> None:
    tracemalloc.start()
    try:
        started = time.perf_counter()
        catalogue = CatalogueState(random.Random(3), time.time(), 1_000_000)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert catalogue.count(time.time()) >= 1_000_000
    assert peak < 64 * 1024 and elapsed < 0.05


@pytest.fixture
async def large(tmp_path: Path) -> AsyncIterator[tuple[Simulator, Inventory]]:
    shipped = load_inventory(REPO / "config")
    oaipmh.forget_repositories()
    site = dataclasses.replace(shipped.sites[SITE], parent=None)
    sim = Simulator([site], seed=5, catalogue_records={SITE: 100_000})
    async with sim:
        inventory = load_inventory(sim.write_config(tmp_path / "config"))
        try:
            yield sim, inventory
        finally:
            await close_clients()


def _catalogue(sim: Simulator) -> CatalogueState:
    return next(ep.koha.catalogue for ep in sim.by_site[SITE] if getattr(ep, "koha", None) is not None)


async def test_sync_lag_of_a_100000_record_simulated_catalogue(large: tuple[Simulator, Inventory]) -> None:
    sim, inventory = large
    check = next(inventory.select(f"{SITE}/oai/sync-lag"))
    sample = await run_probe(check)
    assert sample.status is CheckStatus.OK, sample.reason
    newest = _catalogue(sim).newest(time.time())
    assert sample.values["newest_datestamp"] == float(int(newest))
    assert sample.values["requests"] <= 20
    # about 8,000 records changed within the 30-day window: a walk from its start would take 160 pages
    window = _catalogue(sim).select(time.time(), time.time() - 30 * 86400, None)
    assert window[1] - window[0] > 7_000


@pytest.mark.parametrize(("days", "status"), [(4, CheckStatus.WARNING), (20, CheckStatus.CRITICAL)])
async def test_a_stalled_large_catalogue_crosses_the_thresholds(
    large: tuple[Simulator, Inventory], days: int, status: CheckStatus
) -> None:
    sim, inventory = large
    sim.set_fault(SITE, "sync_stalled", lag=days * 86400)
    sample = await run_probe(next(inventory.select(f"{SITE}/oai/sync-lag")))
    assert sample.status is status, sample.reason
    # records are 315 s apart: the newest visible one is within that of the stall's cut-off
    assert days * 86400 <= (sample.value or 0) < days * 86400 + 400, sample.reason
    assert sample.reason.startswith(f"newest record changed {days} days ago at ")
