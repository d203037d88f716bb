"""The inventory loader: the shipped network, and every error class named with file, line and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bibnet_ops.inventory import ConfigError, ConfigIssue, load_inventory
from bibnet_ops.model import SecretError, SecretRef

REPO = Path(__file__).resolve().parent.parent

NETWORK = """\
[network]
name = "Test network"
timezone = "Africa/Algiers"
templates = "checks"

[regions.ouest]
name_fr = "Ouest"
"""

HUB = """\
id = "hub"
name_fr = "Hub d'Oran"
wilaya = 31
region = "ouest"
lat = 35.69
lon = -0.63

[[devices]]
id = "router"
template = "switch"
address = "127.0.0.1:16100"

[devices.credentials]
community = "env:SNMP_COMMUNITY"
"""

LEAF = """\
id = "leaf"
name_fr = "Bibliothèque de Tlemcen"
name_ar = "مكتبة تلمسان"
wilaya = 13
region = "ouest"
lat = 34.88
lon = -1.31
parent = "hub"

[[devices]]
id = "catalogue"
template = "ils-server"
address = "http://127.0.0.1:8080"

[devices.overrides.opac]
interval = 30
params = { ca_file = "secrets/ca.pem" }

[[devices]]
id = "scanner-1"
template = "book-scanner"
address = "127.0.0.1:16101"

[devices.credentials]
community = "file:secrets/community"
"""


@pytest.fixture
def inv_dir(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    (root / "sites").mkdir(parents=True)
    shutil.copytree(REPO / "checks", root / "checks")
    (root / "network.toml").write_text(NETWORK, encoding="utf-8")
    (root / "sites" / "hub.toml").write_text(HUB, encoding="utf-8")
    (root / "sites" / "leaf.toml").write_text(LEAF, encoding="utf-8")
    return root


def errors(root: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_inventory(root)
    return info.value.issues


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(needle)


def test_shipped_network_loads() -> None:
    inv = load_inventory(REPO / "config")
    assert len(inv.sites) == 59
    assert inv.sites["bna"].parent is None
    assert {s.wilaya for s in inv.sites.values() if s.id != "bna"} == set(range(1, 59))
    # every wilaya library hangs off the national core through at most a hub and a neighbour
    for site in inv.sites.values():
        depth, node = 0, site
        while node.parent:
            node = inv.sites[node.parent]
            depth += 1
        assert node.id == "bna" and depth <= 3
    kinds = {c.template for c in inv.checks}
    assert {"ils-server", "book-scanner", "switch", "oai-sync", "collector-host"} <= kinds


def test_resolution_merges_template_device_and_overrides(inv_dir: Path) -> None:
    inv = load_inventory(inv_dir)
    opac = next(inv.select("leaf/catalogue/opac"))
    assert opac.interval == 30  # device override
    assert opac.params["ca_file"] == str(inv_dir / "secrets" / "ca.pem")  # relative to the config dir
    assert opac.params["path"] == "/cgi-bin/koha/opac-main.pl"  # template parameter
    assert opac.id == "leaf/catalogue/opac"
    assert [c.name for c in inv.select("leaf/catalogue")] == ["opac", "api"]  # tls and sru are opt-in
    pages = next(inv.select("leaf/scanner-1/pages"))
    assert pages.credentials["community"].ref == "file:secrets/community"
    assert [s.id for s in inv.descendants("hub")] == ["leaf"]


def test_unknown_key_with_suggestion(inv_dir: Path) -> None:
    site = inv_dir / "sites" / "leaf.toml"
    edit(site, "name_ar =", "nom_ar =")
    edit(site, 'interval = 30', 'intervall = 30')
    found = errors(inv_dir)
    assert len(found) == 2, found
    by_key = {i.key: i for i in found}
    assert by_key["nom_ar"].line == line_of(site, "nom_ar")
    assert "did you mean 'name_ar'" in by_key["nom_ar"].message
    ov = by_key["devices[0].overrides.opac.intervall"]
    assert ov.line == line_of(site, "intervall") and "did you mean 'interval'" in ov.message
    assert ov.file.endswith("sites/leaf.toml")


def test_wrong_type(inv_dir: Path) -> None:
    site = inv_dir / "sites" / "hub.toml"
    edit(site, "wilaya = 31", 'wilaya = "31"')
    (issue,) = errors(inv_dir)
    assert issue.key == "wilaya" and issue.line == 3
    assert "must be an integer, not a string" in issue.message
    assert str(issue).startswith(f"{issue.file}:3: [wilaya]")


def test_duplicate_site_and_device_ids(inv_dir: Path) -> None:
    other = inv_dir / "sites" / "leaf-copy.toml"
    other.write_text(LEAF.replace('id = "leaf"', 'id = "leaf-copy"').replace('id = "scanner-1"', 'id = "catalogue"'),
                     encoding="utf-8")
    (inv_dir / "sites" / "hub2.toml").write_text(HUB, encoding="utf-8")
    found = errors(inv_dir)
    msgs = [str(i) for i in found]
    dup_dev = [i for i in found if "duplicate device id 'catalogue'" in i.message]
    assert dup_dev and dup_dev[0].key == "devices[1].id"
    second = [n for n, line in enumerate(other.read_text().splitlines(), 1) if line == 'id = "catalogue"'][1]
    assert dup_dev[0].line == second
    dup_site = [i for i in found if "duplicate site id 'hub'" in i.message]
    assert dup_site and dup_site[0].file.endswith("hub2.toml") and dup_site[0].line == 1, msgs


def test_unknown_template(inv_dir: Path) -> None:
    site = inv_dir / "sites" / "leaf.toml"
    edit(site, 'template = "book-scanner"', 'template = "book-scaner"')
    (issue,) = errors(inv_dir)
    assert issue.key == "devices[1].template"
    assert issue.line == line_of(site, "book-scaner")
    assert "unknown template 'book-scaner' (did you mean 'book-scanner'?)" in issue.message


def test_a_missing_templates_directory_is_one_error_not_one_per_device(inv_dir: Path) -> None:
    shutil.rmtree(inv_dir / "checks")
    (issue,) = errors(inv_dir)
    assert (issue.key, issue.message) == ("network.templates", "check templates directory not found")
    assert issue.file.endswith("checks")


def test_unknown_and_cyclic_parent(inv_dir: Path) -> None:
    leaf = inv_dir / "sites" / "leaf.toml"
    edit(leaf, 'parent = "hub"', 'parent = "hubb"')
    (issue,) = errors(inv_dir)
    assert issue.key == "parent" and issue.line == line_of(leaf, "parent")
    assert "unknown parent site 'hubb' (did you mean 'hub'?)" in issue.message

    edit(leaf, 'parent = "hubb"', 'parent = "hub"')
    hub = inv_dir / "sites" / "hub.toml"
    edit(hub, 'lon = -0.63', 'lon = -0.63\nparent = "leaf"')
    found = errors(inv_dir)
    assert len(found) == 1, found
    assert "dependency cycle" in found[0].message and found[0].key == "parent"
    assert "hub -> leaf -> hub" in found[0].message or "leaf -> hub -> leaf" in found[0].message


def test_bad_coordinates(inv_dir: Path) -> None:
    leaf = inv_dir / "sites" / "leaf.toml"
    edit(leaf, "lat = 34.88\nlon = -1.31", "lat = -1.31\nlon = 34.88")
    found = errors(inv_dir)
    keys = {i.key: i for i in found}
    assert keys["lat"].line == line_of(leaf, "lat =") and "outside Algeria" in keys["lat"].message
    assert keys["lon"].line == line_of(leaf, "lon =")


def test_literal_secrets_refused(inv_dir: Path) -> None:
    leaf = inv_dir / "sites" / "leaf.toml"
    edit(leaf, 'community = "file:secrets/community"', 'community = "public"')
    edit(leaf, 'address = "http://127.0.0.1:8080"', 'address = "http://admin:s3cret@127.0.0.1:8080"')
    hub = inv_dir / "sites" / "hub.toml"
    edit(hub, "[devices.credentials]", '[devices.params]\npassword = "hunter2"\n\n[devices.credentials]')
    found = errors(inv_dir)
    assert len(found) == 3, found
    for issue in found:
        assert "literal secret" in issue.message
        assert "public" not in str(issue) and "s3cret" not in str(issue) and "hunter2" not in str(issue)
    keys = {i.key: i.line for i in found}
    assert keys["devices[1].credentials.community"] == line_of(leaf, "community")
    assert keys["devices[0].address"] == line_of(leaf, "admin:")
    assert keys["devices[0].params.password"] == line_of(hub, "password")


def test_bad_toml_names_line(inv_dir: Path) -> None:
    leaf = inv_dir / "sites" / "leaf.toml"
    edit(leaf, 'region = "ouest"', 'region = "ouest')
    (issue,) = errors(inv_dir)
    assert issue.file.endswith("leaf.toml") and issue.line == line_of(leaf, "region =")
    assert "invalid TOML" in issue.message


def test_all_errors_reported_across_files(inv_dir: Path) -> None:
    edit(inv_dir / "network.toml", "[network]", "[network]\nnmae = 1")
    edit(inv_dir / "sites" / "hub.toml", "wilaya = 31", "wilaya = 99")
    (inv_dir / "checks" / "switch.toml").write_text(
        (inv_dir / "checks" / "switch.toml").read_text().replace('probe = "snmp"', 'probe = "smnp"', 1)
    )
    found = errors(inv_dir)
    files = {Path(i.file).name for i in found}
    assert {"network.toml", "hub.toml", "switch.toml"} <= files, found
    probe = next(i for i in found if i.file.endswith("switch.toml"))
    assert probe.key == "checks[0].probe" and "must be one of" in probe.message and probe.line


def test_template_errors(inv_dir: Path) -> None:
    tmpl = inv_dir / "checks" / "book-scanner.toml"
    edit(tmpl, 'description = "Pages scanned', 'descripton = "Pages scanned')
    found = errors(inv_dir)
    keys = {i.key for i in found}
    assert "checks[1].descripton" in keys and "checks[1]" in keys  # unknown key and missing description


def test_secret_refs_resolve_and_never_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_TEST_SECRET", "xyzzy")
    ref = SecretRef("env:BIBNET_TEST_SECRET")
    assert ref.resolve() == "xyzzy"
    assert "xyzzy" not in repr(ref) and "xyzzy" not in ref.redacted()
    (tmp_path / "s").write_text("from-file\n")
    assert SecretRef("file:s", tmp_path).resolve() == "from-file"
    with pytest.raises(SecretError, match="NOPE_NOT_SET is not set"):
        SecretRef("env:NOPE_NOT_SET").resolve()
