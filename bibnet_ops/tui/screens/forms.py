"""Small modal forms: acknowledge problems, start a maintenance window; each returns a request or None.

Enter in a text box (or ctrl+s / F10) submits, Esc cancels; a mistake is shown in the form, which stays open.
"""

from __future__ import annotations

from typing import Generic, TypeVar, cast

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Footer, Input, Label, RadioButton, RadioSet, Static

from bibnet_ops.tui.changes import AckRequest, MaintenanceRequest, parse_optional_duration
from bibnet_ops.tui.host import Dashboard
from bibnet_ops.tui.i18n import tr
from bibnet_ops.tui.keys import with_scope

__all__ = ["AckForm", "MaintenanceForm"]

R = TypeVar("R")


class _Form(ModalScreen[R | None], Generic[R]):
    """A form in a box over the current screen, with the registry's "form" keys."""

    def __init__(self) -> None:
        super().__init__()
        self._bindings = with_scope(self._bindings, "form")

    @property
    def dash(self) -> Dashboard:
        return cast(Dashboard, self.app)

    def fail(self, text: str) -> None:
        """Show what is wrong; the form stays open."""
        self.query_one(".form-error", Static).update(text)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)


class AckForm(_Form[AckRequest]):
    """Comment, sticky, expiry for acknowledging `keys`; dismisses with an `AckRequest`."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = tuple(keys)

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-box") as box:
            box.border_title = tr("form.ack.title", n=len(self.keys))
            shown = ", ".join(self.keys[:6]) + ("…" if len(self.keys) > 6 else "")
            yield Static(shown, classes="form-targets")
            yield Label(tr("form.ack.comment"))
            yield Input(id="ack-comment")
            yield Checkbox(tr("form.ack.sticky"), id="ack-sticky")
            yield Label(tr("form.ack.expires"))
            yield Input(id="ack-expires")
            yield Static(classes="form-error")
        yield Footer(show_command_palette=False)

    def action_submit(self) -> None:
        comment = self.query_one("#ack-comment", Input).value.strip()
        if not comment:
            self.fail(tr("form.need_comment"))
            return
        text = self.query_one("#ack-expires", Input).value
        try:
            expires = parse_optional_duration(text)
        except ValueError:
            self.fail(tr("form.bad_duration", text=text.strip()))
            return
        sticky = self.query_one("#ack-sticky", Checkbox).value
        self.dismiss(AckRequest(self.keys, comment, sticky, expires))


class MaintenanceForm(_Form[MaintenanceRequest]):
    """Site or region, duration, SLA choice and reason for a window from now; dismisses with a `MaintenanceRequest`."""

    def __init__(self, site_id: str) -> None:
        super().__init__()
        self.site_id = site_id

    def compose(self) -> ComposeResult:
        inventory = self.dash.inventory
        site = inventory.sites[self.site_id]
        region = inventory.regions.get(site.region)
        with Vertical(classes="form-box") as box:
            box.border_title = tr("form.maint.title", site=self.site_id)
            with RadioSet(id="maint-scope"):
                yield RadioButton(tr("form.maint.scope_site", site=self.site_id), value=True, id="maint-site")
                yield RadioButton(
                    tr("form.maint.scope_region", region=region.name_fr if region else site.region),
                    id="maint-region",
                    disabled=not site.region,
                )
            yield Label(tr("form.maint.duration"))
            yield Input("1h", id="maint-duration")
            yield Checkbox(tr("form.maint.sla"), value=True, id="maint-sla")
            yield Label(tr("form.maint.comment"))
            yield Input(id="maint-reason")
            yield Static(classes="form-error")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#maint-reason", Input).focus()

    def action_submit(self) -> None:
        text = self.query_one("#maint-duration", Input).value
        try:
            duration = parse_optional_duration(text)
        except ValueError:
            duration = None
        if duration is None:
            self.fail(tr("form.bad_duration", text=text.strip()))
            return
        reason = self.query_one("#maint-reason", Input).value.strip()
        if not reason:
            self.fail(tr("form.need_comment"))
            return
        site = self.dash.inventory.sites[self.site_id]
        regional = self.query_one("#maint-region", RadioButton).value
        scope, target = ("region", site.region) if regional else ("site", self.site_id)
        sla = self.query_one("#maint-sla", Checkbox).value
        self.dismiss(MaintenanceRequest(scope, target, duration, reason, exclude_from_sla=sla))
