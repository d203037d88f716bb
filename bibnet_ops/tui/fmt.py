"""Small formatting helpers for the screens: ages, clock times, values with units (no Textual)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bibnet_ops.tui.i18n import current_language, tr

__all__ = ["age", "clock_time", "number", "share", "short_site_name", "value_with_unit"]


def age(seconds: float | None) -> str:
    """A duration the way a technician says it: `45s`, `12m`, `3h`, `2d` (localised units)."""
    if seconds is None:
        return tr("unit.never")
    seconds = max(0.0, seconds)
    if seconds < 60:
        return tr("unit.seconds", n=int(seconds))
    if seconds < 3600:
        return tr("unit.minutes", n=int(seconds // 60))
    if seconds < 86400:
        return tr("unit.hours", n=int(seconds // 3600))
    return tr("unit.days", n=int(seconds // 86400))


def clock_time(epoch: float, tz: ZoneInfo) -> str:
    """Local wall-clock time (HH:MM:SS) of a UTC epoch."""
    return datetime.fromtimestamp(epoch, tz).strftime("%H:%M:%S")


def number(value: float, decimals: int = 0) -> str:
    """A number with thousands grouped the local way (`12,345` in English, `12 345` in French)."""
    text = f"{value:,.{decimals}f}"
    if current_language() == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def share(percent: float) -> str:
    """A part of a whole in percent, never rounded up to a whole it is not: 99.96 -> `99.9 %`, not `100 %`."""
    if round(percent) >= 100 > percent:
        return f"{number(math.floor(percent * 10) / 10, 1)} %"
    return f"{number(percent)} %"


def value_with_unit(value: float | None, unit: str) -> str:
    """A check's last value with its unit, compact (`0.123 s` -> `123 ms`, `86400 s` -> `1d`)."""
    if value is None:
        return "—"
    if unit == "s":
        if abs(value) < 1:
            return f"{value * 1000:.0f} ms"
        if abs(value) < 120:
            return f"{value:.1f} s"
        return age(value)
    text = number(value) if abs(value) >= 100 or float(value).is_integer() else number(value, 2)
    return f"{text} {unit}".strip()


# The long French names of library kinds, shortened the way the ministry's own tables do.
_OF = r"( de la\s| de l'| de\s| d'| du\s| des\s)?\s*"
_SHORT_NAMES = (
    (re.compile(r"^Biblioth[eè]que principale de lecture publique" + _OF, re.I), "BPLP "),
    (re.compile(r"^Biblioth[eè]que de lecture publique" + _OF, re.I), "BLP "),
    (re.compile(r"^Biblioth[eè]que municipale" + _OF, re.I), "BM "),
    (re.compile(r"^Annexe" + _OF, re.I), "Annexe "),
)


def short_site_name(name: str) -> str:
    """A site's French name without the long kind prefix (`Bibliothèque principale de lecture publique
    d'Oran` -> `BPLP Oran`), for narrow lists and map labels."""
    for pattern, short in _SHORT_NAMES:
        new, n = pattern.subn(short, name, count=1)
        if n:
            return new.strip()
    return name
