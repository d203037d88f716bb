"""The acknowledgements alerting honours: the acks holding now, kept in step with the store's."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bibnet_ops.alerts._acks import acknowledge as _acknowledge
from bibnet_ops.alerts._acks import unacknowledge as _unacknowledge
from bibnet_ops.alerts._model import Ack
from bibnet_ops.alerts._policy import AccessPolicy
from bibnet_ops.alerts._store import AlertLog

__all__ = ["AckBook"]


class AckBook:
    """Who acknowledged which problem, until when: what stops reminders and escalation.

    Acks made here are recorded in `alert_log` at once; acks made elsewhere (`bibnet-ops ack`, another
    console) arrive through `replace()` with what the store holds.

    Args:
        alert_log: the store's alerting tables (None: acks are refused, there is nowhere to keep them).
        clock: UTC epoch seconds.
    """

    def __init__(self, alert_log: AlertLog | None, clock: Callable[[], float]) -> None:
        self.alert_log = alert_log
        self.clock = clock
        self.acks: dict[str, Ack] = {}

    def holding(self, key: str, now: float) -> Ack | None:
        """The ack holding for a problem key at `now`, if any."""
        ack = self.acks.get(key)
        return ack if ack is not None and ack.active(now) else None

    def replace(self, acks: dict[str, Ack]) -> None:
        """Take the acks the store holds now (re-read periodically)."""
        self.acks = acks

    def end_with_recovery(self, key: str) -> bool:
        """The problem recovered: forget its ack unless sticky; True when one was ended (record it)."""
        ack = self.acks.get(key)
        if ack is None or ack.sticky:
            return False
        del self.acks[key]
        return True

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
