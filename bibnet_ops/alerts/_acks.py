"""Acknowledging problems, for the command line and the dashboard: batch, audited, policy-checked.

A problem is named by its key: `site/device/check` for a check, `site:<id>` for a whole site. These
functions work on the store alone (no collector needed); a running AlertManager sees new acks within
its refresh interval, or at once when the dashboard calls the manager's own `acknowledge()`.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Iterable

from bibnet_ops.alerts._model import Ack
from bibnet_ops.alerts._policy import AccessPolicy
from bibnet_ops.alerts._store import AlertLog

__all__ = ["acknowledge", "login_name", "problem_key", "unacknowledge"]


def login_name() -> str:
    """The person at the keyboard: the invoking user under sudo, else the login name."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def problem_key(target: str) -> str:
    """Normalise a target: `site/device/check` stays, `site:ID` stays, a bare site id becomes `site:ID`."""
    target = target.strip()
    if target.startswith("site:") or "/" in target:
        return target
    return f"site:{target}"


def acknowledge(
    alert_log: AlertLog,
    targets: Iterable[str],
    comment: str,
    *,
    sticky: bool = False,
    expires_at: float | None = None,
    author: str | None = None,
    policy: AccessPolicy | None = None,
    now: float | None = None,
) -> list[Ack]:
    """Acknowledge one or more problems at once (each recorded and audited).

    Args:
        alert_log: the store's alerting tables.
        targets: problem keys or bare site ids (see `problem_key`).
        comment: what the person is doing about it (shown wherever the problem is).
        sticky: keep the ack across recoveries until it expires or is removed.
        expires_at: UTC epoch seconds after which the ack lapses (None: no expiry).
        author: who acknowledges (default: the login name).
        policy: refuses the change on a read-only console.

    Raises:
        ReadOnlyError: the policy is read-only.
        ValueError: no target, or an expiry in the past.
    """
    if policy is not None:
        policy.require("ack")
    keys = [problem_key(t) for t in targets if t.strip()]
    if not keys:
        raise ValueError("nothing to acknowledge")
    when = time.time() if now is None else now
    if expires_at is not None and expires_at <= when:
        raise ValueError("the expiry is in the past")
    return alert_log.add_acks(keys, author or login_name(), comment.strip(), when, sticky=sticky, expires_at=expires_at)


def unacknowledge(
    alert_log: AlertLog,
    targets: Iterable[str],
    *,
    who: str | None = None,
    policy: AccessPolicy | None = None,
    now: float | None = None,
) -> list[Ack]:
    """Remove the acks of problems (audited); returns the acks that were ended.

    Raises:
        ReadOnlyError: the policy is read-only.
    """
    if policy is not None:
        policy.require("unack")
    keys = [problem_key(t) for t in targets if t.strip()]
    return alert_log.end_acks(keys, who or login_name(), time.time() if now is None else now, "removed")
