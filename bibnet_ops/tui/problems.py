"""The problems list: every non-OK check, worst first, with UNREACHABLE sites folded under their root cause
and a site whose every check fails folded into one row (SOFT or HARD: the row keeps its place as it hardens).

Plain functions over `NetworkState`, no Textual, so the ordering and folding rules are tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.tui.netstate import CheckView, NetworkState

__all__ = ["ProblemRow", "problem_rows"]

_CHECK_SEVERITY = {CheckStatus.CRITICAL: 3, CheckStatus.WARNING: 2, CheckStatus.UNKNOWN: 1, CheckStatus.OK: 0}


@dataclass(frozen=True)
class ProblemRow:
    """One line of the problems view: a failing check, or the sites folded behind a root cause."""

    key: str
    site_id: str
    check_id: str
    status: CheckStatus
    since: float | None
    reason: str
    hard: bool = True
    folded: tuple[str, ...] = field(default_factory=tuple)
    # The checks of a site that fails as a whole, shown as this one row (worst first).
    checks: tuple[str, ...] = field(default_factory=tuple)


def _root_of(state: NetworkState, site_id: str) -> str:
    """Follow root-cause (or parent) links from an UNREACHABLE site to the site really at fault."""
    seen = {site_id}
    current = site_id
    while True:
        view = state.sites.get(current)
        if view is None or view.status != SiteStatus.UNREACHABLE:
            return current
        nxt = view.root_cause or view.site.parent
        if nxt is None or nxt in seen:
            return current
        seen.add(nxt)
        current = nxt


def problem_rows(state: NetworkState) -> list[ProblemRow]:
    """Rows for the problems view.

    Checks of sites that are UNREACHABLE are not listed one by one: the sites are folded into one row under
    the first row of the site at fault. A site whose every check fails (two or more, SOFT or HARD) is one row,
    `checks` naming them, in the place of its worst check. Rows are sorted by severity (CRITICAL, WARNING,
    UNKNOWN), then by age, longest-standing first, so the root of an outage comes before what it caused.
    """
    unreachable: dict[str, list[str]] = {}
    for sid, view in state.sites.items():
        if view.status == SiteStatus.UNREACHABLE:
            unreachable.setdefault(_root_of(state, sid), []).append(sid)

    failing: list[CheckView] = [
        v
        for v in state.checks.values()
        if v.status is not None
        and v.status != CheckStatus.OK
        and state.site_status(v.spec.site_id) not in (SiteStatus.UNREACHABLE, SiteStatus.MAINTENANCE)
    ]
    failing.sort(key=lambda v: (-_CHECK_SEVERITY[v.status or CheckStatus.OK], v.since or 0.0, v.spec.id))
    whole = _sites_failing_whole(state, failing)

    rows: list[ProblemRow] = []
    folded_done: set[str] = set()
    whole_done: set[str] = set()
    for check in failing:
        sid = check.spec.site_id
        if sid in whole:
            if sid in whole_done:
                continue  # folded into the site's row already
            whole_done.add(sid)
            rows.append(_site_row(check, whole[sid]))
        else:
            rows.append(
                ProblemRow(
                    check.spec.id,
                    sid,
                    check.spec.id,
                    check.status or CheckStatus.UNKNOWN,
                    check.since,
                    check.reason,
                    check.hard,
                )
            )
        if sid in unreachable and sid not in folded_done:
            folded_done.add(sid)
            rows.append(_fold_row(state, sid, unreachable[sid]))
    # Roots whose own checks are not failing (e.g. a blackholed uplink reported only at site level).
    for root, children in sorted(unreachable.items()):
        if root in folded_done:
            continue
        site = state.sites.get(root)
        status = CheckStatus.CRITICAL if site is not None and site.status == SiteStatus.DOWN else CheckStatus.UNKNOWN
        since = site.since if site is not None else None
        reason = site.reason if site is not None else ""
        rows.append(ProblemRow(f"site:{root}", root, "", status, since, reason))
        rows.append(_fold_row(state, root, children))
    return rows


def _sites_failing_whole(state: NetworkState, failing: list[CheckView]) -> dict[str, list[CheckView]]:
    """Sites of two checks or more whose every check has a result and fails, with those checks worst first."""
    by_site: dict[str, list[CheckView]] = {}
    for check in failing:
        by_site.setdefault(check.spec.site_id, []).append(check)
    return {
        sid: checks
        for sid, checks in by_site.items()
        if len(checks) >= 2 and len(checks) == len(state.checks_of(sid))
    }


def _site_row(first: CheckView, checks: list[CheckView]) -> ProblemRow:
    """One row for a site whose every check fails: the worst check's state and reason, the oldest failure's age."""
    times = [c.since for c in checks if c.since is not None]
    return ProblemRow(
        f"checks:{first.spec.site_id}",
        first.spec.site_id,
        "",
        first.status or CheckStatus.UNKNOWN,
        min(times) if times else None,
        first.reason,
        all(c.hard for c in checks),
        checks=tuple(c.spec.id for c in checks),
    )


def _fold_row(state: NetworkState, root: str, children: list[str]) -> ProblemRow:
    children = sorted(children)
    times = [t for t in (state.sites[c].since for c in children) if t is not None]
    return ProblemRow(
        f"fold:{root}",
        root,
        "",
        CheckStatus.UNKNOWN,
        min(times) if times else None,
        "",
        folded=tuple(children),
    )
