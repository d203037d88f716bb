"""The `[alerts]` table of network.toml: receivers, routing rules and escalation, parsed and validated.

It lives with the rest of the configuration format: `load_inventory` reports every problem in it as a
ConfigIssue naming file, line and key, beside those of the other tables, once sites and regions are
known; alerting turns the validated table into `AlertsConfig` with `parse_alerts` and acts on it.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bibnet_ops.inventory._errors import ConfigIssue
from bibnet_ops.inventory._schema import FileContext, Spec, check_table
from bibnet_ops.inventory._tomlpos import KeyPath, TomlPositions
from bibnet_ops.model import SecretRef, Site

__all__ = [
    "CHECK_STATES",
    "SITE_STATES",
    "AlertsConfig",
    "EscalationStep",
    "ReceiverConfig",
    "Rule",
    "parse_alerts",
    "parse_duration",
    "validate_alerts",
]

SITE_STATES = ("DOWN", "DEGRADED")
CHECK_STATES = ("CRITICAL", "WARNING", "UNKNOWN")
RECEIVER_KINDS = ("webhook", "email", "command")
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*"
    r"(?:(\d+(?:\.\d+)?)ms)?\s*$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+")

ALERTS_TABLE = {
    "enabled": Spec("bool"),
    "settle": Spec("any"),
    "settle_max": Spec("any"),
    "retries": Spec("int"),
    "backoff": Spec("any"),
    "backoff_max": Spec("any"),
    "subject_prefix": Spec("str"),
    "receivers": Spec("table"),
    "rules": Spec("any"),
}
_COMMON = {
    "kind": Spec("str", required=True, choices=RECEIVER_KINDS),
    "timeout": Spec("any"),
    "retries": Spec("int"),
    "backoff": Spec("any"),
    "backoff_max": Spec("any"),
    "description": Spec("str"),
}
RECEIVER_TABLES: dict[str, dict[str, Spec]] = {
    "webhook": {
        **_COMMON,
        "url": Spec("str", required=True),
        "format": Spec("str", choices=("json", "text")),
        "headers": Spec("table"),
        "ca_file": Spec("str"),
    },
    "email": {
        **_COMMON,
        "host": Spec("str", required=True),
        "port": Spec("int"),
        "security": Spec("str", choices=("starttls", "tls", "none")),
        "username": Spec("str"),
        "password": Spec("str"),
        "from": Spec("str", required=True),
        "to": Spec("list[str]", required=True),
        "ca_file": Spec("str"),
    },
    "command": {**_COMMON, "command": Spec("list[str]", required=True)},
}
RULE_TABLE = {
    "name": Spec("str"),
    "states": Spec("list[str]"),
    "sites": Spec("list[str]"),
    "regions": Spec("list[str]"),
    "wilayas": Spec("any"),
    "tags": Spec("list[str]"),
    "kinds": Spec("list[str]"),
    "checks": Spec("list[str]"),
    "receivers": Spec("list[str]", required=True),
    "after": Spec("any"),
    "renotify": Spec("any"),
    "escalate": Spec("any"),
    "stop": Spec("bool"),
}
ESCALATE_TABLE = {"after": Spec("any", required=True), "receivers": Spec("list[str]", required=True)}
# Header names whose value is a credential, so it must be given as env:/file: like every secret.
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-auth-token", "proxy-authorization"})


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "90s", "5m", "1h30m", "250ms".

    Raises:
        ValueError: the value is negative or not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + s + ms / 1000
    raise ValueError(f'{value!r} is not a duration (use seconds or e.g. "90s", "5m", "1h")')


@dataclass(frozen=True)
class ReceiverConfig:
    """Where notifications go: a webhook URL, mailboxes over SMTP, or a local program.

    `secrets` holds every credential reference (webhook URL given as env:/file:, SMTP password, header values).
    """

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    timeout: float = 10.0
    retries: int = 5
    backoff: float = 10.0
    backoff_max: float = 600.0


@dataclass(frozen=True)
class EscalationStep:
    """After `after` seconds unacknowledged since the first notification, also tell `receivers`."""

    after: float
    receivers: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """Which problems (states x sites) go to which receivers, when, and how often again.

    A rule matches when every selector it sets matches (selectors left empty match everything); within one
    selector any listed value matches. `checks` are glob patterns on `site/device/check` ids.
    """

    name: str
    receivers: tuple[str, ...]
    states: tuple[str, ...] = ("DOWN", "CRITICAL")
    sites: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    wilayas: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    after: float = 0.0
    renotify: float = 0.0
    escalate: tuple[EscalationStep, ...] = ()
    stop: bool = False

    def matches(self, state: str, site: Site | None, check_id: str | None) -> bool:
        """Whether a problem in `state` on `site` (and `check_id`, for a check problem) falls under this rule."""
        if self.states and state not in self.states:
            return False
        sid = site.id if site is not None else ""
        if self.sites and not any(fnmatch.fnmatchcase(sid, p) for p in self.sites):
            return False
        if site is None and (self.regions or self.wilayas or self.tags or self.kinds):
            return False
        if site is not None:
            if self.regions and site.region not in self.regions:
                return False
            if self.wilayas and site.wilaya not in self.wilayas:
                return False
            if self.tags and not set(self.tags).intersection(site.tags):
                return False
            if self.kinds and site.kind not in self.kinds:
                return False
        if self.checks:
            return check_id is not None and any(fnmatch.fnmatchcase(check_id, p) for p in self.checks)
        return True


@dataclass(frozen=True)
class AlertsConfig:
    """The whole `[alerts]` table, resolved; `enabled` is False when the table is absent."""

    enabled: bool = False
    receivers: dict[str, ReceiverConfig] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    settle: float = 30.0
    settle_max: float = 300.0
    subject_prefix: str = "[bibnet]"


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _duration(ctx: FileContext, data: dict[str, Any], key: str, path: KeyPath, default: float) -> float:
    if key not in data:
        return default
    try:
        return parse_duration(data[key])
    except ValueError as exc:
        ctx.error(path + (key,), f"'{key}': {exc}")
        return default


def _is_ref(value: str) -> bool:
    return value.startswith(("env:", "file:"))


def _receiver(ctx: FileContext, name: str, raw: Any, base: dict[str, Any], root: Path | None) -> ReceiverConfig | None:
    path: KeyPath = ("alerts", "receivers", name)
    if not _NAME.match(name):
        ctx.error(path, f"receiver name '{name}' must be letters, digits, '-', '_' or '.'")
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in RECEIVER_KINDS:
        if isinstance(raw, dict) and "kind" in raw:
            ctx.error(path + ("kind",), f"'kind' must be one of {', '.join(RECEIVER_KINDS)}, not {kind!r}")
        else:
            ctx.error(path, f"receiver '{name}' needs a 'kind' ({', '.join(RECEIVER_KINDS)})")
        return None
    good = check_table(ctx, raw, RECEIVER_TABLES[kind], path, f"receiver '{name}'")
    before = len(ctx.issues)
    secrets: dict[str, SecretRef] = {}
    opts: dict[str, Any] = {k: v for k, v in good.items() if k not in _COMMON}
    if kind == "webhook" and "url" in good:
        url = good["url"]
        if _is_ref(url):
            secrets["url"] = SecretRef(url, root)
        elif not re.match(r"^https?://[^/\s]+", url):
            ctx.error(path + ("url",), f"'url' must be an http(s) URL or env:/file: reference, not {url!r}")
        elif re.match(r"^https?://[^/@]*:[^/@]*@", url):
            ctx.error(path + ("url",), "a password in 'url' is a literal secret: give the URL as env:NAME or file:PATH")
        for hname, hval in (good.get("headers") or {}).items():
            if not isinstance(hval, str):
                ctx.error(path + ("headers", hname), f"header '{hname}' must be a string")
            elif _is_ref(hval):
                secrets[f"header:{hname}"] = SecretRef(hval, root)
            elif hname.lower() in _SECRET_HEADERS:
                ctx.error(
                    path + ("headers", hname),
                    f"header '{hname}' is a credential: give it as env:NAME or file:PATH, never literally",
                )
    if kind == "email":
        if "password" in good:
            if _is_ref(good["password"]):
                secrets["password"] = SecretRef(good["password"], root)
            else:
                ctx.error(path + ("password",), "'password' must be a reference (env:NAME or file:PATH), never literal")
            if "username" not in good:
                ctx.error(path + ("password",), "'password' without 'username'")
        elif "username" in good:
            ctx.error(path + ("username",), "'username' needs a 'password' reference (env:NAME or file:PATH)")
        port = good.get("port")
        if port is not None and not 0 < port < 65536:
            ctx.error(path + ("port",), f"'port' must be 1-65535, not {port}")
        if "from" in good and not _EMAIL.search(good["from"]):
            ctx.error(path + ("from",), f"'from' must hold an e-mail address, not {good['from']!r}")
        if "to" in good:
            if not good["to"]:
                ctx.error(path + ("to",), "'to' needs at least one address")
            for i, addr in enumerate(good["to"]):
                if not _EMAIL.fullmatch(addr.strip()):
                    ctx.error(path + ("to",), f"'to'[{i}] is not an e-mail address: {addr!r}")
    if kind == "command" and "command" in good and not good["command"]:
        ctx.error(path + ("command",), "'command' needs the program to run, e.g. [\"/usr/local/bin/notify\"]")
    if "ca_file" in good and root is not None:
        ca = Path(good["ca_file"]).expanduser()
        opts["ca_file"] = str(ca if ca.is_absolute() else root / ca)
    retries = good.get("retries", base["retries"])
    if retries < 0:
        ctx.error(path + ("retries",), "'retries' cannot be negative")
    rc = ReceiverConfig(
        name=name,
        kind=kind,
        options=opts,
        secrets=secrets,
        timeout=_duration(ctx, good, "timeout", path, 10.0 if kind != "command" else 30.0),
        retries=max(retries, 0),
        backoff=_duration(ctx, good, "backoff", path, base["backoff"]),
        backoff_max=_duration(ctx, good, "backoff_max", path, base["backoff_max"]),
    )
    if rc.timeout <= 0:
        ctx.error(path + ("timeout",), "'timeout' must be greater than 0")
    return rc if len(ctx.issues) == before else None


def _rule(
    ctx: FileContext, i: int, raw: Any, receivers: list[str], sites: dict[str, Site], regions: list[str] | None
) -> Rule | None:
    path: KeyPath = ("alerts", "rules", i)
    good = check_table(ctx, raw, RULE_TABLE, path, "[[alerts.rules]]")
    before = len(ctx.issues)
    for state in good.get("states", []):
        if state not in SITE_STATES + CHECK_STATES:
            allowed = ", ".join(SITE_STATES + CHECK_STATES)
            ctx.error(
                path + ("states",),
                f"unknown state '{state}' (allowed: {allowed}; UNREACHABLE never alerts: its root cause does)",
            )
    for r in good.get("receivers", []):
        if r not in receivers:
            ctx.error(path + ("receivers",), f"unknown receiver '{r}'{_suggest(r, receivers)}")
    if "receivers" in good and not good["receivers"]:
        ctx.error(path + ("receivers",), "a rule needs at least one receiver")
    for sid in good.get("sites", []):
        if sites and not any(ch in sid for ch in "*?[") and sid not in sites:
            ctx.error(path + ("sites",), f"unknown site '{sid}'{_suggest(sid, list(sites))}")
    for rid in good.get("regions", []):
        if regions is not None and rid not in regions:
            ctx.error(path + ("regions",), f"unknown region '{rid}'{_suggest(rid, regions)}")
    wilayas = good.get("wilayas", [])
    if not isinstance(wilayas, list) or not all(
        isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 99 for w in wilayas
    ):
        ctx.error(path + ("wilayas",), "'wilayas' must be a list of wilaya numbers, e.g. [31, 13]")
        wilayas = []
    steps: list[EscalationStep] = []
    raw_steps = good.get("escalate", [])
    if not isinstance(raw_steps, list):
        ctx.error(path + ("escalate",), "'escalate' must be an array of tables ([[alerts.rules.escalate]])")
        raw_steps = []
    for j, raw_step in enumerate(raw_steps):
        spath = path + ("escalate", j)
        step = check_table(ctx, raw_step, ESCALATE_TABLE, spath, "[[alerts.rules.escalate]]")
        for r in step.get("receivers", []):
            if r not in receivers:
                ctx.error(spath + ("receivers",), f"unknown receiver '{r}'{_suggest(r, receivers)}")
        if "after" in step:
            steps.append(EscalationStep(_duration(ctx, step, "after", spath, 0.0), tuple(step.get("receivers", []))))
    if [s.after for s in steps] != sorted(s.after for s in steps):
        ctx.error(path + ("escalate",), "escalation steps must be listed in increasing 'after' order")
    rule = Rule(
        name=good.get("name", f"rule {i + 1}"),
        receivers=tuple(good.get("receivers", [])),
        states=tuple(good.get("states", ("DOWN", "CRITICAL"))),
        sites=tuple(good.get("sites", [])),
        regions=tuple(good.get("regions", [])),
        wilayas=tuple(wilayas),
        tags=tuple(good.get("tags", [])),
        kinds=tuple(good.get("kinds", [])),
        checks=tuple(good.get("checks", [])),
        after=_duration(ctx, good, "after", path, 0.0),
        renotify=_duration(ctx, good, "renotify", path, 0.0),
        escalate=tuple(steps),
        stop=good.get("stop", False),
    )
    return rule if len(ctx.issues) == before else None


def _parse(
    ctx: FileContext, data: Any, sites: dict[str, Site], regions: list[str] | None, root: Path | None
) -> AlertsConfig:
    if not data:
        return AlertsConfig()
    good = check_table(ctx, data, ALERTS_TABLE, ("alerts",), "[alerts]")
    path: KeyPath = ("alerts",)
    base = {
        "retries": good.get("retries", 5),
        "backoff": _duration(ctx, good, "backoff", path, 10.0),
        "backoff_max": _duration(ctx, good, "backoff_max", path, 600.0),
    }
    receivers: dict[str, ReceiverConfig] = {}
    raw_receivers = good.get("receivers", {})
    for name, raw in raw_receivers.items():
        rc = _receiver(ctx, name, raw, base, root)
        if rc is not None:
            receivers[name] = rc
    raw_rules = good.get("rules", [])
    if not isinstance(raw_rules, list):
        ctx.error(("alerts", "rules"), "'rules' must be an array of tables ([[alerts.rules]])")
        raw_rules = []
    rules = [r for i, raw in enumerate(raw_rules) if (r := _rule(ctx, i, raw, list(raw_receivers), sites, regions))]
    return AlertsConfig(
        enabled=good.get("enabled", True),
        receivers=receivers,
        rules=tuple(rules),
        settle=_duration(ctx, good, "settle", path, 30.0),
        settle_max=_duration(ctx, good, "settle_max", path, 300.0),
        subject_prefix=good.get("subject_prefix", "[bibnet]"),
    )


def validate_alerts(
    data: Any,
    file: str,
    positions: TomlPositions | None,
    sites: dict[str, Site],
    regions: list[str] | None = None,
    root: Path | None = None,
) -> list[ConfigIssue]:
    """Every problem in an `[alerts]` table, each naming file, line and key (empty list when it is valid).

    Args:
        data: the raw `[alerts]` table from network.toml (`Inventory.settings["alerts"]`).
        file: the file name to report.
        positions: key positions of network.toml (None when unknown: issues carry no line).
        sites: known sites, to check site ids in rules.
        regions: known region ids (None: regions are not checked).
        root: the configuration directory, for relative `file:` secrets and CA files.
    """
    ctx = FileContext(file, positions or TomlPositions(""))
    _parse(ctx, data, sites, regions, root)
    return ctx.issues


def parse_alerts(data: Any, sites: dict[str, Site] | None = None, root: Path | None = None) -> AlertsConfig:
    """An AlertsConfig from a raw `[alerts]` table (invalid receivers or rules are left out)."""
    ctx = FileContext("network.toml", TomlPositions(""))
    return _parse(ctx, data, sites or {}, None, root)
