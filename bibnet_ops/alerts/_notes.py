"""How the alert manager builds a notification from an open alert (names, region, ack, escalation level)."""

from __future__ import annotations

from collections.abc import Iterable

from bibnet_ops.alerts._ack_api import AckMixin
from bibnet_ops.alerts._model import Notification, NotificationKind
from bibnet_ops.alerts._state import OpenAlert
from bibnet_ops.inventory import AlertsConfig, Inventory

__all__ = ["NoteMixin"]


class NoteMixin(AckMixin):
    """Builds the `Notification`s `AlertManager` sends (the ack shown is the one holding at that time)."""

    config: AlertsConfig
    inventory: Inventory

    def _note(
        self, kind: NotificationKind, alert: OpenAlert, now: float, level: int = 0, still_down: Iterable[str] = ()
    ) -> Notification:
        site = self.inventory.sites.get(alert.site_id)
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
            ack=self._acked(alert.key, now),
            escalation_level=level,
            network=self.inventory.name,
            subject_prefix=self.config.subject_prefix,
            timezone=self.inventory.timezone,
        )
