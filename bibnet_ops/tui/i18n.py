"""Every string the dashboard shows, in English and French: one catalogue per language, nothing in widgets.

The catalogues themselves live one module per language (`i18n_en`, `i18n_fr`); this module looks them up.

`tr(key, **fields)` looks a key up in the current language (set once by the app with `use_language`),
falling back to English; the tests check both catalogues hold the same keys and placeholders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from bibnet_ops.model import CheckStatus, SiteStatus
from bibnet_ops.tui.i18n_en import EN
from bibnet_ops.tui.i18n_fr import FR

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
