"""Reloading a regional collector (SIGHUP) keeps it to the sites its lease holds, against a real PostgreSQL."""

from __future__ import annotations

import re
import signal

from test_national_failover import SITES, Collectors, collectors, owners, until

from bibnet_ops.inventory import load_inventory

__all__ = ["collectors"]

SUMMARY = re.compile(r"reloaded \S+: (\d+) checks? added, (\d+) removed, (\d+) changed, (\d+) unchanged")


def test_sighup_reloads_only_the_sites_the_collector_holds(collectors: Collectors) -> None:
    dsn = collectors.dsn
    a = collectors.start("a")
    until(lambda: len(owners(dsn)) == len(SITES) and all(o == "a" for o in owners(dsn).values()), 60,
          "collector a to hold every site")
    collectors.start("b")
    until(lambda: set(owners(dsn).values()) == {"a", "b"}, 60, "the group to be split between a and b")
    held = sorted(s for s, o in owners(dsn).items() if o == "a")
    inventory = load_inventory(collectors.config)
    held_checks = [c for c in inventory.checks if c.site_id in held]
    # one template's interval changes: only a's checks of that template are "changed" for a
    template = collectors.config.parent / "checks" / "ils-server.toml"
    template.write_text(template.read_text(encoding="utf-8").replace("interval = 2", "interval = 3", 1),
                        encoding="utf-8")
    changed = load_inventory(collectors.config)
    expected_changed = sum(1 for c in changed.checks if c.site_id in held and c.template == "ils-server"
                           and c.interval == 3)
    a.send_signal(signal.SIGHUP)
    until(lambda: SUMMARY.search(collectors.log("a")) is not None, 60, "collector a to reload")
    match = SUMMARY.search(collectors.log("a"))
    assert match is not None
    added, removed, n_changed, unchanged = (int(x) for x in match.groups())
    # nothing of b's sites is taken up by the reload, nothing of a's is dropped
    assert (added, removed) == (0, 0), collectors.log("a")[-2000:]
    assert n_changed == expected_changed > 0
    assert n_changed + unchanged == len(held_checks)
    assert sorted(s for s, o in owners(dsn).items() if o == "a") == held
    assert a.poll() is None
