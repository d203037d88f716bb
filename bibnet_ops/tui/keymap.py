"""A technician's own keys: a TOML file that rebinds registry entries by id, checked like the inventory.

```toml
[keys]
filter = "s,slash"      # the first key is the one the footer shows
quit = "Q"              # q no longer quits (ctrl+c and ctrl+q always do)
```

Every problem is reported with file, line and key (unknown ids with a "did you mean"), and a key bound
twice where both bindings are active at once (the same screen, or a screen and the app's own keys) is
refused rather than left to whichever Textual happens to try first.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from bibnet_ops.inventory import ConfigError, ConfigIssue
from bibnet_ops.inventory._parse import read_toml
from bibnet_ops.tui.keys import REGISTRY, registry

__all__ = ["default_keymap_path", "load_keymap"]

# A key as Textual names it: one printable character, or lower-case words joined by `_` and modifiers by `+`.
_KEY = re.compile(r"^(?:(?:ctrl|shift|alt|meta|super|hyper)\+)*(?:[a-z][a-z0-9_]*|[^\s,+])$")


def default_keymap_path() -> Path | None:
    """`$BIBNET_OPS_KEYMAP`, else `$XDG_CONFIG_HOME/bibnet-ops/keymap.toml` (or `~/.config/...`) if it exists."""
    named = os.environ.get("BIBNET_OPS_KEYMAP")
    if named:
        return Path(named)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "bibnet-ops" / "keymap.toml"
    return path if path.is_file() else None


def load_keymap(path: Path) -> dict[str, str]:
    """Read a keymap file: binding id -> keys (comma-separated, first shown).

    Raises:
        ConfigError: with every problem of the file, each naming its line and key.
    """
    issues: list[ConfigIssue] = []
    read = read_toml(path, issues)
    if read is None:
        raise ConfigError(issues)
    data, ctx = read
    ids = {spec.id: spec for spec in REGISTRY}
    for key in data:
        if key != "keys":
            ctx.error((key,), f"unknown key '{key}' (a keymap has one table, [keys])")
    table = data.get("keys", {})
    if not isinstance(table, dict):
        ctx.error(("keys",), "'keys' must be a table of binding id = \"keys\"")
        table = {}
    keymap: dict[str, str] = {}
    for binding_id, value in table.items():
        where = ("keys", binding_id)
        if binding_id not in ids:
            close = difflib.get_close_matches(binding_id, list(ids), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else " (the ids are listed in docs/dashboard.md)"
            ctx.error(where, f"unknown binding id '{binding_id}'{hint}")
            continue
        if not isinstance(value, str) or not value.strip():
            ctx.error(where, f"'{binding_id}' must be a non-empty string of keys such as \"s,f3\"")
            continue
        keys = [k.strip() for k in value.split(",")]
        bad = [k for k in keys if not _KEY.match(k)]
        if bad:
            ctx.error(where, f"not a key name: {', '.join(repr(k) for k in bad)} (examples: s, f3, ctrl+s, slash)")
            continue
        keymap[binding_id] = ",".join(keys)
    for binding_id, message in _clashes(keymap):
        ctx.error(("keys", binding_id), message)
    if ctx.issues:
        raise ConfigError(sorted(ctx.issues, key=lambda issue: issue.line or 0))
    return keymap


def _clashes(keymap: Mapping[str, str]) -> list[tuple[str, str]]:
    """Keys the keymap makes do two things at once: (rebound id, message)."""
    specs = registry(keymap)
    out: list[tuple[str, str]] = []
    for spec in specs:
        if spec.id not in keymap:
            continue
        for other in specs:
            if other.id == spec.id or (other.action == spec.action and other.scope == spec.scope):
                continue
            # the app's keys are live on every screen, on top of the screen's own
            live_together = spec.scope == other.scope or "app" in (spec.scope, other.scope)
            shared = set(spec.keys.split(",")) & set(other.keys.split(","))
            if live_together and shared:
                out.append((spec.id, f"key {', '.join(sorted(shared))} is also bound to '{other.id}' "
                                     f"({other.scope} keys); rebind that one too or pick another key"))
                break
    return out
