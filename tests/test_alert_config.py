"""The `[alerts]` table: parsing, validation through the inventory loader (file, line, key), rule matching."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bibnet_ops.alerts import access_policy, parse_alerts, parse_duration
from bibnet_ops.alerts._model import ReadOnlyError
from bibnet_ops.inventory import ConfigError, ConfigIssue, load_inventory
from bibnet_ops.model import Site

REPO = Path(__file__).resolve().parent.parent

GOOD = """
[alerts]
enabled = true
settle = "20s"
backoff = "5s"

[alerts.receivers.chat]
kind = "webhook"
url = "env:BIBNET_CHAT_WEBHOOK"
format = "text"

[alerts.receivers.noc-mail]
kind = "email"
host = "smtp.bibnet.dz"
username = "bibnet"
password = "env:SMTP_PASSWORD"
from = "bibnet-ops <noc@bibnet.dz>"
to = ["astreinte@bibnet.dz"]

[alerts.receivers.sms]
kind = "command"
command = ["/usr/local/bin/send-sms", "+213555000000"]
timeout = "20s"

[alerts.receivers.manager-ouest]
kind = "email"
host = "smtp.bibnet.dz"
from = "noc@bibnet.dz"
to = ["ouest@bibnet.dz"]

[[alerts.rules]]
name = "Ouest down"
states = ["DOWN", "CRITICAL"]
regions = ["ouest"]
receivers = ["chat", "noc-mail"]
after = "5m"
renotify = "1h"

[[alerts.rules.escalate]]
after = "30m"
receivers = ["manager-ouest"]

[[alerts.rules]]
name = "Scanners"
states = ["WARNING", "CRITICAL"]
checks = ["*/scanner-*/*"]
wilayas = [16, 31]
receivers = ["sms"]
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "checks", tmp_path / "checks")
    net = tmp_path / "config" / "network.toml"
    # Drop the shipped (disabled) example so each test writes its own [alerts] table.
    net.write_text(net.read_text(encoding="utf-8").split("# Alerting (see docs/alerts.md)")[0], encoding="utf-8")
    return tmp_path / "config"


def with_alerts(root: Path, text: str) -> Path:
    net = root / "network.toml"
    net.write_text(net.read_text(encoding="utf-8") + text, encoding="utf-8")
    return net


def issues_of(root: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_inventory(root)
    return info.value.issues


def line_of(path: Path, needle: str, start: int = 0) -> int:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if n > start and needle in line:
            return n
    raise AssertionError(needle)


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("5m") == 300 and parse_duration("1h30m") == 5400
    assert parse_duration(2.5) == 2.5 and parse_duration("250ms") == 0.25
    for bad in ("soon", "-1", -1, True, ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_good_alerts_table_loads_and_parses(config_dir: Path) -> None:
    with_alerts(config_dir, GOOD)
    inv = load_inventory(config_dir)
    cfg = parse_alerts(inv.settings["alerts"], inv.sites, inv.root)
    assert cfg.enabled and cfg.settle == 20
    assert set(cfg.receivers) == {"chat", "noc-mail", "sms", "manager-ouest"}
    assert cfg.receivers["chat"].secrets["url"].ref == "env:BIBNET_CHAT_WEBHOOK"
    assert cfg.receivers["noc-mail"].backoff == 5 and cfg.receivers["sms"].timeout == 20
    first, second = cfg.rules
    assert first.after == 300 and first.renotify == 3600 and first.escalate[0].after == 1800
    oran, alger = inv.sites["bplp-31"], inv.sites["bplp-16"]
    assert first.matches("DOWN", oran, None) and not first.matches("DOWN", alger, None)
    assert not first.matches("WARNING", oran, "bplp-31/catalogue/http")
    assert second.matches("WARNING", alger, "bplp-16/scanner-1/pages")
    assert not second.matches("WARNING", alger, "bplp-16/catalogue/http")
    assert not second.matches("DOWN", alger, None)


def test_shipped_example_is_valid_and_disabled() -> None:
    inv = load_inventory(REPO / "config")
    cfg = parse_alerts(inv.settings["alerts"], inv.sites, inv.root)
    assert not cfg.enabled


def test_errors_name_file_line_and_key(config_dir: Path) -> None:
    bad = (GOOD.replace('password = "env:SMTP_PASSWORD"', 'password = "hunter2"')
           .replace('regions = ["ouest"]', 'regions = ["oeust"]')
           .replace('receivers = ["manager-ouest"]', 'receivers = ["manager-oest"]')
           .replace('after = "5m"', 'after = "soon"')
           .replace('states = ["WARNING", "CRITICAL"]', 'states = ["UNREACHABLE"]')
           .replace('format = "text"', 'format = "text"\nretry = 3'))
    net = with_alerts(config_dir, bad)
    found = {(i.key, i.line): i.message for i in issues_of(config_dir)}
    assert all(i.file.endswith("network.toml") for i in issues_of(config_dir))
    start = line_of(net, "[alerts]")
    expected = {
        ("alerts.receivers.noc-mail.password", line_of(net, 'password = "hunter2"', start)): "never literal",
        ("alerts.rules[0].regions", line_of(net, 'regions = ["oeust"]', start)): "did you mean 'ouest'",
        ("alerts.rules[0].escalate[0].receivers", line_of(net, 'receivers = ["manager-oest"]', start)):
            "did you mean 'manager-ouest'",
        ("alerts.rules[0].after", line_of(net, 'after = "soon"', start)): "not a duration",
        ("alerts.rules[1].states", line_of(net, 'states = ["UNREACHABLE"]', start)): "UNREACHABLE never alerts",
        ("alerts.receivers.chat.retry", line_of(net, "retry = 3", start)): "did you mean 'retries'",
    }
    for where, needle in expected.items():
        assert where in found, (where, found)
        assert needle in found[where]


def test_unknown_site_receiver_and_literal_header(config_dir: Path) -> None:
    with_alerts(config_dir, """
[alerts.receivers.hook]
kind = "webhook"
url = "https://chat.example.dz/hooks/abc"
headers = { Authorization = "Bearer abc" }

[alerts.receivers.pager]
kind = "pager"

[[alerts.rules]]
sites = ["bplp-311", "bplp-3*"]
receivers = ["hook", "sms"]
""")
    messages = {i.key: i.message for i in issues_of(config_dir)}
    assert "credential" in messages["alerts.receivers.hook.headers.Authorization"]
    assert "must be one of" in messages["alerts.receivers.pager.kind"]
    assert "unknown site 'bplp-311'" in messages["alerts.rules[0].sites"]
    assert "unknown receiver 'sms'" in messages["alerts.rules[0].receivers"]


def test_rule_without_selectors_matches_default_states() -> None:
    cfg = parse_alerts({"receivers": {"c": {"kind": "command", "command": ["true"]}}, "rules": [{"receivers": ["c"]}]})
    (rule,) = cfg.rules
    site = Site("s", "S")
    assert rule.matches("DOWN", site, None) and rule.matches("CRITICAL", site, "s/d/c")
    assert not rule.matches("WARNING", site, "s/d/c") and not rule.matches("DEGRADED", site, None)


def test_read_only_policy() -> None:
    assert access_policy({"dashboard": {}}).allows("ack")
    ro = access_policy({"dashboard": {"read_only": True}})
    assert not ro.allows("ack") and "read_only" in ro.reason
    assert access_policy({}, read_only=True).reason == "--read-only"
    with pytest.raises(ReadOnlyError):
        ro.require("maintenance.add")
    with pytest.raises(ValueError):
        ro.allows("launch-missiles")
