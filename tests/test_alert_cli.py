"""`bibnet-ops ack add|list|remove|log` on a real store, as a subprocess would run it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bibnet_ops.alerts import AlertLog
from bibnet_ops.cli import main

REPO = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(REPO / "config"), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_ack_cycle_is_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "bibnet.db")
    log = AlertLog(db)
    log.open_alert("site:bplp-31", "bplp-31", None, "DOWN", time.time() - 600, time.time() - 300,
                   "no answer", ["bplp-13"])
    log.close()
    code, out, _ = run(capsys, "ack", "add", "bplp-31", "bplp-16/catalogue/opac", "-m", "fibre cut, Algérie Télécom",
                       "--expires", "2h", "--store", db)
    assert code == 0
    assert "acknowledged site:bplp-31" in out and "no alert open" in out.splitlines()[1]
    code, out, _ = run(capsys, "ack", "list", "--store", db)
    assert code == 0 and "ACK" in out and "fibre cut" in out and "1 site(s) behind" in out
    code, out, _ = run(capsys, "ack", "list", "--json", "--store", db)
    data = json.loads(out)
    assert data["alerts"][0]["ack"]["comment"] == "fibre cut, Algérie Télécom"
    assert {a["key"] for a in data["acks"]} == {"site:bplp-31", "bplp-16/catalogue/opac"}
    code, out, _ = run(capsys, "ack", "remove", "bplp-31", "--store", db)
    assert code == 0 and "removed the ack of site:bplp-31" in out
    code, out, _ = run(capsys, "ack", "log", "--store", db)
    assert [line.split()[3] for line in out.splitlines()] == ["unack", "ack", "ack"]


def test_unknown_target_exits_2_with_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(capsys, "ack", "add", "bplp-311", "-m", "x", "--store", str(tmp_path / "db"))
    assert info.value.code == 2
    assert "did you mean 'bplp-31'" in capsys.readouterr().err


def test_bad_expiry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="--expires"):
        run(capsys, "ack", "add", "bplp-31", "-m", "x", "--expires", "tomorrow", "--store", str(tmp_path / "db"))
