"""Reading selected rows of an SNMP table for the snmp probe: walk now and then, GET by cached index.

The shipped switch template checks one named interface every 30 s. Walking the name and status
columns for that costs several GETBULK exchanges whose replies carry every row; instead each device's
name -> index map (per agent address and name column) is kept, and the wanted rows are read with one
GET of the value and name columns at the known indexes, plus sysUpTime. The map is dropped and the
table walked again when it is older than `max_age`, when the device rebooted (sysUpTime went back),
or when the GET shows that the mapping no longer holds (an index gone, or another name at it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass

from bibnet_ops.probes._snmp_batch import snmp_get
from bibnet_ops.probes._snmp_session import Credentials, SnmpError, SnmpValue, Target, snmp_walk_columns

__all__ = ["SYS_UPTIME", "TableRows", "forget_index_cache", "read_rows", "uptime_seconds"]

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# beyond this many wanted names one GET grows large (tooBig on small agents): walk instead
_MAX_GET_NAMES = 16
# rows asked per GETBULK while a column's size is unknown: every row past the column's end is decoded for
# nothing (pysnmp's decoding is most of a walk's cost), and a small switch has a handful of interfaces
_FIRST_REPETITIONS = 10


@dataclass
class _IndexMap:
    """Where each name sat in a device's table at the last walk."""

    indexes: dict[str, tuple[str, ...]]
    uptime: float | None
    walked: float
    names: dict[str, str]  # index -> name, for reads of every row


@dataclass(frozen=True)
class TableRows:
    """The rows read: (index, name, value) in index order, the device uptime if read, the time taken."""

    rows: list[tuple[str, str, SnmpValue]]
    uptime: float | None
    elapsed: float
    cached: bool = False
    empty: bool = False  # the value column had no row at all


_maps: dict[tuple[str, int, str], _IndexMap] = {}
# rows each column had at its last walk, so the next walk asks for just enough in one GETBULK
_sizes: dict[tuple[str, int, str], int] = {}


def forget_index_cache() -> None:
    """Drop every cached name -> index map (the next read of each table walks it)."""
    _maps.clear()
    _sizes.clear()


def uptime_seconds(values: dict[str, SnmpValue]) -> float | None:
    """sysUpTime in seconds from a GET's values, or None when absent."""
    uptime = values.get(SYS_UPTIME)
    if uptime is None or not uptime.is_numeric:
        return None
    return int(uptime.value or 0) / 100.0


def _index_key(index: str) -> tuple[int, ...]:
    return tuple(int(p) for p in index.split(".") if p.isdigit())


async def _walk(target: Target, creds: Credentials, base: str, deadline: float) -> list[tuple[str, SnmpValue]]:
    return (await _walk_columns(target, creds, [base], deadline))[0]


async def _walk_columns(
    target: Target, creds: Credentials, bases: list[str], deadline: float
) -> list[list[tuple[str, SnmpValue]]]:
    """Walk columns of one table side by side, as many rows per request as the first column had last time."""
    key = (target.host, target.port, bases[0])
    known = _sizes.get(key)
    repetitions = min(max(known + 1, 2), 50) if known is not None else _FIRST_REPETITIONS
    columns, _ = await snmp_walk_columns(target, creds, bases, repetitions, deadline=deadline)
    if len(_sizes) > 50_000:
        _sizes.clear()
    _sizes[key] = len(columns[bases[0]])
    return [columns[base] for base in bases]


async def _walk_table(
    target: Target, creds: Credentials, base: str, names_oid: str | None, deadline: float
) -> tuple[list[tuple[str, SnmpValue]], list[tuple[str, SnmpValue]] | None]:
    """The value column's rows and, when asked, the name column's, walked side by side."""
    if names_oid is None:
        return await _walk(target, creds, base, deadline), None
    values, names = await _walk_columns(target, creds, [base, names_oid], deadline)
    return values, names


async def read_rows(
    target: Target,
    creds: Credentials,
    base: str,
    names_oid: str | None,
    wanted: Collection[str],
    *,
    deadline: float,
    max_age: float,
    with_uptime: bool = False,
) -> TableRows:
    """Read column `base` for the rows named in `wanted` (every row when empty), named by `names_oid`.

    Args:
        target: agent address and timeout.
        creds: resolved credentials.
        base: numeric OID of the value column.
        names_oid: numeric OID of the name column (rows are then named by it), or None for bare indexes.
        wanted: the names to read; empty reads every row (always a walk).
        deadline: `loop.time()` by which everything must be done.
        max_age: seconds a name -> index map is trusted before the table is walked again.
        with_uptime: also read sysUpTime (always read when a map is used or built).

    Returns:
        The rows (only the wanted names when `wanted` is set; names absent from the table are absent).

    Raises:
        SnmpError: as the underlying requests do.
    """
    started = time.monotonic()
    cacheable = names_oid is not None and 0 < len(wanted) <= _MAX_GET_NAMES
    if names_oid is not None:
        key = (target.host, target.port, names_oid)
        known = _maps.get(key)
        fresh = known is not None and started - known.walked < max_age
        if cacheable and known is not None and fresh and all(n in known.indexes for n in wanted):
            rows, uptime = await _get_known(target, creds, base, names_oid, wanted, known, deadline)
            if rows is not None:
                return TableRows(rows, uptime, time.monotonic() - started, cached=True)
            _maps.pop(key, None)
        elif not wanted and known is not None and fresh:
            named = await _walk_named(target, creds, base, known, deadline)
            if named is not None:
                return TableRows(named[0], named[1], time.monotonic() - started, cached=True, empty=not named[0])
            _maps.pop(key, None)
    with_uptime = with_uptime or names_oid is not None
    (value_rows, name_rows), uptime = await asyncio.gather(
        _walk_table(target, creds, base, names_oid, deadline),
        _uptime(target, creds, deadline) if with_uptime else _nothing(),
    )
    if names_oid is None or name_rows is None:
        rows = [(i, i, v) for i, v in value_rows]
        if wanted:
            rows = [row for row in rows if row[1] in wanted]
        return TableRows(rows, uptime, time.monotonic() - started, empty=not value_rows)
    names = {index: str(v.value) for index, v in name_rows if v.value is not None}
    if value_rows:
        indexes: dict[str, list[str]] = {}
        for index, _ in value_rows:
            if index in names:
                indexes.setdefault(names[index], []).append(index)
        if len(_maps) > 50_000:
            _maps.clear()
        _maps[(target.host, target.port, names_oid)] = _IndexMap(
            {name: tuple(found) for name, found in indexes.items()}, uptime, time.monotonic(), names
        )
    rows = [(index, names.get(index, index), value) for index, value in value_rows]
    if wanted:
        rows = [row for row in rows if row[1] in wanted]
    return TableRows(rows, uptime, time.monotonic() - started, empty=not value_rows)


async def _walk_named(
    target: Target, creds: Credentials, base: str, known: _IndexMap, deadline: float
) -> tuple[list[tuple[str, str, SnmpValue]], float | None] | None:
    """Walk the value column only, naming its rows from the known map; None when the map no longer holds."""
    value_rows, uptime = await asyncio.gather(_walk(target, creds, base, deadline), _uptime(target, creds, deadline))
    if uptime is not None and known.uptime is not None and uptime < known.uptime:
        return None  # rebooted: interfaces may have been renumbered
    rows_then = sum(len(found) for found in known.indexes.values())
    if len(value_rows) != rows_then or any(index not in known.names for index, _ in value_rows):
        return None  # an interface appeared or went away
    known.uptime = uptime
    return [(index, known.names[index], value) for index, value in value_rows], uptime


async def _nothing() -> None:
    return None


async def _uptime(target: Target, creds: Credentials, deadline: float) -> float | None:
    values, _ = await snmp_get(target, creds, [SYS_UPTIME], deadline)
    return uptime_seconds(values)


async def _get_known(
    target: Target,
    creds: Credentials,
    base: str,
    names_oid: str,
    wanted: Collection[str],
    known: _IndexMap,
    deadline: float,
) -> tuple[list[tuple[str, str, SnmpValue]] | None, float | None]:
    """GET the wanted rows at their known indexes; (None, None) when the map turns out to be stale."""
    indexes = sorted({i for name in wanted for i in known.indexes[name]}, key=_index_key)
    oids = [SYS_UPTIME, *(f"{base}.{i}" for i in indexes), *(f"{names_oid}.{i}" for i in indexes)]
    try:
        values, _ = await snmp_get(target, creds, oids, deadline)
    except SnmpError as exc:
        if exc.reason.startswith("agent ") and " answered " in exc.reason:
            return None, None  # an error status (noSuchName from a v1-ish agent): walk to see
        raise
    uptime = uptime_seconds(values)
    if uptime is not None and known.uptime is not None and uptime < known.uptime:
        return None, None  # rebooted: interfaces may have been renumbered
    expected = {i: name for name in wanted for i in known.indexes[name]}
    rows: list[tuple[str, str, SnmpValue]] = []
    for index in indexes:
        name, value = values[f"{names_oid}.{index}"], values[f"{base}.{index}"]
        if name.missing or value.missing or str(name.value) != expected[index]:
            return None, None  # the interface was removed or renumbered
        rows.append((index, expected[index], value))
    known.uptime = uptime
    return rows, uptime
