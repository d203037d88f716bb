"""Alerting: who is told what and when — receivers, routing rules, acknowledgements, maintenance silencing.

Wire it with `build_alerting(inventory, store, engine)` (an `AlertManager`, used as an async context
manager); acknowledge with `acknowledge()` / `AlertManager.acknowledge()`; gate changes with
`access_policy(...)`. The `[alerts]` table of network.toml is documented in docs/alerts.md.
No Textual here: the dashboard calls these functions.
"""

from __future__ import annotations

from bibnet_ops.alerts._acks import acknowledge, login_name, problem_key, unacknowledge
from bibnet_ops.alerts._dispatch import DeliveryStats, Dispatcher
from bibnet_ops.alerts._manager import AlertManager, OpenAlert, Problem
from bibnet_ops.alerts._model import (
    PAYLOAD_VERSION,
    Ack,
    AlertRecord,
    DeliveryRecord,
    Notification,
    NotificationKind,
    ReadOnlyError,
)
from bibnet_ops.alerts._policy import ACTIONS, AccessPolicy, access_policy
from bibnet_ops.alerts._receivers import (
    CommandReceiver,
    DeliveryError,
    EmailReceiver,
    Receiver,
    WebhookReceiver,
    make_receiver,
)
from bibnet_ops.alerts._store import AlertLog, AuditRecord
from bibnet_ops.alerts._wiring import MaintenanceSync, alerting_config, build_alerting, store_file
from bibnet_ops.inventory import (
    AlertsConfig,
    EscalationStep,
    ReceiverConfig,
    Rule,
    parse_alerts,
    parse_duration,
    validate_alerts,
)

__all__ = [
    "ACTIONS",
    "PAYLOAD_VERSION",
    "AccessPolicy",
    "Ack",
    "AlertLog",
    "AlertManager",
    "AlertRecord",
    "AlertsConfig",
    "AuditRecord",
    "CommandReceiver",
    "DeliveryError",
    "DeliveryRecord",
    "DeliveryStats",
    "Dispatcher",
    "EmailReceiver",
    "EscalationStep",
    "MaintenanceSync",
    "Notification",
    "NotificationKind",
    "OpenAlert",
    "Problem",
    "ReadOnlyError",
    "Receiver",
    "ReceiverConfig",
    "Rule",
    "WebhookReceiver",
    "access_policy",
    "acknowledge",
    "alerting_config",
    "build_alerting",
    "login_name",
    "make_receiver",
    "parse_alerts",
    "parse_duration",
    "problem_key",
    "store_file",
    "unacknowledge",
    "validate_alerts",
]
