"""Each device's worst-of timeline, kept beside the check transitions it is derived from.

A device is down while any of its checks is down (hard states only: `accounting.worst_of`). Reports by
device or by device kind need exactly that timeline, and deriving it from every check transition of a
year of a national network means reading over half a million rows; so the store keeps it, one row per
span that is not up (down or unknown), the time between those rows being up. A down span keeps the
reason of the check change that began it, or NULL when several of the device's checks changed at that
moment: which one's reason a report shows depends on the inventory order of the checks, which the
report knows and the store does not. A device has rows as soon as one of its checks has a hard transition.

The writer updates a device's spans in the same transaction as the transitions that change them (a
crash never leaves them apart), recomputing them from the earliest new transition on, which also takes
transitions arriving out of time order. A store opened read-write whose spans are missing or were made
under other rules (`RULE`) rebuilds them from the transitions; a reader of such a store gets None from
`device_spans` and reports fall back to the transitions.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter

from bibnet_ops.accounting import (
    CHECK_CATEGORY,
    DOWN,
    MAINTENANCE,
    RANK,
    UNKNOWN,
    UNREACHABLE,
    UP,
    Segment,
    worst_of,
)
from bibnet_ops.store._api import DeviceSpans
from bibnet_ops.store._sqlite_base import _ms, _SqliteBase

__all__ = ["FAR_FUTURE", "FAR_PAST", "RULE"]

# integer milliseconds standing for "before any transition" and "until further notice"
FAR_PAST, FAR_FUTURE = -(2**62), 2**62
# the category column holds an index into this tuple (up is never stored)
_CODES = (DOWN, UNKNOWN, UNREACHABLE, MAINTENANCE)
_CODE = {category: i for i, category in enumerate(_CODES)}
# the rules the rows were made under: a store whose rows were made under others rebuilds them
RULE = (
    "worst-of v1; "
    + ",".join(f"{state}={category}" for state, category in sorted(CHECK_CATEGORY.items()))
    + "; "
    + ">".join(sorted(RANK, key=RANK.__getitem__))
)
_RULE_KEY, _KEPT_KEY = "device_spans_rule", "transitions_kept_from"

_Change = tuple[int, str, str]  # (t in ms, new state, reason)


def _started_by(lines: Sequence[list[_Change]], start: float) -> str | None:
    """The reason of the check change at `start` that began a span; None if several checks changed then.

    A check counts when its last change at or before `start` is at `start` (as reports/_build._reason_at).
    """
    reason, found = None, 0
    for line in lines:
        i = bisect_right(line, start, key=itemgetter(0)) - 1
        if i >= 0 and line[i][0] == start:
            reason, found = line[i][2], found + 1
    return reason if found == 1 else None


class _DeviceSpansMixin(_SqliteBase):
    _device_ids: dict[tuple[str, str], int]
    # milliseconds to seconds in SQL, an IEEE division in both stores (PostgreSQL's `/ 1000.0` would be numeric)
    _SECONDS = "{} / 1000.0"

    # ------------------------------------------------------------------ upkeep (writer side)
    def _spans_current(self) -> bool:
        if int(self.conn.execute("PRAGMA user_version").fetchone()[0]) < 3:
            return False
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (_RULE_KEY,)).fetchone()
        return row is not None and row[0] == RULE

    def _ensure_device_spans(self) -> None:
        """Build the spans from the transitions if they are missing or were made under other rules."""
        if not self._spans_current():
            self.rebuild_device_spans(only_if_stale=True)

    def rebuild_device_spans(self, batch_devices: int = 500, *, only_if_stale: bool = False) -> int:
        """Recompute every device's spans from the hard transitions, in one transaction; returns rows written.

        Only needed after writing transitions other than through `write_batch` (a bulk import).

        Args:
            only_if_stale: do nothing if, once the write lock is held, the spans turn out current (another
                process opening the same store may have built them meanwhile).
        """
        with self._tx():
            if only_if_stale and self._spans_current():
                return 0
            written = self._rebuild_all(batch_devices)
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_RULE_KEY, RULE))
        return written

    def _rebuild_all(self, batch_devices: int) -> int:
        # devices keep their ids (another connection may hold them): only their spans are replaced
        self.conn.execute("DELETE FROM device_spans")
        self._load_checks()
        keys = list(self._device_checks)
        written = 0
        for i in range(0, len(keys), batch_devices):
            chunk = keys[i : i + batch_devices]
            ids = ",".join(str(cid) for key in chunk for cid in self._device_checks[key])
            lines: dict[int, list[_Change]] = {}
            rows = self.conn.execute(
                f"SELECT check_id, t, new, reason FROM transitions WHERE hard = 1 AND check_id IN ({ids}) "
                f"ORDER BY check_id, t, id"
            )
            for cid, group in groupby(rows, itemgetter(0)):
                lines[cid] = [(t, new, reason) for _, t, new, reason in group]
            for key in chunk:
                device_lines = [lines.get(cid, []) for cid in self._device_checks[key]]
                if any(device_lines):
                    written += self._write_spans(self._device_row(key), device_lines, FAR_PAST, None)
        return written

    def _device_row(self, key: tuple[str, str]) -> int:
        did = self._device_ids.get(key)
        if did is None:
            row = self.conn.execute(
                "INSERT INTO devices (site, device) VALUES (?, ?) "
                "ON CONFLICT (site, device) DO UPDATE SET site = excluded.site RETURNING id",
                key,
            ).fetchone()
            did = self._device_ids[key] = int(row[0])
        return did

    def _update_device_spans(self, changed: dict[tuple[str, str], int]) -> None:
        """Recompute the spans of devices whose checks have new hard transitions, from the earliest on.

        Args:
            changed: (site, device) -> time (ms) of the earliest new hard transition of its checks.
        """
        for key, first in changed.items():
            cids = self._device_checks[key]
            did = self._device_ids.get(key)
            if did is None:
                row = self.conn.execute("SELECT id FROM devices WHERE site = ? AND device = ?", key).fetchone()
                if row is not None:
                    did = self._device_ids[key] = int(row[0])
            if did is not None and self._update_from(did, cids, first - 1):
                continue
            self._rebuild_device(key, cids)

    def _update_from(self, did: int, cids: list[int], t0: int) -> bool:
        """Replace a device's spans after `t0`, which are still right up to `t0`; False if they are not."""
        covering = self.conn.execute(
            "SELECT start, category, reason FROM device_spans "
            "WHERE device_id = ? AND start <= ? AND (stop IS NULL OR stop > ?) ORDER BY start DESC LIMIT 1",
            (did, t0, t0),
        ).fetchone()
        lines: list[list[_Change]] = []
        for cid in cids:
            before = self.conn.execute(
                "SELECT t, new, reason FROM transitions WHERE check_id = ? AND hard = 1 AND t <= ? "
                "ORDER BY t DESC, id DESC LIMIT 1",
                (cid, t0),
            ).fetchall()
            after = self.conn.execute(
                "SELECT t, new, reason FROM transitions WHERE check_id = ? AND hard = 1 AND t > ? ORDER BY t, id",
                (cid, t0),
            ).fetchall()
            lines.append(before + after)
        segments = worst_of(lines, t0, FAR_FUTURE, CHECK_CATEGORY)
        state = segments[0][2] if segments else UNKNOWN
        stored = UP if covering is None else _CODES[covering[1]]
        if state != stored:
            return False  # should not happen; the caller rebuilds the device from scratch
        self.conn.execute("DELETE FROM device_spans WHERE device_id = ? AND (stop IS NULL OR stop > ?)", (did, t0))
        head = None if covering is None else (covering[0], covering[2])
        self._write_spans(did, lines, t0, head, segments)
        return True

    def _rebuild_device(self, key: tuple[str, str], cids: list[int]) -> None:
        did = self._device_row(key)
        self.conn.execute("DELETE FROM device_spans WHERE device_id = ?", (did,))
        lines = [
            self.conn.execute(
                "SELECT t, new, reason FROM transitions WHERE check_id = ? AND hard = 1 ORDER BY t, id", (cid,)
            ).fetchall()
            for cid in cids
        ]
        self._write_spans(did, lines, FAR_PAST, None)

    def _write_spans(
        self,
        did: int,
        lines: list[list[_Change]],
        t0: int,
        head: tuple[int, str | None] | None,
        segments: list[Segment] | None = None,
    ) -> int:
        """Insert the spans that are not up of the device's worst-of timeline after `t0`.

        Args:
            head: (start, reason) of the stored span the first segment continues, if any.
        """
        rows = self._span_rows(did, lines, t0, head, segments)
        self.conn.executemany("INSERT INTO device_spans VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    @staticmethod
    def _span_rows(
        did: int,
        lines: list[list[_Change]],
        t0: int,
        head: tuple[int, str | None] | None,
        segments: list[Segment] | None = None,
    ) -> list[tuple[int, float, float | None, int, str | None]]:
        """The device_spans rows `_write_spans` inserts (times in the lines' unit: integer milliseconds)."""
        if segments is None:
            segments = worst_of(lines, t0, FAR_FUTURE, CHECK_CATEGORY)
        rows = []
        for i, (start, stop, category) in enumerate(segments):
            if category == UP:
                continue
            reason = None
            if i == 0 and head is not None:
                start, reason = head
            elif category == DOWN:
                reason = _started_by(lines, start)
            rows.append((did, start, None if stop >= FAR_FUTURE else stop, _CODE[category], reason))
        return rows

    def _mark_transitions_kept_from(self, cutoff_ms: int) -> None:
        """Transitions before `cutoff_ms` were deleted: spans no longer match them before it."""
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
            "max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (_KEPT_KEY, str(cutoff_ms)),
        )

    # ------------------------------------------------------------------ reading (reports)
    def device_spans(self, since: float, until: float) -> DeviceSpans | None:
        """Each device's spans that are not up within [since, until), as the transitions in it show them.

        None when the store has no spans it can vouch for over this period (an older schema not yet
        migrated, spans made under other rules, or transitions before `since` deleted by retention).
        """
        own_snapshot = not self.conn.in_transaction
        if own_snapshot:
            self.conn.execute("BEGIN")  # one snapshot: the writer may commit between these reads
        try:
            return self._read_device_spans(_ms(since), _ms(until))
        finally:
            if own_snapshot:
                self.conn.execute("COMMIT")

    def _read_device_spans(self, since_ms: int, until_ms: int) -> DeviceSpans | None:
        if not self._spans_current():
            return None
        kept = self.conn.execute("SELECT value FROM meta WHERE key = ?", (_KEPT_KEY,)).fetchone()
        if kept is not None and since_ms < int(kept[0]):
            return None
        count, last = self.conn.execute("SELECT count(*), max(id) FROM checks").fetchone()
        if count != len(self._check_names) or (last is not None and last not in self._check_names):
            self._load_checks()  # the writer registered checks since this reader opened
        checks = {
            f"{site}/{device}": frozenset(self._check_names[cid] for cid in cids)
            for (site, device), cids in self._device_checks.items()
        }
        keys = {
            did: f"{site}/{device}" for did, site, device in self.conn.execute("SELECT id, site, device FROM devices")
        }
        # a device with a hard state has spans (at least the unknown time before its first one)
        known = frozenset(
            keys[did]
            for (did,) in self.conn.execute(
                "SELECT id FROM devices WHERE EXISTS (SELECT 1 FROM device_spans WHERE device_id = devices.id)"
            )
        )
        where = "WHERE (stop IS NULL OR stop > ?) AND start < ?"
        counts = self.conn.execute(
            f"SELECT device_id, count(*) FROM device_spans {where} GROUP BY device_id ORDER BY device_id",
            (since_ms, until_ms),
        ).fetchall()
        # a span reaching the first transition left out (at or after `until`) runs on to `until`: stop None;
        # the rows come without their device (a third of the cost of reading them): `counts` cuts them
        rows = self.conn.execute(
            f"SELECT {self._SECONDS.format('start')}, "
            f"CASE WHEN stop IS NULL OR stop >= ? THEN NULL ELSE {self._SECONDS.format('stop')} END, "
            f"CASE category {' '.join(f'WHEN {i} THEN {c!r}' for i, c in enumerate(_CODES))} END, reason "
            f"FROM device_spans {where} ORDER BY device_id, start",
            (until_ms, since_ms, until_ms),
        ).fetchall()
        spans = {}
        i = 0
        for did, n in counts:
            spans[keys[did]] = rows[i : i + n]
            i += n
        return DeviceSpans(checks=checks, known=known, spans=spans)
