"""The inventory: sites and devices from `config/`, check templates from `checks/`, resolved and validated.

It reads and validates every table of the configuration, `[alerts]` included (`AlertsConfig`, which
alerting acts on), so that every configuration error is reported in one place with file, line and key.
"""

from __future__ import annotations

from bibnet_ops.inventory._alerts import (
    AlertsConfig,
    EscalationStep,
    ReceiverConfig,
    Rule,
    parse_alerts,
    parse_duration,
    validate_alerts,
)
from bibnet_ops.inventory._errors import ConfigError, ConfigIssue
from bibnet_ops.inventory._model import CheckTemplate, Inventory, TemplateCheck
from bibnet_ops.inventory.loader import load_inventory, resolve_config_dir

__all__ = [
    "AlertsConfig",
    "CheckTemplate",
    "ConfigError",
    "ConfigIssue",
    "EscalationStep",
    "Inventory",
    "ReceiverConfig",
    "Rule",
    "TemplateCheck",
    "load_inventory",
    "parse_alerts",
    "parse_duration",
    "resolve_config_dir",
    "validate_alerts",
]
