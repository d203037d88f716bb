"""The alert manager's acknowledgement API (for the dashboard), kept apart from its decisions."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bibnet_ops.alerts._acks import acknowledge as _acknowledge
from bibnet_ops.alerts._acks import unacknowledge as _unacknowledge
from bibnet_ops.alerts._model import Ack
from bibnet_ops.alerts._policy import AccessPolicy
from bibnet_ops.alerts._store import AlertLog

__all__ = ["AckMixin"]


class AckMixin:
    """Acknowledge / unacknowledge problems and look up the ack holding now; mixed into `AlertManager`."""

    alert_log: AlertLog | None
    acks: dict[str, Ack]
    clock: Callable[[], float]

    def _acked(self, key: str, now: float) -> Ack | None:
        ack = self.acks.get(key)
        return ack if ack is not None and ack.active(now) else None

    def acknowledge(
        self,
        targets: Iterable[str],
        comment: str,
        *,
        author: str | None = None,
        sticky: bool = False,
        expires_at: float | None = None,
        policy: AccessPolicy | None = None,
    ) -> list[Ack]:
        """Acknowledge problems now (batch); stops their reminders and escalation at once.

        Raises:
            ReadOnlyError: the console is read-only.
        """
        if self.alert_log is None:
            raise RuntimeError("acknowledgements need a history store")
        acks = _acknowledge(
            self.alert_log,
            targets,
            comment,
            sticky=sticky,
            expires_at=expires_at,
            author=author,
            policy=policy,
            now=self.clock(),
        )
        self.acks.update({a.key: a for a in acks})
        return acks

    def unacknowledge(
        self, targets: Iterable[str], *, who: str | None = None, policy: AccessPolicy | None = None
    ) -> list[Ack]:
        """Remove acks (reminders and escalation resume).

        Raises:
            ReadOnlyError: the console is read-only.
        """
        if self.alert_log is None:
            raise RuntimeError("acknowledgements need a history store")
        ended = _unacknowledge(self.alert_log, targets, who=who, policy=policy, now=self.clock())
        for ack in ended:
            self.acks.pop(ack.key, None)
        return ended

    def ack_for(self, key: str) -> Ack | None:
        """The ack holding for a problem key now, if any (for showing beside the problem)."""
        return self._acked(key, self.clock())
