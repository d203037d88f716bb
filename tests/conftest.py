"""Test-wide settings: no test writes history into the real user's data directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _postgres import PgServer, run_postgres


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # subprocesses inherit the variable, so `bibnet-ops collect` in a test stores under a temp dir too
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server shared by the session's tests (each test takes its own database)."""
    with run_postgres() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """The superuser's URL of a fresh, empty database on the shared test server."""
    return pg_server.dsn(pg_server.create_database())
