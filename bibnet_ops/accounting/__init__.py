"""Uptime accounting: time intervals, category timelines from state changes, and availability figures.

It sits below both the store (which keeps each device's worst-of timeline as it records transitions, and
gives the dashboard a site's recent uptime) and the reports (which account months of history), so that
neither imports the other and both count time under the same rules (`RULES`, written into every report).
Pure arithmetic: it imports nothing else of bibnet-ops.
"""

from __future__ import annotations

from bibnet_ops.accounting._intervals import Span, SpanIndex, intersect, measure, normalize, subtract, union
from bibnet_ops.accounting._timeline import (
    CHECK_CATEGORY,
    DOWN,
    MAINTENANCE,
    RANK,
    UNKNOWN,
    UNREACHABLE,
    UP,
    Segment,
    timeline,
    worst_of,
)
from bibnet_ops.accounting._uptime import (
    RULES,
    SITE_CATEGORY,
    Availability,
    Basis,
    CollectorRunLike,
    OutageSpan,
    account,
    account_on,
    basis,
    combine,
    coverage,
)

__all__ = [
    "CHECK_CATEGORY",
    "DOWN",
    "MAINTENANCE",
    "RANK",
    "RULES",
    "SITE_CATEGORY",
    "UNKNOWN",
    "UNREACHABLE",
    "UP",
    "Availability",
    "Basis",
    "CollectorRunLike",
    "OutageSpan",
    "Segment",
    "Span",
    "SpanIndex",
    "account",
    "account_on",
    "basis",
    "combine",
    "coverage",
    "intersect",
    "measure",
    "normalize",
    "subtract",
    "timeline",
    "union",
    "worst_of",
]
