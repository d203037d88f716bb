"""The `http` probe: status code, latency, body keyword/regex, JSON field checks and TLS expiry.

Parameters (in `CheckSpec.params`; the device address is a base URL such as `http://10.31.0.5:8080`):
`path` ("/"), `url` (absolute, overrides address and path), `port` (replaces the address's port),
`method` ("GET"), `expect_status` ([200]), `body_contains`, `body_regex`, `body_label` (how reasons name
what `body_regex` looks for, e.g. "a catalogue search form"), `json_field` (dotted path,
numeric parts index lists: "0.library_id"), `json_equals`, `json_min_items`, `json_metric` (bool: the
number at `json_field` becomes the metric), `tls_expiry` (bool: the metric becomes days until the
certificate expires; use thresholds with direction "below"), `verify_tls` (true), `ca_file`, `headers`,
`follow_redirects` (false), `max_body` (1 MiB). Without `tls_expiry`/`json_metric` the metric is the
reply latency in seconds. An address that already ends with `path` (an OAI-PMH base URL pasted whole)
is used as it is rather than getting the path twice.

A check's validated options and its request (built once by httpx, see `_httprequest`) are kept between
polls, keyed by check id and valid only for that very `CheckSpec` object: a configuration reload makes
new objects, so a changed URL, header or parameter takes effect at the next poll.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes import _reasons
from bibnet_ops.probes._common import (
    ParamError,
    fmt_number,
    judge_metric,
    make_sample,
    param_bool,
    param_int,
    param_str,
)
from bibnet_ops.probes._evidence import http_evidence
from bibnet_ops.probes._httpclient import FetchError, FetchResult, PreparedRequest, fetch, prepare
from bibnet_ops.probes._reasons import http_failure, redact_url, request_target

__all__ = ["HttpOptions", "build_url", "probe"]

_MISSING = object()
_MAX_PREPARED = 65536  # far more checks than one collector polls; past it the cache starts afresh
_prepared: dict[str, tuple[CheckSpec, HttpOptions, PreparedRequest]] = {}


@dataclass(frozen=True)
class HttpOptions:
    """The http probe's parameters, validated."""

    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    body_contains: str = ""
    body_regex: re.Pattern[str] | None = None
    body_label: str = ""
    json_field: str = ""
    json_equals: Any = _MISSING
    json_min_items: int | None = None
    json_metric: bool = False
    tls_expiry: bool = False
    verify_tls: bool = True
    ca_file: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    follow_redirects: bool = False
    max_body: int = 1 << 20

    @property
    def wants_json(self) -> bool:
        return bool(self.json_field) or self.json_equals is not _MISSING or self.json_min_items is not None

    @classmethod
    def from_check(cls, check: CheckSpec) -> HttpOptions:
        """Validate a check's parameters.

        Raises:
            ParamError: A parameter has the wrong type or value.
        """
        p = check.params
        statuses = p.get("expect_status", [200])
        if isinstance(statuses, int) and not isinstance(statuses, bool):
            statuses = [statuses]
        if not isinstance(statuses, list | tuple) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in statuses
        ):
            raise ParamError(f"parameter expect_status must be a list of status codes, not {statuses!r}")
        regex_text = param_str(p, "body_regex")
        try:
            regex = re.compile(regex_text) if regex_text else None
        except re.error as exc:
            raise ParamError(f"parameter body_regex is not a valid regular expression: {exc}") from None
        headers = p.get("headers", {}) or {}
        if not isinstance(headers, dict):
            raise ParamError("parameter headers must be a table of name = value")
        min_items = p.get("json_min_items")
        return cls(
            url=build_url(check.address, p),
            method=param_str(p, "method", "GET").upper() or "GET",
            expect_status=tuple(statuses),
            body_contains=param_str(p, "body_contains"),
            body_regex=regex,
            body_label=param_str(p, "body_label"),
            json_field=str(p.get("json_field", "") or ""),
            json_equals=p.get("json_equals", _MISSING),
            json_min_items=None if min_items is None else param_int(p, "json_min_items", 0, minimum=0),
            json_metric=param_bool(p, "json_metric", False),
            tls_expiry=param_bool(p, "tls_expiry", False),
            verify_tls=param_bool(p, "verify_tls", True),
            ca_file=param_str(p, "ca_file"),
            headers={str(k): str(v) for k, v in headers.items()},
            follow_redirects=param_bool(p, "follow_redirects", False),
            max_body=param_int(p, "max_body", 1 << 20, minimum=1),
        )


def build_url(address: str, params: dict[str, Any]) -> str:
    """Resolve the URL to request from the device address and the `url`/`path`/`port` parameters.

    Raises:
        ParamError: The address or parameters do not make an http(s) URL.
    """
    absolute = param_str(params, "url")
    if absolute:
        return absolute
    base = address if "://" in address else f"http://{address}"
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParamError(f"address {address!r} is not an http:// or https:// URL")
    netloc = parts.netloc
    if "port" in params:
        port = param_int(params, "port", 0, minimum=1)
        host = parts.hostname
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{port}"
    path = param_str(params, "path", "")
    if path:
        base_path, extra = parts.path.rstrip("/"), "/" + path.lstrip("/")
        extra_path = extra.partition("?")[0].rstrip("/")
        if extra_path and base_path.endswith(extra_path):
            base_path = base_path[: -len(extra_path)]
        joined = base_path + extra
        path, _, query = joined.partition("?")
    else:
        path, query = parts.path or "/", parts.query
    return urlunsplit((parts.scheme, netloc, path, query, ""))


async def probe(check: CheckSpec) -> Sample:
    """Request the device's URL and judge the reply.

    Args:
        check: The resolved check; `check.timeout` bounds the whole probe.

    Returns:
        A Sample: CRITICAL when the device is unreachable or answers wrongly, WARNING/CRITICAL on a
        threshold crossing, UNKNOWN for a misconfigured check or a reply that cannot be interpreted.
    """
    try:
        opts, request = _prepare(check)
    except ParamError as exc:
        return make_sample(check, CheckStatus.UNKNOWN, f"bad check configuration: {exc}")
    except FetchError as exc:
        status = CheckStatus.UNKNOWN if exc.config else CheckStatus.CRITICAL
        return make_sample(check, status, exc.reason)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        reply = await fetch(
            check.site_id,
            request,
            deadline=started + check.timeout,
            max_body=opts.max_body,
            follow_redirects=opts.follow_redirects,
            verify_tls=opts.verify_tls,
            ca_file=opts.ca_file,
            want_cert=opts.tls_expiry,
        )
    except FetchError as exc:
        status = CheckStatus.UNKNOWN if exc.config else CheckStatus.CRITICAL
        evidence = f"{opts.method} {redact_url(opts.url)}\n(no complete reply) {exc.reason}"
        return make_sample(check, status, exc.reason, latency=loop.time() - started, evidence=evidence)
    return judge(check, opts, reply)


def _prepare(check: CheckSpec) -> tuple[HttpOptions, PreparedRequest]:
    """The check's options and request, built on its first poll (a faulty check is not kept).

    Raises:
        ParamError: A parameter has the wrong type or value.
        FetchError: The URL or headers cannot be sent.
    """
    cached = _prepared.get(check.id)
    if cached is not None and cached[0] is check:
        return cached[1], cached[2]
    opts = HttpOptions.from_check(check)
    request = prepare(opts.url, method=opts.method, headers=opts.headers)
    if len(_prepared) >= _MAX_PREPARED:
        _prepared.clear()
    _prepared[check.id] = (check, opts, request)
    return opts, request


def judge(check: CheckSpec, opts: HttpOptions, reply: FetchResult) -> Sample:
    """Turn a complete (possibly truncated) HTTP reply into a Sample according to the options."""
    values: dict[str, float] = {"http_status": float(reply.status), "body_bytes": float(len(reply.body))}
    evidence = http_evidence(
        opts.method, reply.url, reply.status_text, reply.headers.multi_items(), reply.body, reply.truncated
    )

    def sample(status: CheckStatus, reason: str, value: float | None = None) -> Sample:
        return make_sample(check, status, reason, value=value, values=values, latency=reply.latency, evidence=evidence)

    cut = f" (only the first {opts.max_body} bytes were read)" if reply.truncated else ""
    if reply.status not in opts.expect_status:
        content_type = reply.headers.get("content-type", "")
        reason = http_failure(
            opts.method, reply.url, reply.status, reply.reason_phrase, reply.body, content_type, opts.expect_status
        )
        location = reply.headers.get("location")
        if 300 <= reply.status < 400 and location:
            reason += f", redirects to {redact_url(location)}"
        return sample(CheckStatus.CRITICAL, reason)
    if opts.body_contains or opts.body_regex is not None:
        text = reply.text()
        where = f"{opts.method} {request_target(reply.url)}"
        if opts.body_contains and opts.body_contains not in text:
            return sample(CheckStatus.CRITICAL, f"{where}: body lacks {opts.body_contains!r}{cut}")
        if opts.body_regex is not None and opts.body_regex.search(text) is None:
            if opts.body_label:
                return sample(CheckStatus.CRITICAL, f"{where}: body lacks {opts.body_label}{cut}")
            return sample(CheckStatus.CRITICAL, f"{where}: body does not match /{opts.body_regex.pattern}/{cut}")
    metric: float | None = None
    if opts.wants_json:
        verdict = _judge_json(opts, reply, cut)
        if isinstance(verdict, tuple):
            return sample(*verdict)
        metric = verdict
    if opts.tls_expiry:
        if reply.cert_not_after is None:
            return sample(CheckStatus.UNKNOWN, f"no TLS certificate to check ({reply.url} is not https)")
        days = (reply.cert_not_after - time.time()) / 86400
        values["tls_days_left"] = days
        if days < 0:
            status = check.thresholds.classify(days)
            return sample(status, f"TLS certificate expired {_reasons.quantity(-days, 'days')} ago", days)
        status, reason = _reasons.judge(check.thresholds, days, "TLS certificate expires in", "days")
        return sample(status, reason, days)
    if opts.json_metric:
        status, reason = judge_metric(check.thresholds, float(metric or 0), opts.json_field, check.unit)
        return sample(status, reason, metric)
    status, reason = judge_metric(check.thresholds, reply.latency, "reply in", "s")
    return sample(status, f"{reply.status_text}, {reason}", reply.latency)


def _judge_json(opts: HttpOptions, reply: FetchResult, cut: str) -> tuple[CheckStatus, str] | float | None:
    """Check the JSON conditions; return a failing (status, reason), or the selected number if any."""
    try:
        doc = json.loads(reply.text())
    except (ValueError, RecursionError) as exc:
        if reply.truncated:
            return CheckStatus.UNKNOWN, f"JSON body larger than max_body, cannot judge it{cut}"
        return CheckStatus.CRITICAL, f"reply is not valid JSON ({str(exc)[:60]})"
    value: Any = doc
    label = "JSON body"
    if opts.json_field:
        found = _lookup(doc, opts.json_field)
        if found is _MISSING:
            return CheckStatus.CRITICAL, f"JSON lacks field {opts.json_field!r}"
        value, label = found, f"JSON {opts.json_field}"
    if opts.json_equals is not _MISSING and not _same(value, opts.json_equals):
        return CheckStatus.CRITICAL, f"{label} = {_show(value)} (expected {_show(opts.json_equals)})"
    if opts.json_min_items is not None:
        if not isinstance(value, list | dict):
            return CheckStatus.CRITICAL, f"{label} is {type(value).__name__}, not a list"
        if len(value) < opts.json_min_items:
            return CheckStatus.CRITICAL, (f"{label} has {len(value)} items (expected at least {opts.json_min_items})")
    if opts.json_metric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return CheckStatus.UNKNOWN, f"{label} = {_show(value)} is not a number"
        return float(value)
    return None


def _lookup(doc: Any, dotted: str) -> Any:
    """Follow a dotted path; numeric parts index lists. Returns _MISSING when absent."""
    current = doc
    for part in dotted.split("."):
        if isinstance(current, dict):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return current


def _same(actual: Any, expected: Any) -> bool:
    """Equality that does not confuse true with 1, nor "1" with 1."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    return bool(type(actual) is type(expected) and actual == expected)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, float) else fmt_number(value)
    return text if len(text) <= 40 else text[:39] + "…"
