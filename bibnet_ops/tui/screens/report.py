"""Reports: availability, SLA, outages, MTTR and pages over a period, previewed and exported like the CLI's.

The report is computed from the history store in a thread worker and the files are written in another, so
a month of a 2,000-site network never freezes the screen; results come back as messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Input, Label, Select, Static

from bibnet_ops.store import StoreLike
from bibnet_ops.tui.arabic import display_text
from bibnet_ops.tui.fmt import number, share, short_site_name
from bibnet_ops.tui.history import (
    PERIODS,
    REPORT_GROUPINGS,
    NoHistoryError,
    ReportRequest,
    compute_report,
    has_data,
    local_today,
    period_dates,
    report_cells,
    write_report,
)
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.screens.base import LiveScreen
from bibnet_ops.tui.widgets import NavTable, StatusHeader

if TYPE_CHECKING:
    from bibnet_ops.inventory import Inventory
    from bibnet_ops.reports import ReportRow, UptimeReport

__all__ = ["ReportScreen"]

_COLUMNS = ("key", "name", "availability", "sla", "down", "outages", "mttr", "pages")
_FORMATS = ("csv", "json", "md", "html")
_HOURS = ("opening", "24x7")
# Names are cut to this many characters so that the preview fits 80 columns.
_NAME_WIDTH = 18


@dataclass(frozen=True)
class _Outcome:
    """A computed report, or why there is none (`no_store`, `no_history`, or an error's text)."""

    request: ReportRequest
    report: UptimeReport | None = None
    problem: str = ""
    detail: str = ""


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs, read beforehand on the UI thread."""

    request: ReportRequest
    path: StoreLike | None
    inventory: Inventory
    now: float


def _outcome(job: _Job) -> _Outcome:
    """Compute a report (blocking: worker thread only)."""
    if job.path is None:
        return _Outcome(job.request, problem="no_store")
    try:
        return _Outcome(job.request, compute_report(job.path, job.inventory, job.request, job.now))
    except NoHistoryError:
        return _Outcome(job.request, problem="no_history", detail=str(job.path))
    except Exception as exc:  # shown on the screen: a damaged store must not end the dashboard
        return _Outcome(job.request, problem="error", detail=str(exc) or type(exc).__name__)


class ReportScreen(LiveScreen):
    """Choose a period, grouping and service hours; preview the figures; export csv/json/md/html files."""

    SCOPE = "report"

    class Computed(Message):
        """A report (or why there is none) for request number `generation`."""

        def __init__(self, generation: int, outcome: _Outcome) -> None:
            super().__init__()
            self.generation = generation
            self.outcome = outcome

    class Exported(Message):
        """A report file was written (`path`), or could not be (`problem`, `detail`)."""

        def __init__(self, path: Path | None, problem: str = "", detail: str = "") -> None:
            super().__init__()
            self.path = path
            self.problem = problem
            self.detail = detail

    def __init__(self) -> None:
        super().__init__()
        self.outcome: _Outcome | None = None
        self.exported: list[Path] = []
        self._generation = 0
        self._requested: ReportRequest | None = None

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        with Horizontal(classes="report-row"):
            yield Label(tr("report.period"), classes="report-label")
            yield Select(
                [(tr(f"report.period.{p}"), p) for p in PERIODS],
                value="this_month",
                allow_blank=False,
                compact=True,
                id="report-period",
            )
            yield Label(tr("report.from"), classes="report-label-short")
            yield Input(placeholder="YYYY-MM-DD", max_length=10, compact=True, id="report-from", classes="report-date")
            yield Label(tr("report.to"), classes="report-label-short")
            yield Input(placeholder="YYYY-MM-DD", max_length=10, compact=True, id="report-to", classes="report-date")
        with Horizontal(classes="report-row"):
            yield Label(tr("report.by"), classes="report-label")
            yield Select(
                [(tr(f"report.by.{b}"), b) for b in REPORT_GROUPINGS],
                value="site",
                allow_blank=False,
                compact=True,
                id="report-by",
            )
            yield Select(
                [(tr(f"report.hours.{h}"), h) for h in _HOURS],
                value="opening",
                allow_blank=False,
                compact=True,
                id="report-hours",
            )
            yield Select(
                [(f.upper(), f) for f in _FORMATS], value="csv", allow_blank=False, compact=True, id="report-format"
            )
        with Horizontal(classes="report-row"):
            yield Label(tr("report.directory"), classes="report-label")
            yield Input(str(Path.cwd()), compact=True, id="report-dir")
        yield Static(id="report-status")
        yield NavTable(id="report-table", cursor_type="row")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#report-table", NavTable)
        for col in _COLUMNS:
            table.add_column(tr(f"report.col.{col}"), key=col)
        self._fill_dates("this_month")
        self.action_refresh_now()
        self.query_one("#report-period", Select).focus()

    # The form.

    def _today_dates(self, period: str) -> tuple[str, str]:
        first, last = period_dates(period, local_today(self.dash.now(), self.dash.tz))
        return first.isoformat(), last.isoformat()

    def _fill_dates(self, period: str) -> None:
        first, last = self._today_dates(period)
        self.query_one("#report-from", Input).value = first
        self.query_one("#report-to", Input).value = last

    def _value(self, selector: str) -> str:
        return str(self.query_one(selector, Select).value)

    def request(self) -> ReportRequest:
        """What the form asks for now.

        Raises:
            ValueError: custom dates that are not YYYY-MM-DD, or in the wrong order.
        """
        period = self._value("#report-period")
        first, last = period_dates(
            period,
            local_today(self.dash.now(), self.dash.tz),
            self.query_one("#report-from", Input).value,
            self.query_one("#report-to", Input).value,
        )
        return ReportRequest(first, last, self._value("#report-by"), self._value("#report-hours"))

    @on(Select.Changed, "#report-period")
    def _period_changed(self, event: Select.Changed) -> None:
        if event.value != "custom":
            self._fill_dates(str(event.value))
        self._refresh_if_changed()

    @on(Select.Changed, "#report-by, #report-hours")
    def _grouping_changed(self) -> None:
        self._refresh_if_changed()

    def _refresh_if_changed(self) -> None:
        # The selects announce their first values after mount: computing a year of history again for the same
        # request would only make the preview redraw late.
        try:
            same = self.request() == self._requested
        except ValueError:
            same = False
        if not same:
            self.action_refresh_now()

    @on(Input.Submitted, "#report-from, #report-to")
    def _dates_submitted(self) -> None:
        period = self.query_one("#report-period", Select)
        if period.value != "custom":
            period.value = "custom"  # its Changed message recomputes
        else:
            self.action_refresh_now()

    # Computing (thread worker; the handler owns the screen's state).

    def action_refresh_now(self) -> None:
        """Compute the preview again from the store."""
        try:
            request = self.request()
        except ValueError:
            self._status(Text(tr("report.bad_dates"), style="bold"))
            return
        self._generation += 1
        self._requested = request
        self._status(Text(tr("report.computing", first=request.first, last=request.last)))
        self._compute(self._generation, self._job(request))

    def _job(self, request: ReportRequest) -> _Job:
        # Read on the UI thread; the worker gets plain values only.
        return _Job(request, self.dash.store_path, self.dash.inventory, self.dash.now())

    @work(thread=True, exclusive=True, group="report-preview", exit_on_error=False)
    def _compute(self, generation: int, job: _Job) -> None:
        self.post_message(self.Computed(generation, _outcome(job)))

    @on(Computed)
    def _computed(self, message: Computed) -> None:
        if message.generation != self._generation:
            return  # an older request finished after a newer one was made
        self.outcome = message.outcome
        self._show(message.outcome)

    def _show(self, outcome: _Outcome) -> None:
        table = self.query_one("#report-table", NavTable)
        table.clear()
        report = outcome.report
        if report is None:
            self._status(Text(self._problem_text(outcome.problem, outcome.detail), style="bold"))
            return
        if not has_data(report):
            self._status(Text(tr("report.no_data"), style="bold"))
        else:
            self._status(self._summary(report))
        for row in report.rows:
            table.add_row(*report_cells(row, self._row_name(row, report.by)), key=row.key)
        if report.total is not None:
            table.add_row(*report_cells(report.total, tr("report.total")), key="__total__")

    def _row_name(self, row: ReportRow, by: str) -> str:
        if by == "site":
            name = short_site_name(row.name_fr) or display_text(row.name_ar, self.dash.arabic)
        else:
            name = row.name_fr if by == "region" and row.name_fr else row.key
        return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 1] + "…"

    def _summary(self, report: UptimeReport) -> Text:
        total = report.total
        pct = "—" if total is None or total.availability_pct is None else f"{number(total.availability_pct, 2)} %"
        text = tr(
            "report.summary",
            first=report.period_from,
            last=report.period_to,
            pct=pct,
            target=number(report.sla_target_pct, 0 if report.sla_target_pct.is_integer() else 1),
            outages=len(report.outages),
        )
        if total is not None and total.service_min:
            unknown = 100.0 * total.unknown_min / total.service_min
            if round(unknown) >= 1:
                text += " " + tr("report.unknown", pct=share(unknown))
        return Text(text)

    @staticmethod
    def _problem_text(problem: str, detail: str) -> str:
        if problem in ("no_store", "no_history"):
            return tr(f"report.{problem}", path=detail)
        return tr("report.error", error=detail)

    def _status(self, text: Text) -> None:
        self.query_one("#report-status", Static).update(text)

    # Exporting (thread worker; same renderer as `bibnet-ops report`).

    def action_export(self) -> None:
        """Write the report in the chosen format into the chosen directory."""
        try:
            request = self.request()
        except ValueError:
            self.notify(tr("report.bad_dates"), severity="error")
            return
        raw = self.query_one("#report-dir", Input).value.strip() or "."
        directory = Path(raw).expanduser()
        current = self.outcome if self.outcome is not None and self.outcome.request == request else None
        self._export(self._job(request), current.report if current else None, self._value("#report-format"), directory)

    @work(thread=True, group="report-export", exit_on_error=False)
    def _export(self, job: _Job, report: UptimeReport | None, fmt: str, directory: Path) -> None:
        if report is None:
            outcome = _outcome(job)
            if outcome.report is None:
                self.post_message(self.Exported(None, outcome.problem, outcome.detail))
                return
            report = outcome.report
        try:
            path = write_report(report, fmt, directory)
        except FileNotFoundError:
            self.post_message(self.Exported(None, "no_dir", str(directory)))
        except Exception as exc:  # told to the user, who may pick another directory
            self.post_message(self.Exported(None, "error", str(exc) or type(exc).__name__))
        else:
            self.post_message(self.Exported(path))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        if message.path is not None:
            self.exported.append(message.path)
            self.notify(tr("note.report_written", path=str(message.path)))
        elif message.problem == "no_dir":
            self.notify(tr("note.report_no_dir", path=message.detail), severity="error")
        else:
            self.notify(self._problem_text(message.problem, message.detail), severity="error")

    def action_back(self) -> None:
        self.dismiss()
