"""`bibnet-ops config` and `bibnet-ops site` as a user runs them: a real subprocess, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if env is None or "BIBNET_OPS_CONFIG" not in env:
        full_env.pop("BIBNET_OPS_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bibnet_ops", *args],
        capture_output=True, text=True, cwd=cwd or REPO, env=full_env, timeout=60,
    )


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "checks", tmp_path / "checks")
    return tmp_path / "config"


def test_validate_shipped_config() -> None:
    res = run("config", "validate")
    assert res.returncode == 0, res.stderr
    assert "OK: 59 sites" in res.stdout and "devices" in res.stdout and "checks" in res.stdout


def test_validate_reports_every_error_and_exits_2(config_copy: Path) -> None:
    oran = config_copy / "sites" / "bplp-31.toml"
    oran.write_text(oran.read_text(encoding="utf-8").replace("wilaya = 31", "wilaya = 310"), encoding="utf-8")
    tlemcen = config_copy / "sites" / "bplp-13.toml"
    tlemcen.write_text(tlemcen.read_text(encoding="utf-8").replace('parent = "bplp-31"', 'parent = "bplp-311"'),
                       encoding="utf-8")
    res = run("config", "validate", str(config_copy))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2, res.stderr
    assert any("bplp-31.toml:" in ln and "[wilaya]" in ln for ln in lines)
    assert any("bplp-13.toml:" in ln and "[parent]" in ln and "did you mean 'bplp-31'" in ln for ln in lines)
    assert "2 errors in the inventory" in res.stderr


def test_config_dir_precedence(config_copy: Path, tmp_path: Path) -> None:
    (config_copy / "sites" / "bplp-58.toml").unlink()
    res = run("config", "validate", env={"BIBNET_OPS_CONFIG": str(config_copy)})
    assert res.returncode == 0 and "OK: 58 sites" in res.stdout
    res = run("--config", str(REPO / "config"), "config", "show", env={"BIBNET_OPS_CONFIG": str(config_copy)})
    assert "59 sites" in res.stdout.splitlines()[0]
    res = run("config", "validate", cwd=tmp_path)  # ./config
    assert res.returncode == 0 and "OK: 58 sites" in res.stdout


def test_show_json_redacts_secrets(config_copy: Path) -> None:
    res = run("--config", str(config_copy), "config", "show", "--json",
              env={"BIBNET_SNMP_COMMUNITY": "very-secret-community"})
    assert res.returncode == 0, res.stderr
    assert "very-secret-community" not in res.stdout
    doc = json.loads(res.stdout)
    oran = next(s for s in doc["sites"] if s["id"] == "bplp-31")
    assert oran["name_ar"].startswith("المكتبة")
    router = next(d for d in oran["devices"] if d["id"] == "router")
    assert router["checks"][0]["credentials"]["community"] == "<secret env:BIBNET_SNMP_COMMUNITY>"


def test_site_add_then_validate_then_remove(config_copy: Path) -> None:
    before = {p.name: p.read_bytes() for p in (config_copy / "sites").iterdir()}
    res = run(
        "--config", str(config_copy), "site", "add", "annexe-31-es-senia",
        "--name-fr", "Annexe d'Es Senia", "--name-ar", "ملحقة السانية", "--wilaya", "31",
        "--lat", "35.65", "--lon", "-0.62", "--region", "ouest", "--kind", "annex", "--parent", "bplp-31",
        "--tag", "annexe", "--device", "catalogue:ils-server:http://annexe-es-senia.bibnet.dz",
        "--device", "scanner-1:book-scanner:scanner-1.annexe-es-senia.bibnet.dz:161",
        "--credential", "scanner-1.community=env:BIBNET_SNMP_COMMUNITY",
    )
    assert res.returncode == 0, res.stderr
    assert "added site 'annexe-31-es-senia'" in res.stdout
    for name, data in before.items():  # no other site file was rewritten
        assert (config_copy / "sites" / name).read_bytes() == data
    res = run("config", "validate", str(config_copy))
    assert res.returncode == 0 and "OK: 60 sites" in res.stdout, res.stderr

    dup = run("--config", str(config_copy), "site", "add", "bplp-31", "--name-fr", "x", "--wilaya", "31",
              "--lat", "35.6", "--lon", "-0.6")
    assert dup.returncode == 2 and "site 'bplp-31' already exists" in dup.stderr

    refused = run("--config", str(config_copy), "site", "remove", "bplp-31")
    assert refused.returncode == 2
    assert "refusing to remove 'bplp-31'" in refused.stderr and "annexe-31-es-senia" in refused.stderr
    assert (config_copy / "sites" / "bplp-31.toml").exists()

    res = run("--config", str(config_copy), "site", "remove", "annexe-31-es-senia")
    assert res.returncode == 0 and not (config_copy / "sites" / "annexe-31-es-senia.toml").exists()


def test_site_add_refuses_what_would_break_the_inventory(config_copy: Path) -> None:
    res = run("--config", str(config_copy), "site", "add", "annexe-x", "--name-fr", "Annexe X", "--wilaya", "31",
              "--lat", "35.6", "--lon", "-0.6", "--parent", "nowhere",
              "--credential", "x.community=public")
    assert res.returncode == 2
    res = run("--config", str(config_copy), "site", "add", "annexe-x", "--name-fr", "Annexe X", "--wilaya", "31",
              "--lat", "35.6", "--lon", "-0.6", "--parent", "nowhere")
    assert res.returncode == 2 and "unknown parent site 'nowhere'" in res.stderr
    assert not (config_copy / "sites" / "annexe-x.toml").exists()


@pytest.mark.parametrize(
    "args",
    [[], ["config"], ["config", "validate"], ["config", "show"], ["site"], ["site", "add"], ["site", "remove"]],
)
def test_help_everywhere(args: list[str]) -> None:
    res = run(*args, "--help")
    assert res.returncode == 0 and "usage: bibnet-ops" in res.stdout


def test_version() -> None:
    res = run("--version")
    assert res.returncode == 0 and res.stdout.startswith("bibnet-ops ")
