"""Arabic text for terminals without bidirectional support (PuTTY, Windows Terminal, most SSH clients).

`shaped` joins letters into their contextual presentation forms (arabic-reshaper) and reverses runs into
visual order (python-bidi), so the text reads right-to-left on a left-to-right terminal; `raw` passes the
logical text through for terminals that do their own shaping and bidi (mlterm, Konsole, GNOME Terminal).
"""

from __future__ import annotations

from functools import lru_cache

import arabic_reshaper
from bidi import get_display
from rich.cells import cell_len

__all__ = ["ARABIC_MODES", "display_text", "display_width", "has_rtl"]

ARABIC_MODES = ("shaped", "raw")


def has_rtl(text: str) -> bool:
    """True if the text holds Arabic or Hebrew letters (the only scripts needing visual reordering)."""
    return any("\u0590" <= ch <= "\u08ff" or "\ufb1d" <= ch <= "\ufefc" for ch in text)


@lru_cache(maxsize=8192)
def _shaped(text: str) -> str:
    return str(get_display(arabic_reshaper.reshape(text)))


def display_text(text: str, mode: str = "shaped") -> str:
    """Return `text` ready to print: shaped and visually ordered in `shaped` mode, untouched in `raw`.

    Text without right-to-left letters is returned as is, so callers may pass any name through.
    """
    if mode == "raw" or not text or not has_rtl(text):
        return text
    return _shaped(text)


def display_width(text: str, mode: str = "shaped") -> int:
    """Terminal cells the displayed text occupies (ligatures make shaped text narrower than logical)."""
    return cell_len(display_text(text, mode))
