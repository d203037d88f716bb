"""The resolved inventory as the rest of bibnet-ops sees it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bibnet_ops.model import CheckSpec, Region, Site, Thresholds

__all__ = ["CheckTemplate", "Inventory", "TemplateCheck"]


@dataclass(frozen=True)
class TemplateCheck:
    """One check of a template, before a device's address and overrides are applied."""

    name: str
    probe: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    interval: float = 60.0
    timeout: float = 10.0
    retries: int = 3
    retry_interval: float = 15.0
    recover_after: int = 1
    thresholds: Thresholds = field(default_factory=Thresholds)
    metric: str = ""
    unit: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class CheckTemplate:
    """What to probe on one kind of device (`checks/<name>.toml`)."""

    name: str
    kind: str
    description: str
    checks: tuple[TemplateCheck, ...]
    source: str = ""


@dataclass
class Inventory:
    """Sites, regions, templates and the checks they resolve to, plus the network-wide settings."""

    root: Path
    name: str = "bibnet"
    timezone: str = "Africa/Algiers"
    sites: dict[str, Site] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    templates: dict[str, CheckTemplate] = field(default_factory=dict)
    checks: list[CheckSpec] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def children(self, site_id: str) -> list[Site]:
        """Sites whose parent is `site_id`."""
        return [s for s in self.sites.values() if s.parent == site_id]

    def descendants(self, site_id: str) -> list[Site]:
        """Every site that depends on `site_id`, directly or through others."""
        out: list[Site] = []
        stack = [site_id]
        while stack:
            for child in self.children(stack.pop()):
                out.append(child)
                stack.append(child.id)
        return out

    def checks_of(self, site_id: str) -> list[CheckSpec]:
        return [c for c in self.checks if c.site_id == site_id]

    def select(self, pattern: str | None) -> Iterator[CheckSpec]:
        """Checks matching `SITE`, `SITE/DEVICE` or `SITE/DEVICE/CHECK` (all when pattern is empty)."""
        parts = [p for p in (pattern or "").split("/") if p]
        for check in self.checks:
            ident = [check.site_id, check.device_id, check.name]
            if all(a == b for a, b in zip(parts, ident, strict=False)):
                yield check
