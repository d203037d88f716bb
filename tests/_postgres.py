"""A real PostgreSQL server on 127.0.0.1 for tests (Debian's `postgresql` package).

`run_postgres()` runs `initdb` into a temp dir and `pg_ctl start` on a free loopback port, with
password authentication over TCP (scram-sha-256) for the superuser `postgres`, and stops it on exit.
As root, the server runs as the unprivileged `postgres` user (PostgreSQL refuses to run as root).
`PgServer.stop()` and `start()` take the server away and bring it back on the same port, for outage tests;
`create_database()` gives each test an empty database of its own on a shared server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import pytest

__all__ = ["PgServer", "pg_bindir", "require_postgres", "run_postgres"]

SUPERUSER = "postgres"
SUPERPASS = "test-superuser-secret"
_db_numbers = count(1)


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_postgres() -> Path:
    """Skip the calling test, with the reason, where PostgreSQL is not installed."""
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql'; `make test` installs it)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """One running test server: its data dir, port and how to reach it."""

    bindir: Path
    root: Path
    port: int
    host: str = "127.0.0.1"
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = SUPERPASS) -> str:
        """A libpq URL; pass password=None to leave it out (then PGPASSWORD or a .pgpass must give it)."""
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(SUPERPASS + "\n")
        self._run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8")
        pwfile.unlink()

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses={self.host} -k {self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        res = self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
                        "start", check=False)
        if res.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {res.stdout}{res.stderr}\n{self._log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def create_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its name."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_db_numbers)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement as the superuser; return its rows (empty for statements without)."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(statement)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []


@contextmanager
def run_postgres() -> Iterator[PgServer]:
    """A fresh PostgreSQL server for the duration of the block (skips where none is installed)."""
    bindir = require_postgres()
    root = Path(tempfile.mkdtemp(prefix="bibnet-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, SUPERUSER, SUPERUSER)
        server = PgServer(bindir, root, _free_port())
        server.init()
        server.start()
        deadline = time.monotonic() + 30
        while not server.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
