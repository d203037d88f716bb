"""Collector identity, groups and shares: network.toml validation (file:line [key]) and which sites a share holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bibnet_ops.inventory import ConfigError, ConfigIssue, load_inventory
from bibnet_ops.national import ShareError, resolve_share, sub_inventory

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def net(tmp_path: Path) -> Path:
    """A copy of the shipped inventory (59 sites over 5 regions) to edit."""
    root = tmp_path / "config"
    shutil.copytree(REPO / "config", root)
    shutil.copytree(REPO / "checks", tmp_path / "checks")
    return root


def append(root: Path, text: str) -> None:
    path = root / "network.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def issues(root: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_inventory(root)
    return info.value.issues


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


def test_group_share_by_region_tag_and_site(net: Path) -> None:
    append(net, '[groups.ouest]\nregions = ["ouest", "sud-ouest"]\n\n[groups.capitale]\nsites = ["bna", "bplp-16"]\n')
    inv = load_inventory(net)
    share = resolve_share(inv, "oran-1", group="ouest")
    expected = sorted(s.id for s in inv.sites.values() if s.region in ("ouest", "sud-ouest"))
    assert list(share.sites) == expected and len(expected) > 5
    assert share.group == "ouest" and share.collector_id == "oran-1" and not share.whole
    assert resolve_share(inv, "alger-1", group="capitale").sites == ("bna", "bplp-16")
    # without a group, a collector shares with nobody: its lease group is its own
    by_region = resolve_share(inv, "est-1", regions=["est"])
    assert by_region.group == "solo:est-1"
    assert all(inv.sites[s].region == "est" for s in by_region.sites)
    whole = resolve_share(inv, "")
    assert whole.whole and len(whole.sites) == 59
    sub = sub_inventory(inv, share.sites)
    assert set(sub.sites) == set(expected)
    assert {c.site_id for c in sub.checks} == set(expected) and len(inv.sites) == 59  # the original is untouched


def test_collector_settings_give_the_defaults(net: Path) -> None:
    append(net, '[groups.ouest]\nregions = ["ouest"]\n')
    path = net / "network.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "[collector]\n", '[collector]\nid = "oran-1"\ngroup = "ouest"\nfailover_delay = 10\n', 1), encoding="utf-8")
    inv = load_inventory(net)
    share = resolve_share(inv)
    assert share.collector_id == "oran-1" and share.group == "ouest"
    assert inv.settings["collector"]["failover_delay"] == 10
    # the command line wins over the file
    assert resolve_share(inv, "tlemcen-1", regions=["est"]).group == "solo:tlemcen-1"


def test_bad_groups_name_file_line_and_key(net: Path) -> None:
    append(net, '[groups.ouest]\nregions = ["ouest", "atlantide"]\n\n[groups.vide]\n\n'
                '[groups.sites]\nsites = ["bna", "nulle-part"]\nzones = ["x"]\n')
    path = net / "network.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "[collector]\n", '[collector]\nid = "Oran 1"\ngroup = "nord"\nfailover_delay = 1\n', 1), encoding="utf-8")
    found = {(i.key, i.line): i.message for i in issues(net)}
    text = "\n".join(f"{k}:{line} {m}" for (k, line), m in found.items())
    assert found[("groups.ouest.regions", line_of(path, '"atlantide"'))].startswith("unknown region(s) atlantide"), text
    assert ("groups.vide", line_of(path, "[groups.vide]")) in found, text
    assert "names no sites" in found[("groups.vide", line_of(path, "[groups.vide]"))]
    assert found[("groups.sites.sites", line_of(path, '"nulle-part"'))] == "unknown site(s) nulle-part"
    assert "unknown key 'zones'" in found[("groups.sites.zones", line_of(path, "zones ="))]
    assert "must be lower-case" in found[("collector.id", line_of(path, 'id = "Oran 1"'))]
    assert found[("collector.group", line_of(path, 'group = "nord"'))].startswith("unknown collector group 'nord'")
    assert "between 3 and 3600" in found[("collector.failover_delay", line_of(path, "failover_delay = 1"))]
    assert all(i.file.endswith("network.toml") for i in issues(net))


def test_share_errors_are_clear(net: Path) -> None:
    inv = load_inventory(net)
    with pytest.raises(ShareError, match="unknown collector group 'ouest'; groups: none declared"):
        resolve_share(inv, "oran-1", group="ouest")
    with pytest.raises(ShareError, match="unknown region"):
        resolve_share(inv, "oran-1", regions=["atlantide"])
    with pytest.raises(ShareError, match="names no site"):
        resolve_share(inv, "oran-1", tags=["no-such-tag"])
