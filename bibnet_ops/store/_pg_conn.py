"""Reaching a PostgreSQL store: DSNs shown without their password, one-line errors, and a pool per DSN.

Every connection is autocommit (the store opens its own transactions), loads `numeric` as float (so
`t / 1000.0` gives the same float as SQLite does) and, for readers, is read-only at the session level.
A process keeps one small pool per (DSN, password, read-only): a dashboard opening a reader per refresh
borrows a connection instead of logging in again.
"""

from __future__ import annotations

import atexit
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bibnet_ops.store._api import StoreError, StoreUnreachableError

__all__ = ["PgDsn", "QmarkConn", "is_postgres_url", "pg_error", "redact_dsn"]

_SCHEMES = ("postgresql://", "postgres://")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.I)
CONNECT_TIMEOUT = 10  # seconds libpq waits for a server (a dead host must not stall a collector for long)


def is_postgres_url(target: object) -> bool:
    """Whether a store target names a PostgreSQL database (`postgresql://…` or `postgres://…`)."""
    return isinstance(target, str) and target.lower().startswith(_SCHEMES)


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by `***` (in the URL's userinfo, its query or key=value form)."""
    text = _QUERY_PASSWORD.sub(r"\1***", _KEYWORD_PASSWORD.sub(r"\1***", dsn))
    if not is_postgres_url(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", text)
    if parts.password is None:
        return text
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def pg_error(exc: BaseException, name: str, secrets: Sequence[str] = ()) -> StoreError:
    """A one-line StoreError for a psycopg failure, naming the store and never its password.

    Connection failures (nothing listening, unknown host, server gone) become StoreUnreachableError, which a
    collector treats as "keep the events for later"; a refused login or a bad DSN stays a plain StoreError.
    """
    import psycopg

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"^connection failed:\s*", "", text)
    text = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed:\s*', "", text)
    text = re.sub(r"^(FATAL:|connection is bad:)\s*", "", text)
    if text.endswith("Connection refused"):
        text = "nothing listening there (Connection refused): is PostgreSQL running, on that address and port?"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    message = f"cannot use history store {name}: {text}"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction):
        message = (f"history store {name} refused the change: {text} "
                   f"(the role connected may not do this: see the roles in docs/store.md)")
    refused_login = "password authentication failed" in text or "no password supplied" in text
    if isinstance(exc, psycopg.OperationalError) and not refused_login and "does not exist" not in text:
        return StoreUnreachableError(message)
    return StoreError(message)


class PgDsn:
    """A PostgreSQL store's address: the DSN as given, a password from elsewhere, and its pools.

    Args:
        dsn: a libpq URL (may hold a password: it is only ever shown redacted).
        password: a password resolved from a reference (`[collector] store_password`); None leaves it to
            the URL, PGPASSWORD or ~/.pgpass, which libpq reads.
    """

    def __init__(self, dsn: str, password: str | None = None) -> None:
        import psycopg

        self.dsn = dsn
        self.password = password
        self.name = redact_dsn(dsn)
        try:
            self.params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise StoreError(f"history store {self.name} is not a valid PostgreSQL URL: {_one_line(exc)}") from None
        self._secrets = [s for s in (password, str(self.params.get("password") or "")) if s]

    def connect_kwargs(self, readonly: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}
        if self.password is not None:
            kwargs["password"] = self.password
        if readonly:  # added to the URL's own options (a search_path, say), not instead of them
            given = str(self.params.get("options") or "")
            kwargs["options"] = f"{given} -c default_transaction_read_only=on".strip()
        kwargs.setdefault("application_name", "bibnet-ops")
        return kwargs

    def connect(self, readonly: bool = False) -> Any:
        """A new connection of its own (for `store init` and the writer's long-lived session)."""
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, **self.connect_kwargs(readonly))
        except psycopg.Error as exc:
            raise self.error(exc) from None
        _configure(conn)
        return conn

    def error(self, exc: BaseException) -> StoreError:
        return pg_error(exc, self.name, self._secrets)

    @contextmanager
    def borrow(self, readonly: bool) -> Iterator[Any]:
        """A connection from this process's pool for the DSN (opened, and its errors raised, on first use)."""
        pool = _pool(self, readonly)
        try:
            conn = pool.getconn()
        except Exception as exc:
            raise self.error(exc) from None
        try:
            yield conn
        finally:
            pool.putconn(conn)


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _configure(conn: Any) -> None:
    from psycopg.types.numeric import FloatLoader

    conn.adapters.register_loader("numeric", FloatLoader)


_pools: dict[tuple[str, str | None, bool], Any] = {}
_pools_lock = threading.Lock()


def _pool(dsn: PgDsn, readonly: bool) -> Any:
    from psycopg_pool import ConnectionPool

    key = (dsn.dsn, dsn.password, readonly)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            dsn.connect(readonly).close()  # the real reason of a failure, not a pool timeout
            pool = ConnectionPool(
                dsn.dsn,
                kwargs=dsn.connect_kwargs(readonly),
                min_size=1,
                max_size=4,
                timeout=CONNECT_TIMEOUT,
                configure=_configure,
                check=ConnectionPool.check_connection,
                name=f"bibnet-{'ro' if readonly else 'rw'}",
                open=True,
            )
            _pools[key] = pool
        return pool


@atexit.register
def close_pools() -> None:
    """Close every pool of this process (at exit, and in tests that stop the server)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close(timeout=1.0)


class QmarkConn:
    """A psycopg connection seen through the SQLite mixins' dialect: `?` placeholders, `execute` returning rows.

    Only the device-spans upkeep shared with SQLite (`_device_spans.py`) speaks through it; its statements hold
    no `%` and no `?` other than placeholders.
    """

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s"), tuple(params) if params else None)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cur = self.raw.cursor()
        if rows:
            cur.executemany(sql.replace("?", "%s"), rows)
        return cur

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)
