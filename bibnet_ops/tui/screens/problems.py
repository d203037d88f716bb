"""Problems: every non-OK check, worst and oldest first, UNREACHABLE sites folded under their root cause.

Rows show who acknowledged them; `a` acknowledges the marked rows (Space) or the one under the cursor,
`A` every row of the cursor's root cause, `u` removes acks.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Static

from bibnet_ops.model import SiteStatus
from bibnet_ops.tui.fmt import age, clock_time
from bibnet_ops.tui.i18n import check_state_name, site_state_name, tr
from bibnet_ops.tui.problems import ProblemRow, problem_rows
from bibnet_ops.tui.screens.base import LiveScreen
from bibnet_ops.tui.screens.evidence import EvidenceScreen
from bibnet_ops.tui.status import CHECK_GLYPH, CHECK_STYLE, SITE_GLYPH, SITE_STYLE
from bibnet_ops.tui.widgets import NavTable, StatusHeader
from bibnet_ops.tui.widgets.styled import STATUS_COMPONENTS, StyleCache

__all__ = ["ProblemsScreen"]

_COLUMNS = ("severity", "site", "check", "age", "reason")


class ProblemsScreen(LiveScreen):
    """The on-call view; rows are updated in place and rebuilt only when the set of problems changes."""

    SCOPE = "problems"
    COMPONENT_CLASSES = STATUS_COMPONENTS

    def __init__(self) -> None:
        super().__init__()
        self._styles = StyleCache(self)
        self._rows: list[ProblemRow] = []
        self._marked: set[str] = set()
        self._shown_acks: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Static(id="problems-title")
        yield NavTable(id="problems", cursor_type="row")
        # the whole reason of the row under the cursor: at 80 columns the table shows its first words only
        yield Static(id="problem-detail")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.add_class("statusful")
        table = self.query_one("#problems", NavTable)
        for col in _COLUMNS:
            table.add_column(tr(f"problems.col.{col}"), key=col)
        self._refresh(force=True)
        table.focus()

    def apply_changes(self, sites: set[str], checks: set[str]) -> None:
        if sites or checks:
            self._refresh()

    @property
    def rows(self) -> list[ProblemRow]:
        """The rows shown, in order."""
        return list(self._rows)

    def _refresh(self, force: bool = False) -> None:
        rows = problem_rows(self.dash.state)
        table = self.query_one("#problems", NavTable)
        title = tr("problems.count", n=sum(1 for r in rows if not r.folded)) if rows else tr("problems.none")
        self.query_one("#problems-title", Static).update(Text(f"{tr('problems.title')} — {title}"))
        if not force and [r.key for r in rows] == [r.key for r in self._rows]:
            for old, new in zip(self._rows, rows, strict=True):
                if old != new or self._ack_text(new) != self._shown_acks.get(new.key, ""):
                    self._update_row(table, new)
            self._rows = rows
            self._show_detail()
            return
        current = self._rows[table.cursor_row].key if 0 <= table.cursor_row < len(self._rows) else None
        self._rows = rows
        self._marked &= {r.key for r in rows}
        table.clear()
        for row in rows:
            table.add_row(*self._cells(row), key=row.key)
        keys = [r.key for r in rows]
        if current in keys:
            table.move_cursor(row=keys.index(current))
        self._show_detail()

    def _update_row(self, table: NavTable, row: ProblemRow) -> None:
        for col, value in zip(_COLUMNS, self._cells(row), strict=True):
            table.update_cell(row.key, col, value)

    def acks_changed(self, keys: set[str]) -> None:
        table = self.query_one("#problems", NavTable)
        for row in self._rows:
            if keys & {*self._targets(row), f"site:{row.site_id}"}:
                self._update_row(table, row)
        self._show_detail()

    def _targets(self, row: ProblemRow) -> list[str]:
        """The problem keys a row acknowledges: its check (and its site when DOWN, whose alert covers it)."""
        if row.folded or not (row.check_id or row.checks):
            return [f"site:{row.site_id}"]
        checks = list(row.checks) or [row.check_id]
        if self.dash.state.site_status(row.site_id) == SiteStatus.DOWN:
            return [*checks, f"site:{row.site_id}"]
        return checks

    def _ack_text(self, row: ProblemRow) -> str:
        return self.dash.ack_text(*self._targets(row), f"site:{row.site_id}")

    def _cells(self, row: ProblemRow) -> tuple[Text | str, ...]:
        ack = self._ack_text(row)
        self._shown_acks[row.key] = ack
        state, site, check, since, reason = self._problem_cells(row)
        if row.key in self._marked:
            state = Text("» ", self._styles("label")) + state
        if ack:
            state.append(" ✔", self._styles("up"))  # visible even when the reason column is off-screen
            reason = Text(ack, self._styles("up")) + Text(f"  {reason}" if reason else "")
        return (state, site, check, since, reason)

    def _problem_cells(self, row: ProblemRow) -> tuple[Text, str, str, str, Text | str]:
        since = age(self.dash.now() - row.since) if row.since is not None else "—"
        if row.folded:
            unreachable = SiteStatus.UNREACHABLE
            state = Text(
                f"{SITE_GLYPH[unreachable]} {site_state_name(unreachable)}", self._styles(SITE_STYLE[unreachable])
            )
            # a short check cell, so that the age and reason columns still fit beside it at 80 columns
            shown = ", ".join(row.folded[:6]) + ("…" if len(row.folded) > 6 else "")
            count = tr("problems.folded_count", n=len(row.folded))
            return (state, "", count, since, tr("problems.folded", site=row.site_id, sites=shown))
        state = Text(f"{CHECK_GLYPH[row.status]} {check_state_name(row.status)}", self._styles(CHECK_STYLE[row.status]))
        if not row.hard:
            state.append(f" ({tr('state.soft')})", self._styles("dim"))
        if row.checks:
            return (state, row.site_id, tr("problems.site_checks", n=len(row.checks)), since,
                    tr("problems.site_failing", reason=row.reason))
        check = row.check_id.split("/", 1)[1] if row.check_id else "—"
        return (state, row.site_id, check, since, row.reason)

    def _cursor_row(self) -> ProblemRow | None:
        table = self.query_one("#problems", NavTable)
        if 0 <= table.cursor_row < len(self._rows):
            return self._rows[table.cursor_row]
        return None

    def _selected_site(self) -> str | None:
        row = self._cursor_row()
        return row.site_id if row is not None else None

    def _chosen_rows(self) -> list[ProblemRow]:
        """The marked rows, else the one under the cursor."""
        marked = [r for r in self._rows if r.key in self._marked]
        row = self._cursor_row()
        return marked or ([row] if row is not None else [])

    @staticmethod
    def _keys(rows: list[ProblemRow], targets: dict[str, list[str]]) -> list[str]:
        return list(dict.fromkeys(k for r in rows for k in targets[r.key]))

    def _show_detail(self) -> None:
        row = self._cursor_row()
        detail = self.query_one("#problem-detail", Static)
        if row is None:
            detail.update("")
            return
        state, _site, check, since, _reason = self._problem_cells(row)
        since_at = f"{since} ({clock_time(row.since, self.dash.tz)})" if row.since is not None else since
        if row.folded:
            everyone = tr("problems.folded", site=row.site_id, sites=", ".join(row.folded))
            text = Text.assemble(state, f"  {check} · {since_at}\n", everyone)
        elif row.checks:
            text = Text.assemble(state, f"  {row.site_id}: {check} · {since_at}\n")
            for i, cid in enumerate(row.checks):  # each check with its own state and reason, as far as lines go
                view = self.dash.state.checks[cid]
                status = view.status or row.status
                text.append(f"{' · ' if i else ''}{cid.split('/', 1)[1]} ", self._styles("plain"))
                text.append(f"{CHECK_GLYPH[status]} {check_state_name(status)}", self._styles(CHECK_STYLE[status]))
                text.append(f"  {' '.join(view.reason.split()) or '—'}", self._styles("dim"))
        else:
            text = Text.assemble(state, f"  {row.site_id}/{check} · {since_at}\n", row.reason or "—")
        ack = self._ack_text(row)
        if ack:
            text.append(f"  {ack}", self._styles("up"))
        detail.update(text)

    def on_data_table_row_highlighted(self, event: NavTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def on_data_table_row_selected(self, event: NavTable.RowSelected) -> None:
        event.stop()
        self.action_drill()

    def action_drill(self) -> None:
        site = self._selected_site()
        if site:
            self.dash.selected_site = site
            self.dash.open_site(site)

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh_now(self) -> None:
        self.dash.repoll(self._selected_site())

    def action_evidence(self) -> None:
        """The last raw reply of the row's check (the worst one of a site failing whole)."""
        row = self._cursor_row()
        check_id = (row.check_id or (row.checks[0] if row.checks else "")) if row is not None else ""
        if not check_id:
            self.notify(tr("note.no_check_reply"))
            return
        self.app.push_screen(EvidenceScreen(check_id))

    def action_mark(self) -> None:
        row = self._cursor_row()
        if row is None:
            return
        self._marked ^= {row.key}
        table = self.query_one("#problems", NavTable)
        self._update_row(table, row)
        table.action_cursor_down()
        self.notify(tr("note.marked", n=len(self._marked)))

    def action_ack(self) -> None:
        rows = self._chosen_rows()
        self.dash.request_ack(self._keys(rows, {r.key: self._targets(r) for r in rows}))

    def action_ack_cause(self) -> None:
        row = self._cursor_row()
        rows = [r for r in self._rows if row is not None and r.site_id == row.site_id]
        self.dash.request_ack(self._keys(rows, {r.key: self._targets(r) for r in rows}))

    def action_unack(self) -> None:
        rows = self._chosen_rows()
        keys = [*self._keys(rows, {r.key: self._targets(r) for r in rows}), *(f"site:{r.site_id}" for r in rows)]
        self.dash.request_unack(list(dict.fromkeys(keys)))

    def clear_marks(self) -> None:
        """Unmark every row (after the marked rows were acknowledged)."""
        marked = [r for r in self._rows if r.key in self._marked]
        self._marked.clear()
        table = self.query_one("#problems", NavTable)
        for row in marked:
            self._update_row(table, row)
