"""The inventory: sites and devices from `config/`, check templates from `checks/`, resolved and validated."""

from __future__ import annotations

from bibnet_ops.inventory._errors import ConfigError, ConfigIssue
from bibnet_ops.inventory._model import CheckTemplate, Inventory, TemplateCheck
from bibnet_ops.inventory.loader import load_inventory, resolve_config_dir

__all__ = [
    "CheckTemplate",
    "ConfigError",
    "ConfigIssue",
    "Inventory",
    "TemplateCheck",
    "load_inventory",
    "resolve_config_dir",
]
