"""The notification an open alert sends: names, region, the ack holding, escalation level."""

from __future__ import annotations

from collections.abc import Iterable

from bibnet_ops.alerts._model import Ack, Notification, NotificationKind
from bibnet_ops.alerts._state import OpenAlert
from bibnet_ops.inventory import Inventory

__all__ = ["notification"]


def notification(
    kind: NotificationKind,
    alert: OpenAlert,
    now: float,
    *,
    inventory: Inventory,
    subject_prefix: str,
    ack: Ack | None = None,
    level: int = 0,
    still_down: Iterable[str] = (),
) -> Notification:
    """What receivers are told about `alert` at `now`.

    Args:
        kind: problem, reminder, escalation, recovery, flapping...
        alert: the open alert.
        now: UTC epoch seconds.
        inventory: for the site's names, wilaya and region, the network name and time zone.
        subject_prefix: `[alerts] subject_prefix`.
        ack: the ack holding at `now`, if any.
        level: the escalation level reached.
        still_down: for a recovery, the dependants still down or unreachable.
    """
    site = inventory.sites.get(alert.site_id)
    return Notification(
        kind=kind,
        alert_id=alert.id,
        key=alert.key,
        state=alert.state,
        site_id=alert.site_id,
        since=alert.since,
        time=now,
        check_id=alert.check_id,
        reason=alert.reason,
        site_name=site.name_fr if site else "",
        site_name_ar=site.name_ar if site else "",
        wilaya=site.wilaya if site else 0,
        region=site.region if site else "",
        affected=tuple(sorted(alert.affected)),
        still_down=tuple(sorted(still_down)),
        ack=ack,
        escalation_level=level,
        network=inventory.name,
        subject_prefix=subject_prefix,
        timezone=inventory.timezone,
    )
