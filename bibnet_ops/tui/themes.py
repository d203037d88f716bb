"""Dashboard themes: the default dark theme, a high-contrast one, and ANSI themes that follow the terminal."""

from __future__ import annotations

from textual.theme import Theme

__all__ = ["HIGH_CONTRAST", "THEMES", "theme_name"]

HIGH_CONTRAST = Theme(
    name="bibnet-high-contrast",
    primary="#ffffff",
    secondary="#ffff00",
    accent="#00ffff",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1a1a1a",
    success="#00ff00",
    warning="#ffff00",
    error="#ff3030",
    dark=True,
)

# Names accepted by --theme, mapped to Textual theme names; `ansi-*` use the terminal's own 16 colours.
THEMES: dict[str, str] = {
    "default": "textual-dark",
    "high-contrast": HIGH_CONTRAST.name,
    "ansi-dark": "ansi-dark",
    "ansi-light": "ansi-light",
}


def theme_name(choice: str) -> str:
    """The Textual theme for a --theme choice (a Textual theme name is accepted as is)."""
    return THEMES.get(choice, choice)
