"""The shipped catalogue templates against a catalogue nobody on this project wrote.

nginx (Debian's) serves a themed OPAC that never prints the word "Koha", the public libraries API and a
TLS certificate near expiry, and proxies `/cgi-bin/koha/oai.pl` to pyoai's OAI-PMH provider holding
100,000 records. The inventory uses `checks/ils-server.toml` and `checks/oai-sync.toml` as shipped; the
site only enables the (shipped, off by default) TLS check and names the test CA, as any site with its
own CA does. The checks run through `bibnet-ops check --json`, as a technician would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _nginx import serve_nginx
from _oai_provider import OaiProvider, Repository, serve

REPO = Path(__file__).resolve().parents[1]


def write_inventory(root: Path, url: str, ca_file: Path) -> Path:
    config = root / "config"
    (config / "sites").mkdir(parents=True)
    (config / "network.toml").write_text(
        f'[network]\nname = "Réseau de test"\ntemplates = "{REPO / "checks"}"\n\n[regions.ouest]\nname_fr = "Ouest"\n',
        encoding="utf-8",
    )
    (config / "sites" / "bplp-13.toml").write_text(
        f"""id = "bplp-13"
name_fr = "Bibliothèque principale de lecture publique de Tlemcen"
wilaya = 13
region = "ouest"
lat = 34.8828
lon = -1.3167

[[devices]]
id = "catalogue"
template = "ils-server"
address = "{url}"
[devices.params]
ca_file = "{ca_file}"
[devices.overrides.tls]
enabled = true

[[devices]]
id = "oai"
template = "oai-sync"
address = "{url}"
[devices.params]
ca_file = "{ca_file}"
""",
        encoding="utf-8",
    )
    return config


def run_checks(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "bibnet_ops", "--config", str(config), "check", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode in (0, 1, 2, 3) and done.stdout, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, {row["id"]: row for row in rows}


@pytest.fixture
def provider() -> Any:
    repo = Repository.generate(100_000, lag=3 * 3600, now=time.time())
    with serve(OaiProvider(repo)) as running:
        yield running


def test_shipped_templates_pass_on_nginx_and_pyoai(tmp_path: Path, provider: OaiProvider) -> None:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    with serve_nginx(prefix, cert_days=365, oai_upstream=provider.url) as nginx:
        code, rows = run_checks(write_inventory(tmp_path, nginx.url, nginx.ca_file))
    shown = "\n".join(f"{k}: {r['status']} {r['reason']}" for k, r in rows.items())
    assert set(rows) == {
        "bplp-13/catalogue/opac",
        "bplp-13/catalogue/api",
        "bplp-13/catalogue/tls",
        "bplp-13/oai/identify",
        "bplp-13/oai/sync-lag",
    }, shown
    assert code == 0 and all(r["status"] == "OK" for r in rows.values()), shown
    assert "Koha" not in (prefix / "html" / "cgi-bin" / "koha" / "opac-main.pl").read_text()
    assert rows["bplp-13/oai/sync-lag"]["reason"].startswith("newest record changed 3 h ago at "), shown
    assert rows["bplp-13/catalogue/tls"]["reason"] == "TLS certificate expires in 365 days", shown


def test_a_certificate_near_expiry_and_a_disabled_oai_service(tmp_path: Path, provider: OaiProvider) -> None:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    provider.disabled = True  # the provider answers 404 "OAI-PMH service is disabled", through nginx
    with serve_nginx(prefix, cert_days=10, oai_upstream=provider.url) as nginx:
        code, rows = run_checks(write_inventory(tmp_path, nginx.url, nginx.ca_file))
    shown = "\n".join(f"{k}: {r['status']} {r['reason']}" for k, r in rows.items())
    assert code == 2, shown
    assert rows["bplp-13/catalogue/tls"]["status"] == "WARNING", shown
    assert rows["bplp-13/catalogue/tls"]["reason"] == "TLS certificate expires in 10 days (warning below 21 days)"
    assert rows["bplp-13/catalogue/opac"]["status"] == "OK", shown
    for name in ("identify", "sync-lag"):
        assert rows[f"bplp-13/oai/{name}"]["status"] == "CRITICAL", shown
        assert (
            rows[f"bplp-13/oai/{name}"]["reason"] == "GET /cgi-bin/koha/oai.pl: HTTP 404 — OAI-PMH service is disabled"
        )


def test_an_opac_without_a_search_form_is_named(tmp_path: Path, provider: OaiProvider) -> None:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    maintenance = "<html><head><title>Maintenance</title></head><body><p>Catalogue indisponible</p></body></html>"
    with serve_nginx(prefix, opac=maintenance, oai_upstream=provider.url) as nginx:
        _, rows = run_checks(write_inventory(tmp_path, nginx.url, nginx.ca_file))
    opac = rows["bplp-13/catalogue/opac"]
    assert (opac["status"], opac["reason"]) == (
        "CRITICAL",
        "GET /cgi-bin/koha/opac-main.pl: body lacks a catalogue search form",
    )
