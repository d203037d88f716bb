"""One way to open a history store from what the user gave: a SQLite path or a `postgresql://` URL.

`resolve_store` turns `--store`, `[collector] store` and `[collector] store_password` into a
`StoreTarget`; `open_store` opens it. A target prints redacted (`postgresql://ops:***@host/db`), so it
can be shown in logs, errors and `config show` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bibnet_ops.model import SecretError, SecretRef
from bibnet_ops.store._api import HistoryStore, StoreError
from bibnet_ops.store._paths import default_store_path
from bibnet_ops.store._pg_conn import is_postgres_url, redact_dsn
from bibnet_ops.store._sqlite_retention import Retention

__all__ = ["StoreLike", "StoreTarget", "open_store", "resolve_store", "store_exists"]


@dataclass(frozen=True)
class StoreTarget:
    """Where a history store lives: a SQLite file, or a PostgreSQL database and how to log in to it.

    Args:
        location: the SQLite path, or the libpq URL as given (a password in it is never shown).
        password: `[collector] store_password`, a reference resolved when the store is opened.
    """

    location: str
    password: SecretRef | None = None

    @property
    def is_postgres(self) -> bool:
        return is_postgres_url(self.location)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a PostgreSQL store."""
        return None if self.is_postgres else Path(self.location)

    @property
    def display(self) -> str:
        """What to show of the target: the path, or the URL with its password replaced by ***."""
        return redact_dsn(self.location) if self.is_postgres else self.location

    def __str__(self) -> str:
        return self.display

    def __repr__(self) -> str:
        ref = f", password={self.password.redacted()}" if self.password is not None else ""
        return f"StoreTarget({self.display!r}{ref})"

    def resolve_password(self) -> str | None:
        """The password from its reference (None without one: libpq then reads PGPASSWORD or ~/.pgpass)."""
        if self.password is None:
            return None
        try:
            return self.password.resolve()
        except SecretError as exc:
            raise StoreError(f"cannot use history store {self.display}: store_password: {exc}") from None


StoreLike = StoreTarget | Path | str


def resolve_store(
    store: StoreLike | None, settings: dict[str, Any] | None = None, config_dir: str | Path | None = None
) -> StoreTarget:
    """The store to use: `store` if given (a path, a URL or a target), else `[collector] store`, else the default.

    A relative path in network.toml is relative to the inventory directory; `[collector] store_password`
    applies to a PostgreSQL URL that carries no password of its own, wherever the URL came from.
    """
    if isinstance(store, StoreTarget):
        return store
    collector = (settings or {}).get("collector") or {}
    password_ref = collector.get("store_password")
    if store is None or store == "":
        configured = collector.get("store")
        if not configured:
            return StoreTarget(str(default_store_path()))
        store, relative_to = str(configured), config_dir
    else:
        relative_to = None
    text = str(store)
    if is_postgres_url(text):
        ref = None
        if password_ref and not _has_password(text):
            ref = password_ref if isinstance(password_ref, SecretRef) else SecretRef(
                str(password_ref), Path(config_dir) if config_dir is not None else None
            )
        return StoreTarget(text, ref)
    path = Path(text).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = Path(relative_to) / path
    return StoreTarget(str(path))


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password is not None or "password=" in url.lower()
    except ValueError:
        return False


def open_store(
    target: StoreLike,
    *,
    readonly: bool = False,
    timezone: str = "Africa/Algiers",
    retention: Retention | None = None,
) -> HistoryStore:
    """Open a history store: SQLite for a path, PostgreSQL for a `postgresql://` URL.

    Raises:
        StoreError: with a one-line message naming the store (password redacted); SchemaTooNewError for a
            store written by a newer bibnet-ops; StoreUnreachableError when its server cannot be reached.
    """
    target = target if isinstance(target, StoreTarget) else resolve_store(target)
    if target.is_postgres:
        from bibnet_ops.store._pg import PgStore

        return PgStore(
            target.location,
            password=target.resolve_password(),
            readonly=readonly,
            timezone=timezone,
            retention=retention,
        )
    from bibnet_ops.store._sqlite import SqliteStore

    return SqliteStore(target.location, readonly=readonly, timezone=timezone, retention=retention)


def store_exists(target: StoreLike) -> bool:
    """Whether there may be history to read: a SQLite file that exists, or any PostgreSQL store (its errors
    come when it is opened)."""
    resolved = resolve_store(target)
    return resolved.path is None or resolved.path.exists()
