"""`bibnet-ops store init|migrate|status` and `--store postgresql://…` as the user runs them, on a real server.

The roles are checked where it matters: connected as the reader, PostgreSQL itself refuses every change,
whatever the client sends.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from _postgres import SUPERPASS, PgServer
from test_cli_check import config

from bibnet_ops.cli import main
from bibnet_ops.store import PG_SCHEMA_VERSION

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1", "WRITER_PW": "w-secret-1", "READER_PW": "r-secret-2",
       "OPERATOR_PW": "o-secret-3"}


def bibnet(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "bibnet_ops", "--config", str(REPO / "config"), *args],
                          capture_output=True, text=True, env=env or ENV, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def roles(pg_server: PgServer) -> dict[str, str]:
    """A store set up by `store init` with its three roles; their URLs by kind (owner: the superuser)."""
    db = pg_server.create_database()
    suffix = db.rsplit("_", 1)[1]  # roles are cluster-wide: each test its own
    names = {"writer": f"w_{suffix}", "reader": f"r_{suffix}", "operator": f"o_{suffix}"}
    code, out, err = bibnet("store", "init", pg_server.dsn(db), "--writer-role", names["writer"],
                            "--writer-password", "env:WRITER_PW", "--reader-role", names["reader"],
                            "--reader-password", "env:READER_PW", "--operator-role", names["operator"],
                            "--operator-password", "env:OPERATOR_PW")
    assert code == 0, err
    assert f"schema version 0 -> {PG_SCHEMA_VERSION}" in out and f"reader role {names['reader']}: created" in out
    assert SUPERPASS not in out + err
    pw = {"writer": "w-secret-1", "reader": "r-secret-2", "operator": "o-secret-3"}
    urls = {kind: pg_server.dsn(db, user=name, password=pw[kind]) for kind, name in names.items()}
    urls["owner"] = pg_server.dsn(db)
    return urls


def _refused(url: str, statement: str, *before: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in before:
            conn.execute(sql)  # type: ignore[arg-type]
        with pytest.raises(psycopg.Error) as err:
            conn.execute(statement)  # type: ignore[arg-type]
    return str(err.value)


def test_the_reader_cannot_change_anything(roles: dict[str, str]) -> None:
    reader = roles["reader"]
    for statement in (
        "INSERT INTO acks (key, author, created_at) VALUES ('site:x', 'mallory', 0)",
        "UPDATE maintenance SET reason = 'x'",
        "DELETE FROM transitions",
        "TRUNCATE audit",
        "DROP TABLE transitions",
        "CREATE TABLE mine (x int)",
    ):
        message = _refused(reader, statement)
        assert "read-only transaction" in message or "permission denied" in message, (statement, message)
    # even a modified client that turns the session read-write meets the grants
    message = _refused(reader, "INSERT INTO checks (name, site, device) VALUES ('a/b/c', 'a', 'b')",
                       "SET default_transaction_read_only = off")
    assert "permission denied for table checks" in message
    with psycopg.connect(reader, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM transitions").fetchone() == (0,)
    # what the user sees from the command line: one line, exit 2, no password
    code, _, err = bibnet("maintenance", "--store", reader, "add", "--site", "bplp-31", "--duration", "1h",
                            "--reason", "test")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "read-only transaction" in err or "permission denied" in err
    assert "r-secret-2" not in err and "Traceback" not in err
    code, _out, err = bibnet("ack", "add", "bplp-31", "-m", "x", "--store", reader)
    assert code == 2 and "refused the change: cannot execute UPDATE in a read-only transaction" in err, err
    assert "Traceback" not in err


def test_the_writer_writes_history_but_no_ddl_and_no_audit_erasure(roles: dict[str, str]) -> None:
    writer = roles["writer"]
    with psycopg.connect(writer, autocommit=True) as conn:
        conn.execute("INSERT INTO checks (name, site, device) VALUES ('a/b/c', 'a', 'b')")
        conn.execute("INSERT INTO transitions (check_id, t, old, new, hard) SELECT id, 1, 'OK', 'CRITICAL', 1 "
                     "FROM checks")
        conn.execute("DELETE FROM transitions")  # retention
    assert "permission denied for table audit" in _refused(writer, "DELETE FROM audit")
    assert "permission denied for table alert_audit" in _refused(writer, "UPDATE alert_audit SET who = 'x'")
    assert "must be owner of table transitions" in _refused(writer, "DROP TABLE transitions")
    assert "permission denied for schema public" in _refused(writer, "CREATE TABLE mine (x int)")


def test_the_operator_acknowledges_and_plans_maintenance_only(roles: dict[str, str]) -> None:
    operator = roles["operator"]
    code, out, err = bibnet("ack", "add", "bplp-31", "-m", "fibre cut", "--store", operator)
    assert code == 0 and "acknowledged site:bplp-31" in out, err
    code, out, err = bibnet("maintenance", "--store", operator, "add", "--site", "bplp-31", "--duration", "1h",
                            "--reason", "onduleur")
    assert code == 0 and "maintenance window 1 added" in out, err
    assert "permission denied for table transitions" in _refused(
        operator, "INSERT INTO transitions (check_id, t, old, new, hard) VALUES (1, 1, 'OK', 'OK', 1)")
    code, out, err = bibnet("maintenance", "--store", roles["reader"], "list", "--audit")
    assert code == 0 and "onduleur" in out and "audit:" in out, err


def test_collect_writes_to_postgres_and_report_reads_it(tmp_path: Path, roles: dict[str, str]) -> None:
    async def scenario() -> tuple[int, str, str]:
        async with config(tmp_path, {"alger": None, "oran": None}, interval=60) as devices:
            devices["oran"].mode = "fail"
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bibnet_ops", "--config", str(tmp_path / "config"), "collect", "--once",
                "--store", roles["writer"], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode is not None
            return proc.returncode, out.decode(), err.decode()

    code, out, err = asyncio.run(scenario())
    assert code == 2, err  # the worst state found: oran is down
    assert "history: postgresql://" in err and "w-secret-1" not in out + err
    assert "oran/web/home  OK -> CRITICAL  HARD" in out
    cfg = str(tmp_path / "config")
    proc = subprocess.run([sys.executable, "-m", "bibnet_ops", "--config", cfg, "report", "--from", "2000-01-01",
                           "--to", "2100-01-01", "--hours", "24x7", "--format", "csv", "--store", roles["reader"]],
                          capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "oran" in proc.stdout and "alger" in proc.stdout
    code, out, err = bibnet("store", "status", roles["reader"])
    assert code == 0 and f"schema version: {PG_SCHEMA_VERSION}\n" in out and "checks:         2" in out
    assert "r-secret-2" not in out


def test_bad_stores_get_one_line_and_exit_2(pg_server: PgServer, tmp_path: Path) -> None:
    db = pg_server.create_database()
    cases = {
        pg_server.dsn(db, password="wrong-one"): "password authentication failed",
        f"postgresql://ops:pw@127.0.0.1:1/{db}": "nothing listening there",
        "postgresql://ops:pw@no-such-host.invalid/bibnet": "no-such-host.invalid",
        "postgresql://ops:pw@127.0.0.1:notaport/bibnet": "postgresql://ops:***@127.0.0.1:notaport/bibnet",
    }
    for url, expected in cases.items():
        for args in (("report", "--month", "2026-01", "--store", url), ("store", "status", url),
                     ("maintenance", "--store", url, "list"), ("ack", "list", "--store", url)):
            code, _out, err = bibnet(*args)
            assert code == 2, (args, err)
            assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
            assert "wrong-one" not in err and ":pw@" not in err, err
    code, _, err = bibnet("store", "init", pg_server.dsn(db))
    assert code == 0, err
    pg_server.sql("INSERT INTO schema_version VALUES (70, 0)", db)
    owner = pg_server.dsn(db)
    for args in (("report", "--month", "2026-01", "--store", owner), ("store", "migrate", owner)):
        code, _, err = bibnet(*args)
        assert code == 2 and "has schema version 70, but this bibnet-ops only knows up to version" in err, err


def test_literal_password_in_network_toml_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "config"
    (root / "sites").mkdir(parents=True)
    (root / "network.toml").write_text(
        '[network]\nname = "t"\n\n[collector]\nstore = "postgresql://ops:hunter2@db.example/bibnet"\n'
        'store_password = "hunter3"\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(root), "config", "validate"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "network.toml:5: [collector.store] literal secret" in err
    assert "network.toml:6: [collector.store_password] literal secret" in err
    assert "hunter2" not in err and "hunter3" not in err


def test_store_init_and_status_on_a_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "region.db")
    code, out, err = bibnet("store", "init", db)
    assert code == 0 and "schema version 0 -> " in out, err
    code, out, err = bibnet("store", "status", db)
    assert code == 0 and f"store:          {db} (sqlite)" in out and "transitions:    0" in out, err
    code, _, err = bibnet("store", "init", db, "--reader-role", "staff")
    assert code == 2 and "roles exist only in a PostgreSQL store" in err
    code, _, err = bibnet("store", "status", str(tmp_path / "missing.db"))
    assert code == 2 and "does not exist" in err and "Traceback" not in err
