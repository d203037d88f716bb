"""Key schemas for the inventory and template files, and a checker that reports every problem it finds."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from bibnet_ops.inventory._errors import ConfigIssue
from bibnet_ops.inventory._tomlpos import KeyPath, TomlPositions

__all__ = ["SECRET_PARAM_KEYS", "FileContext", "Spec", "check_table", "format_path"]

# Parameter names whose value is a credential: they belong in `credentials` as a reference.
SECRET_PARAM_KEYS = frozenset(
    {"community", "password", "auth_key", "priv_key", "token", "secret", "api_key", "passphrase"}
)


@dataclass(frozen=True)
class Spec:
    """Expected type of one key: str, int, number, bool, list[str], table, or any."""

    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()


def format_path(path: KeyPath) -> str:
    """Render a key path the way a TOML user reads it: `devices[1].overrides.opac.interval`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass
class FileContext:
    """One file being validated: its display name, key positions and the issues found so far."""

    name: str
    positions: TomlPositions
    issues: list[ConfigIssue] = field(default_factory=list)

    def error(self, path: KeyPath, message: str) -> None:
        self.issues.append(
            ConfigIssue(self.name, self.positions.line_of(path), format_path(path), message)
        )


_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "list[str]": "a list of strings",
    "table": "a table",
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "table":
        return isinstance(value, dict)
    raise ValueError(kind)


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def check_table(
    ctx: FileContext, data: Any, schema: dict[str, Spec], path: KeyPath, what: str
) -> dict[str, Any]:
    """Check keys and types of one table; return only the keys that passed, so later steps can trust them."""
    if not isinstance(data, dict):
        ctx.error(path, f"{what} must be a table, not {_toml_type(data)}")
        return {}
    good: dict[str, Any] = {}
    for key, value in data.items():
        spec = schema.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(sorted(schema))}"
            ctx.error(path + (key,), f"unknown key '{key}' in {what}{hint}")
            continue
        if not _type_ok(spec.kind, value):
            ctx.error(path + (key,), f"'{key}' must be {_TYPE_NAMES[spec.kind]}, not {_toml_type(value)}")
            continue
        if spec.choices and value not in spec.choices:
            ctx.error(path + (key,), f"'{key}' must be one of {', '.join(spec.choices)}, not {value!r}")
            continue
        good[key] = value
    for key, spec in schema.items():
        if spec.required and key not in data:
            ctx.error(path, f"missing required key '{key}' in {what}")
    return good
