"""Site leases in the central PostgreSQL store: which collector of a group polls which site now.

PostgreSQL does the distributed part (no protocol of our own):
- a collector holds a session-level advisory lock on its id for as long as it runs, so a second process
  with the same id is refused, and a collector killed with `kill -9` is seen gone as soon as the server
  closes its session (the kernel closes its socket);
- `national_leases` has one row per site: its owner and an expiry the owner renews at every heartbeat, in
  the database's clock (collectors' clocks never need to agree);
- live members of a group are the collectors holding their lock whose heartbeat is younger than the lease
  time; each site's wanted owner is the member with the highest rendezvous hash of (member, site), so every
  member computes the same split and a member leaving or joining moves only its own share of sites.
A lease is taken only when free: released, expired, or held by a collector whose lock is gone. After
(re)connecting, a collector takes none from others for one lease time, so the members of a group that
all lost the server at once get back their own sites rather than each other's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bibnet_ops.engine import CheckSeed
from bibnet_ops.national._central import seeds_from_rows
from bibnet_ops.national._share import Share
from bibnet_ops.store import StoreError

__all__ = ["CollectorIdInUse", "LeaseManager", "LeasePlan", "wanted_owner"]

_LOCK_CLASS = 0x6269626E  # "bibn": the first key of every collector's advisory lock


class CollectorIdInUse(StoreError):
    """Another running collector holds this collector id."""


def wanted_owner(site: str, members: Iterable[str]) -> str | None:
    """The member that should poll `site` (rendezvous hashing: stable as members come and go)."""
    best: tuple[int, str] | None = None
    for member in members:
        weight = int.from_bytes(hashlib.blake2b(f"{member}\0{site}".encode(), digest_size=8).digest(), "big")
        if best is None or (weight, member) > best:
            best = (weight, member)
    return best[1] if best else None


@dataclass
class LeasePlan:
    """What a tick decided: sites lost (someone else holds them now), to release (hand over) and gained."""

    lost: set[str] = field(default_factory=set)
    lost_since: dict[str, float] = field(default_factory=dict)  # when the new owner took it (local clock)
    release: set[str] = field(default_factory=set)
    members: list[str] = field(default_factory=list)


class LeaseManager:
    """One collector's membership and leases (one asyncio task uses it).

    Args:
        conninfo: the central store's libpq URL.
        password: a password from a reference, else None (URL, PGPASSWORD or ~/.pgpass).
        share: the collector's id, lease group and candidate sites.
        failover_delay: seconds after which a silent member's sites are taken over.
        host: this machine's name (shown to an operator starting a second collector with the same id).
        pid: this process's id.
    """

    def __init__(self, conninfo: str, password: str | None, share: Share, *, failover_delay: float = 20.0,
                 host: str = "", pid: int = 0) -> None:
        self.conninfo = conninfo
        self.password = password
        self.share = share
        self.me = share.collector_id
        self.failover_delay = failover_delay
        self.tick = max(0.5, failover_delay / 10)
        self.ttl = max(1.0, failover_delay - 2 * self.tick)
        self.host = host
        self.pid = pid
        self.owned: set[str] = set()
        self._conn: Any = None
        self._connected_at = 0.0

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    # ------------------------------------------------------------------ connection
    async def connect(self) -> None:
        """Open the session, take the id's lock, register; raise CollectorIdInUse if another holds the id."""
        import psycopg

        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 5}
        if self.password is not None:
            kwargs["password"] = self.password
        try:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, **kwargs)
        except psycopg.Error as exc:
            raise _error(exc, self.conninfo, self.password) from None
        try:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                                            (_LOCK_CLASS, self.me))).fetchone()
            if row is None or not row[0]:
                holder = await (await conn.execute(
                    "SELECT host, pid, extract(epoch FROM now() - heartbeat) FROM national_collectors WHERE id = %s",
                    (self.me,))).fetchone()
                await conn.close()
                where = f" on {holder[0] or '?'} (pid {holder[1]}, last heartbeat {float(holder[2] or 0):.0f} s ago)" \
                    if holder else ""
                raise CollectorIdInUse(f"collector id '{self.me}' is already in use by a running collector{where}: "
                                       f"stop it, or give this one another --collector-id")
            await conn.execute(
                "INSERT INTO national_collectors (id, grp, host, pid, started, heartbeat, stopped) "
                "VALUES (%s, %s, %s, %s, now(), now(), NULL) ON CONFLICT (id) DO UPDATE SET "
                "grp = excluded.grp, host = excluded.host, pid = excluded.pid, started = excluded.started, "
                "heartbeat = now(), stopped = NULL",
                (self.me, self.share.group, self.host, self.pid))
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO national_leases (site, grp) VALUES (%s, %s) ON CONFLICT (site) DO NOTHING",
                    [(s, self.share.group) for s in self.share.sites])
        except psycopg.Error as exc:
            await conn.close()
            raise _error(exc, self.conninfo, self.password) from None
        self._conn = conn
        self._connected_at = time.monotonic()

    async def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken session is gone anyway
                await conn.close()

    # ------------------------------------------------------------------ one heartbeat
    async def plan(self, health: dict[str, Any]) -> LeasePlan:
        """Heartbeat, renew what we hold, and decide what to hand over (call `release` after flushing)."""
        conn = self._conn
        assert conn is not None
        await conn.execute("UPDATE national_collectors SET heartbeat = now(), health = %s WHERE id = %s",
                           (json.dumps(health), self.me))
        members = await self._members()
        renewed = {r[0] for r in await (await conn.execute(
            "UPDATE national_leases SET expires = now() + make_interval(secs => %s) "
            "WHERE owner = %s AND site = ANY(%s) RETURNING site", (self.ttl, self.me, sorted(self.owned)))).fetchall()}
        plan = LeasePlan(lost=self.owned - renewed, members=members)
        if plan.lost:
            rows = await (await conn.execute(
                "SELECT site, extract(epoch FROM since), extract(epoch FROM now()) FROM national_leases "
                "WHERE site = ANY(%s)", (sorted(plan.lost),))).fetchall()
            for site, since, now_db in rows:
                offset = float(now_db) - time.time()  # the database's clock against ours
                plan.lost_since[site] = (float(since) if since is not None else float(now_db)) - offset
        self.owned &= renewed
        if self.me in members and len(members) > 1:
            plan.release = {s for s in self.owned if wanted_owner(s, members) != self.me}
        return plan

    async def release(self, sites: set[str]) -> None:
        """Hand sites over: only once they are no longer polled and their history is in the central store."""
        if sites:
            await self._conn.execute("UPDATE national_leases SET owner = NULL, expires = NULL "
                                     "WHERE owner = %s AND site = ANY(%s)", (self.me, sorted(sites)))
            self.owned -= sites

    async def acquire(self, members: list[str]) -> tuple[set[str], dict[str, CheckSeed]]:
        """Take the free leases of the sites we are the wanted owner of; their checks' seeds from the store."""
        pool = members if self.me in members else [*members, self.me]
        wanted = [s for s in self.share.sites if s not in self.owned and wanted_owner(s, pool) == self.me]
        if not wanted:
            return set(), {}
        async with self._conn.cursor() as cur:  # sites added to the share by a reload have no lease row yet
            await cur.executemany(
                "INSERT INTO national_leases (site, grp) VALUES (%s, %s) ON CONFLICT (site) DO NOTHING",
                [(s, self.share.group) for s in wanted])
        grace = time.monotonic() - self._connected_at < self.ttl
        taken = {r[0] for r in await (await self._conn.execute(
            "UPDATE national_leases l SET owner = %s, expires = now() + make_interval(secs => %s), since = now(), "
            "epoch = epoch + 1 WHERE site = ANY(%s) AND (owner IS NULL OR owner = %s OR (NOT %s AND "
            "(expires < now() OR NOT EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted "
            "AND k.classid = %s::bigint::oid AND k.objid = (hashtext(l.owner)::bigint & 4294967295)::oid)))) "
            "RETURNING site", (self.me, self.ttl, wanted, self.me, grace, _LOCK_CLASS))).fetchall()}
        self.owned |= taken
        seeds = await self.seeds(taken)
        return taken, seeds

    async def seeds(self, sites: set[str]) -> dict[str, CheckSeed]:
        """The latest forwarded state of every check of these sites."""
        if not sites:
            return {}
        rows = await (await self._conn.execute(
            "SELECT check_name, status, hard, hard_status, since, reason FROM national_check_state "
            "WHERE site = ANY(%s)", (sorted(sites),))).fetchall()
        return seeds_from_rows(rows)

    async def _members(self) -> list[str]:
        rows = await (await self._conn.execute(
            "SELECT c.id FROM national_collectors c WHERE c.grp = %s AND c.stopped IS NULL "
            "AND c.heartbeat > now() - make_interval(secs => %s) AND EXISTS (SELECT 1 FROM pg_locks k "
            "WHERE k.locktype = 'advisory' AND k.granted AND k.classid = %s::bigint::oid "
            "AND k.objid = (hashtext(c.id)::bigint & 4294967295)::oid) ORDER BY c.id",
            (self.share.group, self.ttl, _LOCK_CLASS))).fetchall()
        return [r[0] for r in rows]

    async def stop(self) -> None:
        """Leave the group: release every lease (the others take the sites at once) and mark the stop."""
        if self.connected:
            try:
                await self._conn.execute("UPDATE national_leases SET owner = NULL, expires = NULL WHERE owner = %s",
                                         (self.me,))
                await self._conn.execute("UPDATE national_collectors SET stopped = now() WHERE id = %s", (self.me,))
            except Exception:  # leaving is best effort: leases expire anyway
                pass
        self.owned.clear()
        await self.disconnect()


def _error(exc: BaseException, conninfo: str, password: str | None) -> StoreError:
    """The store's own one-line error (password never shown): unreachable, refused login, bad database."""
    from bibnet_ops.store._pg_conn import pg_error, redact_dsn

    return pg_error(exc, redact_dsn(conninfo), [password or ""])
