"""What alerting deals in: notifications sent to receivers, acknowledgements and delivery records.

A `Notification` is one message about one alert (its opening, a reminder, an escalation, its recovery);
`payload()` is the documented JSON every receiver gets (see docs/alerts.md), with a ready-made `text` line
so that chat tools' incoming webhooks show it as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "PAYLOAD_VERSION",
    "Ack",
    "AlertRecord",
    "DeliveryRecord",
    "Notification",
    "NotificationKind",
    "ReadOnlyError",
    "format_duration",
]

PAYLOAD_VERSION = 1

_GLYPHS = {"DOWN": "▲", "CRITICAL": "▲", "WARNING": "⚠", "UNKNOWN": "?", "DEGRADED": "⚠", "OK": "✔", "UP": "✔"}


class ReadOnlyError(PermissionError):
    """A change was attempted from a read-only console (`--read-only` or `[dashboard] read_only = true`)."""


class NotificationKind(StrEnum):
    """Why a receiver is being told something."""

    PROBLEM = "problem"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    RECOVERY = "recovery"
    FLAPPING = "flapping"
    FLAPPING_STOPPED = "flapping_stopped"


def format_duration(seconds: float) -> str:
    """A short human duration: `45s`, `12 min`, `3 h 05`, `2 d 4 h`."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d}"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Ack:
    """An acknowledgement of a problem: who knows, what they said, and how long it holds.

    A sticky ack outlives recoveries (later occurrences of the same problem stay acknowledged) until it
    expires or is removed; otherwise it ends when the problem recovers.
    """

    id: int
    key: str
    author: str
    comment: str
    created_at: float
    sticky: bool = False
    expires_at: float | None = None
    ended_at: float | None = None
    ended_by: str = ""
    end_reason: str = ""

    def active(self, now: float) -> bool:
        """Whether the ack holds at `now`."""
        return self.ended_at is None and (self.expires_at is None or now < self.expires_at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "author": self.author,
            "comment": self.comment,
            "created_at": _iso(self.created_at),
            "sticky": self.sticky,
            "expires_at": _iso(self.expires_at),
        }


@dataclass(frozen=True)
class Notification:
    """One message about one alert, for every receiver of a route.

    `key` is the problem's identity: `site:<id>` for a site problem, `site/device/check` for a check.
    """

    kind: NotificationKind
    alert_id: int
    key: str
    state: str
    site_id: str
    since: float
    time: float
    check_id: str | None = None
    reason: str = ""
    site_name: str = ""
    site_name_ar: str = ""
    wilaya: int = 0
    region: str = ""
    affected: tuple[str, ...] = ()
    still_down: tuple[str, ...] = ()
    ack: Ack | None = None
    escalation_level: int = 0
    network: str = ""
    subject_prefix: str = "[bibnet]"
    timezone: str = "Africa/Algiers"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """One line for an e-mail subject or a pager."""
        what = self.check_id or self.site_id
        name = f" — {self.site_name}" if self.site_name else ""
        if self.kind is NotificationKind.RECOVERY:
            return f"{self.subject_prefix} RECOVERED {what}{name}"
        if self.kind is NotificationKind.FLAPPING:
            return f"{self.subject_prefix} FLAPPING {what}{name}"
        if self.kind is NotificationKind.FLAPPING_STOPPED:
            return f"{self.subject_prefix} {self.state} {what}{name} (stopped flapping)"
        tag = {NotificationKind.REMINDER: " (reminder)", NotificationKind.ESCALATION: " (escalated)"}.get(self.kind, "")
        return f"{self.subject_prefix} {self.state} {what}{name}{tag}"

    @property
    def text(self) -> str:
        """A readable paragraph (also the webhook's `text` field for chat tools)."""
        local = datetime.fromtimestamp(self.since, ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M")
        what = self.check_id or self.site_id
        name = f" ({self.site_name})" if self.site_name else ""
        if self.kind is NotificationKind.RECOVERY:
            lines = [
                f"✔ RECOVERED {what}{name} after {format_duration(self.time - self.since)} ({self.state} since {local})"
            ]
        elif self.kind is NotificationKind.FLAPPING:
            lines = [
                f"⇅ FLAPPING {what}{name}: it keeps changing state; reminders, escalation and recovery are"
                f" paused until it settles (first {self.state} since {local})"
            ]
        else:
            glyph = _GLYPHS.get(self.state, "•")
            head = f"{glyph} {self.state} {what}{name} since {local} ({format_duration(self.time - self.since)})"
            if self.kind is NotificationKind.REMINDER:
                head += " — reminder"
            elif self.kind is NotificationKind.ESCALATION:
                head += f" — escalated (level {self.escalation_level}, not acknowledged)"
            elif self.kind is NotificationKind.FLAPPING_STOPPED:
                head += " — stopped flapping, still failing"
            lines = [head]
            if self.reason:
                lines.append(f"Reason: {self.reason}")
        if self.affected:
            shown = ", ".join(self.affected[:20]) + (
                f" and {len(self.affected) - 20} more" if len(self.affected) > 20 else ""
            )
            verb = "were" if self.kind is NotificationKind.RECOVERY else "are"
            lines.append(f"{len(self.affected)} site(s) behind it {verb} unreachable: {shown}")
        if self.still_down:
            lines.append(f"Still down after re-check: {', '.join(self.still_down)}")
        if self.ack is not None:
            lines.append(f"Acknowledged by {self.ack.author}: {self.ack.comment}".rstrip(": "))
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The JSON document receivers get (schema in docs/alerts.md; `version` changes only on breaking edits)."""
        return {
            "version": PAYLOAD_VERSION,
            "kind": str(self.kind),
            "alert_id": self.alert_id,
            "key": self.key,
            "state": self.state,
            "recovered": self.kind is NotificationKind.RECOVERY,
            "site": {
                "id": self.site_id,
                "name_fr": self.site_name,
                "name_ar": self.site_name_ar,
                "wilaya": self.wilaya,
                "region": self.region,
            },
            "check": self.check_id,
            "reason": self.reason,
            "since": _iso(self.since),
            "time": _iso(self.time),
            "duration_s": round(self.time - self.since, 3),
            "affected": list(self.affected),
            "still_down": list(self.still_down),
            "acknowledged": self.ack.as_dict() if self.ack is not None else None,
            "escalation_level": self.escalation_level,
            "network": self.network,
            "subject": self.subject,
            "text": self.text,
        }

    def env(self) -> dict[str, str]:
        """Environment variables for the command receiver (`BIBNET_ALERT_*`)."""
        return {
            "BIBNET_ALERT_KIND": str(self.kind),
            "BIBNET_ALERT_ID": str(self.alert_id),
            "BIBNET_ALERT_KEY": self.key,
            "BIBNET_ALERT_STATE": self.state,
            "BIBNET_ALERT_SITE": self.site_id,
            "BIBNET_ALERT_CHECK": self.check_id or "",
            "BIBNET_ALERT_REASON": self.reason,
            "BIBNET_ALERT_SINCE": _iso(self.since) or "",
            "BIBNET_ALERT_AFFECTED": ",".join(self.affected),
            "BIBNET_ALERT_SUBJECT": self.subject,
            "BIBNET_ALERT_TEXT": self.text,
        }


@dataclass(frozen=True)
class AlertRecord:
    """An alert as the store keeps it: one per problem occurrence that notified someone."""

    id: int
    key: str
    site_id: str
    check_id: str | None
    state: str
    since: float
    opened_at: float
    reason: str = ""
    affected: tuple[str, ...] = ()
    closed_at: float | None = None
    receivers: tuple[str, ...] = ()

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class DeliveryRecord:
    """One notification to one receiver: when it was queued, how many attempts, and the outcome."""

    id: int
    alert_id: int
    receiver: str
    kind: str
    queued_at: float
    outcome: str  # "pending", "sent" or "failed"
    attempts: int = 0
    finished_at: float | None = None
    error: str = ""
