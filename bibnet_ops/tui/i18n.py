"""Every string the dashboard shows, in English and French: one catalogue per language, nothing in widgets.

`tr(key, **fields)` looks a key up in the current language (set once by the app with `use_language`),
falling back to English; the tests check both catalogues hold the same keys and placeholders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from bibnet_ops.model import CheckStatus, SiteStatus

__all__ = [
    "CATALOGUES",
    "LANGUAGES",
    "check_state_name",
    "current_language",
    "detect_language",
    "site_state_name",
    "tr",
    "use_language",
]

LANGUAGES = ("en", "fr")

EN: dict[str, str] = {
    "app.title": "bibnet-ops — library network",
    # Site and check states.
    "site.UP": "UP",
    "site.DEGRADED": "DEGRADED",
    "site.DOWN": "DOWN",
    "site.UNREACHABLE": "UNREACHABLE",
    "site.MAINTENANCE": "MAINTENANCE",
    "site.PENDING": "PENDING",
    "check.OK": "OK",
    "check.WARNING": "WARNING",
    "check.CRITICAL": "CRITICAL",
    "check.UNKNOWN": "UNKNOWN",
    "state.soft": "SOFT",
    "state.hard": "HARD",
    # Header.
    "header.sites": "{n} sites",
    "header.throughput": "{rate} pages/h",
    "header.throughput_short": "{rate} p/h",
    "header.today": "{pages} today",
    "header.poll": "{rate} checks/s",
    "header.poll_short": "{rate}/s",
    "header.lag": "lag {lag}",
    "header.lag_short": "lag {lag}",
    "header.last": "last {age}",
    "header.last_short": "last {age}",
    "header.host": "CPU {cpu}% MEM {mem}%",
    "header.paused": "PAUSED",
    "header.refresh": "⟳{interval}",
    "header.filter": "filter: {text}",
    # Overview.
    "overview.title": "Network",
    "overview.map": "Map",
    "overview.sites": "Sites",
    "overview.feed": "Events",
    "overview.no_region": "(no region)",
    "overview.region_label": "{name}  {counts}",
    "overview.no_match": "No site matches the filter",
    "overview.filter_placeholder": "filter: name, id, wilaya, region, tag or state (down, oran...)",
    "overview.view_tree": "tree",
    "overview.view_tiles": "tiles",
    # Event feed.
    "feed.empty": "No state change yet",
    "feed.site_change": "site",
    # Site detail.
    "detail.title": "Site {site}",
    "detail.kind": "kind",
    "detail.wilaya": "wilaya",
    "detail.region": "region",
    "detail.parent": "parent",
    "detail.children": "children",
    "detail.none": "none",
    "detail.since": "since {when}",
    "detail.checks": "Devices and checks",
    "detail.col.check": "device/check",
    "detail.col.state": "state",
    "detail.col.type": "type",
    "detail.col.since": "since",
    "detail.col.value": "last value",
    "detail.col.reason": "reason",
    "detail.latency": "latency (ms)",
    "detail.pages": "pages/h",
    "detail.sync_lag": "sync lag",
    "detail.events": "Recent events",
    "detail.no_data": "no data yet",
    "detail.root_cause": "behind {site}",
    # Problems.
    "problems.title": "Problems",
    "problems.col.severity": "state",
    "problems.col.site": "site",
    "problems.col.check": "check",
    "problems.col.age": "for",
    "problems.col.reason": "reason",
    "problems.none": "No problem: every check is OK",
    "problems.folded": "↳ {n} site(s) UNREACHABLE behind {site}: {sites}",
    "problems.count": "{n} problem(s)",
    # Help.
    "help.title": "Keys",
    "help.scope.app": "Everywhere",
    "help.scope.overview": "Network overview",
    "help.scope.detail": "Site detail",
    "help.scope.problems": "Problems",
    "help.scope.nav": "Moving around",
    "help.close": "Esc or q closes this help",
    "help.col.keys": "keys",
    "help.col.action": "action",
    # Key bindings (footer, help, palette).
    "key.quit": "Quit",
    "key.help": "Help",
    "key.palette": "Commands",
    "key.filter": "Filter",
    "key.clear_filter": "Clear filter",
    "key.pause": "Pause",
    "key.refresh_now": "Re-poll",
    "key.faster": "Faster refresh",
    "key.slower": "Slower refresh",
    "key.drill": "Open",
    "key.back": "Back",
    "key.problems": "Problems",
    "key.overview": "Overview",
    "key.toggle_view": "Tree/tiles",
    "key.theme": "Next theme",
    "key.cursor_down": "Down",
    "key.cursor_up": "Up",
    "key.cursor_left": "Left",
    "key.cursor_right": "Right",
    "key.top": "First",
    "key.bottom": "Last",
    "key.focus_next": "Next panel",
    # Notifications.
    "note.paused": "Live updates paused",
    "note.resumed": "Live updates resumed",
    "note.refresh": "Screen refresh every {interval}",
    "note.repoll": "Re-poll requested: {pattern}",
    "note.repoll_none": "Nothing selected to re-poll",
    "note.no_engine": "No engine attached: nothing to re-poll",
    "note.theme": "Theme: {theme}",
    # Units.
    "unit.seconds": "{n}s",
    "unit.minutes": "{n}m",
    "unit.hours": "{n}h",
    "unit.days": "{n}d",
    "unit.never": "never",
}

FR: dict[str, str] = {
    "app.title": "bibnet-ops — réseau des bibliothèques",
    "site.UP": "EN SERVICE",
    "site.DEGRADED": "DÉGRADÉ",
    "site.DOWN": "EN PANNE",
    "site.UNREACHABLE": "INJOIGNABLE",
    "site.MAINTENANCE": "MAINTENANCE",
    "site.PENDING": "EN ATTENTE",
    "check.OK": "OK",
    "check.WARNING": "ALERTE",
    "check.CRITICAL": "CRITIQUE",
    "check.UNKNOWN": "INCONNU",
    "state.soft": "PROVISOIRE",
    "state.hard": "CONFIRMÉ",
    "header.sites": "{n} sites",
    "header.throughput": "{rate} pages/h",
    "header.throughput_short": "{rate} p/h",
    "header.today": "{pages} auj.",
    "header.poll": "{rate} contrôles/s",
    "header.poll_short": "{rate}/s",
    "header.lag": "retard {lag}",
    "header.lag_short": "ret. {lag}",
    "header.last": "dernier {age}",
    "header.last_short": "dern. {age}",
    "header.host": "CPU {cpu}% MÉM {mem}%",
    "header.paused": "EN PAUSE",
    "header.refresh": "⟳{interval}",
    "header.filter": "filtre : {text}",
    "overview.title": "Réseau",
    "overview.map": "Carte",
    "overview.sites": "Sites",
    "overview.feed": "Événements",
    "overview.no_region": "(sans région)",
    "overview.region_label": "{name}  {counts}",
    "overview.no_match": "Aucun site ne correspond au filtre",
    "overview.filter_placeholder": "filtre : nom, id, wilaya, région, étiquette ou état (panne, oran...)",
    "overview.view_tree": "arbre",
    "overview.view_tiles": "tuiles",
    "feed.empty": "Aucun changement d'état pour l'instant",
    "feed.site_change": "site",
    "detail.title": "Site {site}",
    "detail.kind": "type",
    "detail.wilaya": "wilaya",
    "detail.region": "région",
    "detail.parent": "parent",
    "detail.children": "dépendants",
    "detail.none": "aucun",
    "detail.since": "depuis {when}",
    "detail.checks": "Équipements et contrôles",
    "detail.col.check": "équipement/contrôle",
    "detail.col.state": "état",
    "detail.col.type": "type",
    "detail.col.since": "depuis",
    "detail.col.value": "dernière valeur",
    "detail.col.reason": "raison",
    "detail.latency": "latence (ms)",
    "detail.pages": "pages/h",
    "detail.sync_lag": "retard de synchro",
    "detail.events": "Événements récents",
    "detail.no_data": "pas encore de données",
    "detail.root_cause": "derrière {site}",
    "problems.title": "Problèmes",
    "problems.col.severity": "état",
    "problems.col.site": "site",
    "problems.col.check": "contrôle",
    "problems.col.age": "depuis",
    "problems.col.reason": "raison",
    "problems.none": "Aucun problème : tous les contrôles sont OK",
    "problems.folded": "↳ {n} site(s) INJOIGNABLE(S) derrière {site} : {sites}",
    "problems.count": "{n} problème(s)",
    "help.title": "Touches",
    "help.scope.app": "Partout",
    "help.scope.overview": "Vue du réseau",
    "help.scope.detail": "Détail d'un site",
    "help.scope.problems": "Problèmes",
    "help.scope.nav": "Déplacements",
    "help.close": "Échap ou q ferme cette aide",
    "help.col.keys": "touches",
    "help.col.action": "action",
    "key.quit": "Quitter",
    "key.help": "Aide",
    "key.palette": "Commandes",
    "key.filter": "Filtrer",
    "key.clear_filter": "Effacer le filtre",
    "key.pause": "Pause",
    "key.refresh_now": "Interroger",
    "key.faster": "Rafraîchir plus vite",
    "key.slower": "Rafraîchir moins vite",
    "key.drill": "Ouvrir",
    "key.back": "Retour",
    "key.problems": "Problèmes",
    "key.overview": "Vue d'ensemble",
    "key.toggle_view": "Arbre/tuiles",
    "key.theme": "Thème suivant",
    "key.cursor_down": "Bas",
    "key.cursor_up": "Haut",
    "key.cursor_left": "Gauche",
    "key.cursor_right": "Droite",
    "key.top": "Premier",
    "key.bottom": "Dernier",
    "key.focus_next": "Panneau suivant",
    "note.paused": "Mises à jour en pause",
    "note.resumed": "Mises à jour reprises",
    "note.refresh": "Rafraîchissement toutes les {interval}",
    "note.repoll": "Interrogation demandée : {pattern}",
    "note.repoll_none": "Aucune sélection à interroger",
    "note.no_engine": "Aucun moteur : rien à interroger",
    "note.theme": "Thème : {theme}",
    "unit.seconds": "{n} s",
    "unit.minutes": "{n} min",
    "unit.hours": "{n} h",
    "unit.days": "{n} j",
    "unit.never": "jamais",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "fr": FR}

_current: dict[str, str] = EN
_current_lang = "en"


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    """The UI language from the POSIX locale variables: French for `fr*`, English otherwise."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(var, "")
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def use_language(lang: str) -> None:
    """Make `lang` ("en" or "fr") the language of every later `tr` call."""
    global _current, _current_lang
    if lang not in CATALOGUES:
        raise ValueError(f"unsupported language {lang!r} (choose from {', '.join(LANGUAGES)})")
    _current, _current_lang = CATALOGUES[lang], lang


def current_language() -> str:
    """The language `tr` currently answers in."""
    return _current_lang


def tr(key: str, **fields: object) -> str:
    """The text of `key` in the current language, with `{placeholders}` filled from `fields`."""
    text = _current.get(key) or EN.get(key, key)
    return text.format(**fields) if fields else text


def site_state_name(status: SiteStatus | None) -> str:
    """A site status as a word in the current language (None: not polled yet)."""
    return tr(f"site.{status.value if status is not None else 'PENDING'}")


def check_state_name(status: CheckStatus) -> str:
    """A check status as a word in the current language."""
    return tr(f"check.{status.value}")
