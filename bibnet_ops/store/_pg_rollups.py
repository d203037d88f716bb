"""Rollups in PostgreSQL, packed: one row holds a run of consecutive buckets of one check (a "chunk").

A row per bucket costs PostgreSQL ~50 bytes before any data (tuple header, line pointer, index entry):
more than the aggregate itself, and a year of 2,000 sites is ~16 million buckets. So a row holds `CHUNK[tier]`
buckets: `n` (samples per bucket, NULL where the chunk has no such bucket), `peak` (the bucket's largest
value in thousandths, what percentiles read) and `delta` (counter increments, NULL for checks without a
counter) as arrays SQL slices, sums and counts, and the rest of each bucket's aggregate (`Agg.to_row`) as varints in
`aggs`. Reports sum, count and rank in SQL as on SQLite; only `rollups()` (sparklines) decodes `aggs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bibnet_ops.store._api import Rollup
from bibnet_ops.store._pg_base import _PgBase, tier_table
from bibnet_ops.store._rollup import Agg, bucket_of, bucket_start

__all__ = ["CHUNK", "decode_chunk", "encode_chunk"]

# buckets per row: an hour of minutes, a day of hours, a fortnight of days
CHUNK: dict[str, int] = {"minute": 60, "hour": 24, "day": 16}

# Agg.to_row(): n, failures, lat_n, lat_min, lat_sum, lat_max, v_n, v_min, v_sum, v_max, v_last, delta
_Row = tuple[Any, ...]
_Columns = tuple[list[int | None], list[float | None], list[float | None] | None, bytes]


def _put(out: bytearray, value: Any) -> None:
    """A varint of zigzag(value) + 1, 0 for NULL (values are integers or integral floats: see Agg.to_row)."""
    if value is None:
        out.append(0)
        return
    number = int(value)
    z = (number << 1 if number >= 0 else ((-number) << 1) - 1) + 1
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _get(data: bytes, i: int) -> tuple[int | None, int]:
    z = shift = 0
    while True:
        byte = data[i]
        i += 1
        z |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    if z == 0:
        return None, i
    z -= 1
    return (-((z + 1) >> 1) if z & 1 else z >> 1), i


def encode_chunk(rows: dict[int, _Row], size: int) -> _Columns:
    """The columns n, peak, delta and aggs of a chunk from its buckets (slot -> Agg.to_row())."""
    n: list[int | None] = [None] * size
    peak: list[float | None] = [None] * size
    delta: list[float | None] = [None] * size
    aggs = bytearray()
    for slot in sorted(rows):
        row = rows[slot]
        n[slot] = row[0]
        v_max, v_sum = row[9], row[8]
        peak[slot] = v_max if v_max is not None else v_sum
        delta[slot] = row[11]
        for value in row[1:11]:
            _put(aggs, value)
    return n, peak, (delta if any(d is not None for d in delta) else None), bytes(aggs)


def _array(values: Sequence[float | int | None] | None) -> str | None:
    """An array's text form (`{1,NULL,3.5}`); repr gives each float's shortest exact form, as PostgreSQL reads it."""
    if values is None:
        return None
    return "{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"


def decode_chunk(n: Sequence[int | None], delta: Sequence[float | None] | None, aggs: bytes) -> dict[int, _Row]:
    """Inverse of `encode_chunk`: slot -> the bucket's Agg.to_row() (floats where SQLite keeps REALs)."""
    out: dict[int, _Row] = {}
    i = 0
    for slot, count in enumerate(n):
        if count is None:
            continue
        values: list[Any] = [count]
        for k in range(10):
            value, i = _get(aggs, i)
            values.append(float(value) if value is not None and k >= 6 else value)  # v_min .. v_last are REAL
        values.append(delta[slot] if delta is not None else None)
        out[slot] = tuple(values)
    return out


class _PgRollupsMixin(_PgBase):
    """Writing and reading the packed rollup tables."""

    def _merge_rollups(self, rollups: Sequence[tuple[str, str, int, Agg]]) -> None:
        """Fold each aggregate into its stored bucket: one read and one write per tier."""
        by_tier: dict[str, dict[tuple[int, int], Agg]] = {}
        for tier, check, bucket, agg in rollups:
            pending = by_tier.setdefault(tier, {})
            key = (self._check_id(check), bucket)
            if key in pending:
                merged = Agg.from_row(pending[key].to_row())
                merged.merge(agg)
                agg = merged
            pending[key] = agg
        for tier, pending in by_tier.items():
            size = CHUNK[tier]
            keys = sorted({(cid, bucket // size) for cid, bucket in pending})  # one lock order for every writer
            chunks = self._chunks(tier, keys, lock=True)
            for (cid, bucket), agg in pending.items():
                rows = chunks.setdefault((cid, bucket // size), {})
                slot = bucket % size
                if slot in rows:
                    merged = Agg.from_row(rows[slot])
                    merged.merge(agg)
                    agg = merged
                rows[slot] = agg.to_row()
            self._write_chunks(tier, {key: chunks[key] for key in keys})

    def _chunks(
        self, tier: str, keys: list[tuple[int, int]], lock: bool = False
    ) -> dict[tuple[int, int], dict[int, _Row]]:
        rows = self.pg.execute(
            f"SELECT check_id, chunk, n, delta, aggs FROM {tier_table(tier)} "
            f"WHERE (check_id, chunk) IN (SELECT * FROM unnest(%s::integer[], %s::integer[])) "
            f"ORDER BY check_id, chunk{' FOR UPDATE' if lock else ''}",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
        return {(cid, chunk): decode_chunk(n, delta, aggs) for cid, chunk, n, delta, aggs in rows}

    def _write_chunks(self, tier: str, chunks: dict[tuple[int, int], dict[int, _Row]]) -> None:
        """Store chunks (an empty one is deleted), all in one statement."""
        size, table = CHUNK[tier], tier_table(tier)
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for (cid, chunk), buckets in chunks.items():
            if buckets:
                n, peak, delta, aggs = encode_chunk(buckets, size)
                for column, value in zip(columns, (cid, chunk, _array(n), _array(peak), _array(delta), aggs),
                                         strict=True):
                    column.append(value)
        if columns[0]:
            # arrays travel as their text form: psycopg's per-element dumping would cost more than the rest
            self.pg.execute(
                f"INSERT INTO {table} (check_id, chunk, n, peak, delta, aggs) "
                f"SELECT c, k, n::integer[], p::float8[], d::float8[], a "
                f"FROM unnest(%s::integer[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::bytea[]) "
                f"AS x(c, k, n, p, d, a) "
                f"ON CONFLICT (check_id, chunk) DO UPDATE SET n = excluded.n, peak = excluded.peak, "
                f"delta = excluded.delta, aggs = excluded.aggs",
                columns,
            )
        empty = [key for key, buckets in chunks.items() if not buckets]
        if empty:
            self.pg.execute(
                f"DELETE FROM {table} t USING unnest(%s::integer[], %s::integer[]) AS e(c, k) "
                f"WHERE t.check_id = e.c AND t.chunk = e.k",
                ([k[0] for k in empty], [k[1] for k in empty]),
            )

    # ------------------------------------------------------------------ reading
    def _bucket_range(self, tier: str, since: float, until: float) -> tuple[int, int]:
        lo, hi = bucket_of(tier, since, self.timezone), bucket_of(tier, until, self.timezone)
        if bucket_start(tier, lo, self.timezone) < since:
            lo += 1
        if bucket_start(tier, hi, self.timezone) < until:
            hi += 1
        return lo, hi

    def _slice(
        self, tier: str, since: float, until: float, check_ids: Sequence[str]
    ) -> tuple[str, str, dict[str, Any]]:
        """How to read the buckets of [since, until) from the chunks overlapping it: an array slice and a WHERE.

        `arr[{slice}]` is the part of a chunk's array inside the period (all of it for a chunk within it), so that
        SQL sums, counts and ranks whole arrays in C instead of one row per bucket.
        """
        size = CHUNK[tier]
        lo, hi = self._bucket_range(tier, since, until)
        where = "r.check_id = ANY(%(ids)s) AND r.chunk >= %(c_lo)s AND r.chunk <= %(c_hi)s"
        piece = f"greatest(1, %(lo)s - r.chunk * {size} + 1):least({size}, %(hi)s - r.chunk * {size})"
        params = {"ids": self._ids(check_ids) or [], "c_lo": lo // size, "c_hi": (hi - 1) // size, "lo": lo, "hi": hi}
        return piece, where, params

    def rollups(self, tier: str, since: float, until: float, check_ids: Sequence[str] | None = None) -> list[Rollup]:
        """Rollups of a tier whose bucket starts in [since, until), ordered by check then time."""
        size = CHUNK[tier]
        ids = self._ids(check_ids)
        lo, hi = self._bucket_range(tier, since, until)
        where_ids, params = ("", ()) if ids is None else ("AND check_id = ANY(%s)", (ids,))
        with self._errors():
            rows = self.pg.execute(
                f"SELECT check_id, chunk, n, delta, aggs FROM {tier_table(tier)} "
                f"WHERE chunk >= %s AND chunk <= %s {where_ids} ORDER BY check_id, chunk",
                (lo // size, (hi - 1) // size, *params),
            ).fetchall()
        out = []
        for cid, chunk, n, delta, aggs in rows:
            for slot, row in sorted(decode_chunk(n, delta, aggs).items()):
                bucket = chunk * size + slot
                if lo <= bucket < hi:
                    out.append(_rollup(self._name(cid), bucket_start(tier, bucket, self.timezone), Agg.from_row(row)))
        return out

    def delta_sums(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, float]:
        """Sum of counter increments per check over buckets starting in [since, until)."""
        piece, where, params = self._slice(tier, since, until, check_ids)
        with self._errors():
            rows = self.pg.execute(
                f"SELECT r.check_id, coalesce(sum((SELECT sum(d) FROM unnest(r.delta[{piece}]) AS d)), 0) "
                f"FROM {tier_table(tier)} r WHERE {where} AND cardinality(array_remove(r.n[{piece}], NULL)) > 0 "
                f"GROUP BY r.check_id ORDER BY r.check_id",
                params,
            ).fetchall()
        return {self._name(cid): float(total) for cid, total in rows}

    def bucket_maxima(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, list[float]]:
        """Each bucket's maximum value per check (in time order) over buckets starting in [since, until)."""
        piece, where, params = self._slice(tier, since, until, check_ids)
        # peaks are in thousandths, as SQLite's v_max/v_sum (see Agg.to_row)
        with self._errors():
            rows = self.pg.execute(
                f"SELECT r.check_id, u.v / 1000.0 FROM {tier_table(tier)} r "
                f"CROSS JOIN LATERAL unnest(r.peak[{piece}]) WITH ORDINALITY AS u(v, i) "
                f"WHERE {where} AND u.v IS NOT NULL ORDER BY r.check_id, r.chunk, u.i",
                params,
            ).fetchall()
        out: dict[str, list[float]] = {}
        for cid, value in rows:
            out.setdefault(self._name(cid), []).append(value)
        return out

    def bucket_counts(self, tier: str, since: float, until: float, check_ids: Sequence[str]) -> dict[str, int]:
        """How many buckets with a value each check has among those starting in [since, until)."""
        piece, where, params = self._slice(tier, since, until, check_ids)
        count = f"sum(cardinality(array_remove(r.peak[{piece}], NULL)))"
        with self._errors():
            rows = self.pg.execute(
                f"SELECT r.check_id, {count} FROM {tier_table(tier)} r WHERE {where} "
                f"GROUP BY r.check_id HAVING {count} > 0 ORDER BY r.check_id",
                params,
            ).fetchall()
        return {self._name(cid): int(n) for cid, n in rows}

    def bucket_top(self, tier: str, since: float, until: float, check_ids: Sequence[str], n: int) -> list[float]:
        """The `n` largest of the bucket maxima `bucket_maxima` gives for these checks, largest first."""
        piece, where, params = self._slice(tier, since, until, check_ids)
        with self._errors():
            rows = self.pg.execute(
                f"SELECT v / 1000.0 AS top FROM {tier_table(tier)} r CROSS JOIN LATERAL unnest(r.peak[{piece}]) AS v "
                f"WHERE {where} AND v IS NOT NULL ORDER BY top DESC LIMIT %(n)s",
                {**params, "n": n},
            ).fetchall()
        return [value for (value,) in rows]

    def oldest_bucket(self, tier: str, check_ids: Sequence[str]) -> float | None:
        """Start of the oldest bucket kept for any of these checks (None if there is none)."""
        size = CHUNK[tier]
        ids = (self._ids(check_ids) or [])[:20]  # the tier's retention is the same for every check: a few do
        with self._errors():
            rows = self.pg.execute(
                f"SELECT m.chunk, m.n FROM unnest(%s::integer[]) AS c(id) CROSS JOIN LATERAL "
                f"(SELECT chunk, n FROM {tier_table(tier)} WHERE check_id = c.id ORDER BY chunk LIMIT 1) m",
                (ids,),
            ).fetchall()
        firsts = [chunk * size + next(i for i, v in enumerate(n) if v is not None) for chunk, n in rows]
        return bucket_start(tier, min(firsts), self.timezone) if firsts else None

    def _expire_rollups(self, tier: str, ids: list[int], cutoff: int) -> int:
        """Delete the buckets before `cutoff` of these checks; returns how many chunks changed."""
        size, table = CHUNK[tier], tier_table(tier)
        deleted = self.pg.execute(
            f"DELETE FROM {table} WHERE check_id = ANY(%s) AND chunk < %s", (ids, cutoff // size)
        ).rowcount
        if cutoff % size:
            keys = [(cid, cutoff // size) for cid in ids]
            chunks = self._chunks(tier, keys, lock=True)
            trimmed = {
                key: {slot: row for slot, row in buckets.items() if key[1] * size + slot >= cutoff}
                for key, buckets in chunks.items()
                if any(key[1] * size + slot < cutoff for slot in buckets)
            }
            self._write_chunks(tier, trimmed)
            deleted += len(trimmed)
        return int(deleted)


def _rollup(check: str, start: float, agg: Agg) -> Rollup:
    return Rollup(
        check_id=check,
        start=start,
        count=agg.n,
        failures=agg.failures,
        latency_min=None if agg.lat_min is None else agg.lat_min / 1000.0,
        latency_avg=agg.lat_sum / agg.lat_n / 1000.0 if agg.lat_n else None,
        latency_max=None if agg.lat_max is None else agg.lat_max / 1000.0,
        value_min=agg.v_min,
        value_avg=agg.v_sum / agg.v_n if agg.v_n else None,
        value_max=agg.v_max,
        value_last=agg.v_last,
        delta=agg.delta,
    )
