"""Find the line where a key path is written in a TOML file, so errors can name file, line and key.

`tomllib` gives values without positions; this scanner reads the same text once and records the line of
every table header and `key = value`, following `[[array]]` indices, so that `("devices", 2, "template")`
maps to the line where the third device's template is written. It only has to be right for valid TOML
(the loader reports syntax errors from tomllib itself), and falls back to the nearest enclosing key.
"""

from __future__ import annotations

import re

__all__ = ["KeyPath", "TomlPositions"]

KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(text: str) -> list[str]:
    """Split a dotted TOML key (`a."b.c".d`) into its parts."""
    parts: list[str] = []
    i = 0
    text = text.strip()
    while i < len(text):
        ch = text[i]
        if ch in " \t.":
            i += 1
            continue
        if ch in "\"'":
            end = text.find(ch, i + 1)
            if end < 0:
                end = len(text)
            parts.append(text[i + 1 : end])
            i = end + 1
            continue
        m = _BARE.match(text, i)
        if not m:
            break
        parts.append(m.group(0))
        i = m.end()
    return parts


def _key_part(line: str) -> str | None:
    """Return the key of a `key = value` line, or None if the line is not one."""
    in_quote = ""
    for i, ch in enumerate(line):
        if in_quote:
            if ch == in_quote:
                in_quote = ""
        elif ch in "\"'":
            in_quote = ch
        elif ch == "=":
            return line[:i]
        elif ch == "#":
            return None
    return None


class TomlPositions:
    """Line numbers (1-based) of the keys and tables of one TOML document."""

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        self._array_counts: dict[KeyPath, int] = {}
        self._scan(text)

    def _resolve_header(self, parts: list[str], is_array: bool) -> KeyPath:
        path: list[str | int] = []
        for n, part in enumerate(parts):
            path.append(part)
            last = n == len(parts) - 1
            key = tuple(path)
            if last and is_array:
                idx = self._array_counts.get(key, 0)
                self._array_counts[key] = idx + 1
                path.append(idx)
            elif key in self._array_counts:
                path.append(self._array_counts[key] - 1)
        return tuple(path)

    def _scan(self, text: str) -> None:
        prefix: KeyPath = ()
        depth = 0
        in_multiline = ""
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_multiline:
                if in_multiline in line:
                    in_multiline = ""
                continue
            if depth > 0:
                depth += line.count("[") + line.count("{") - line.count("]") - line.count("}")
                continue
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                inner = line[2 : line.find("]]")] if "]]" in line else line[2:]
                prefix = self._resolve_header(_split_key(inner), is_array=True)
                self.lines.setdefault(prefix, lineno)
                self.lines.setdefault(prefix[:-1], lineno)
                continue
            if line.startswith("["):
                inner = line[1 : line.find("]")] if "]" in line else line[1:]
                prefix = self._resolve_header(_split_key(inner), is_array=False)
                self.lines.setdefault(prefix, lineno)
                continue
            key = _key_part(line)
            if key is None:
                continue
            path = prefix + tuple(_split_key(key))
            self.lines.setdefault(path, lineno)
            value = line[len(key) + 1 :].strip()
            for quote in ('"""', "'''"):
                if value.startswith(quote) and value.count(quote) == 1:
                    in_multiline = quote
            if not in_multiline:
                opened = value.count("[") + value.count("{") - value.count("]") - value.count("}")
                depth = max(opened, 0)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path`, or of its nearest enclosing key or table that appears in the text."""
        path = tuple(path)
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return None
