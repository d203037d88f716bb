"""The `oaipmh` probe: is a catalogue's OAI-PMH repository answering, and how far behind is it.

The device address is the catalogue's base URL; params: `path` ("/cgi-bin/koha/oai.pl"), `mode`
("identify" or "lag"), `metadata_prefix` ("oai_dc"), `window_days` (30), `max_requests` (20; the
older name `max_pages` is read too), plus the transport options `verify_tls`, `ca_file`, `headers`,
`max_body` (4 MiB) shared with the http probe.

- identify: one Identify request; the reason names the repository, its granularity and earliest
  datestamp; the metric is the latency in seconds.
- lag: Identify (granularity, earliest datestamp, the server's clock), then at most `max_requests`
  ListIdentifiers requests that find the newest datestamp without walking the whole (oldest-first)
  listing: see `_oai_lag` for the search. The metric is the sync lag in seconds: the server's own
  responseDate minus the newest datestamp (both server time, so no clock skew). With day granularity
  a record dated D changed somewhere within D, so the lag is counted from the end of D (the reason
  gives both ends). Nothing changed in the window (or since `earliestDatestamp`) is a proven lag of
  at least that long, judged as such. A search cut short by `max_requests` proves only a range: it is
  judged only when the whole range has one status, and is UNKNOWN otherwise, never as if complete.
  Identify's answers are kept per repository URL for `IDENTIFY_MAX_AGE` seconds (any failure forgets
  them) and the newest datestamp seen is tried first at the next poll, so a quiet poll costs one
  short request; the first poll after a start is just as right, only a few requests longer.

OAI-PMH errors (HTTP 200 with `<error code="...">`) are CRITICAL and quoted verbatim; a repository that
refuses a `from` with a time (badArgument) is asked again by date. A 503 with Retry-After is retried once
when the wait fits in the timeout. XML is parsed only with defusedxml. `Sample.evidence` lists each
request made (URL) and what came back (page size, resumption token, error code, HTTP status).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email.utils
import time
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, Thresholds
from bibnet_ops.probes import _reasons
from bibnet_ops.probes._common import ParamError, judge_metric, make_sample, param_bool, param_int, param_str
from bibnet_ops.probes._evidence import bounded
from bibnet_ops.probes._httpclient import FetchError, FetchResult, fetch
from bibnet_ops.probes._oai_lag import DAY, LagBounds, Page, format_datestamp, search_newest
from bibnet_ops.probes._oai_xml import (
    NS,
    OAI_NS,
    OaiError,
    OaiFailure,
    identify_info,
    parse,
    parse_datestamp,
    raise_oai_errors,
    text_of,
)
from bibnet_ops.probes.http import build_url

__all__ = [
    "DEFAULT_PATH",
    "IDENTIFY_MAX_AGE",
    "OAI_NS",
    "forget_repositories",
    "format_duration",
    "parse_datestamp",
    "probe",
]

DEFAULT_PATH = "/cgi-bin/koha/oai.pl"
_DAY_GRANULARITY = "YYYY-MM-DD"
_SECOND_GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
IDENTIFY_MAX_AGE = 3600.0
"""Seconds a repository's Identify (granularity, earliest datestamp, clock offset) is reused by lag polls."""
_MAX_REMEMBERED = 50_000


@dataclass(frozen=True)
class _Identity:
    granularity: str
    earliest: float | None
    offset: float  # server clock minus ours, seconds
    until: float  # monotonic expiry


_identities: dict[str, _Identity] = {}
_newest: dict[str, float] = {}


def forget_repositories() -> None:
    """Drop every remembered Identify and newest datestamp (the next polls start afresh)."""
    _identities.clear()
    _newest.clear()


def format_duration(seconds: float) -> str:
    """Short duration for a reason (`_reasons.duration`): `45 s`, `12 min`, `3 h 20 min`, `4 days`."""
    return _reasons.duration(seconds)


@dataclass
class _Reply:
    root: Element
    response_date: float | None
    latency: float


@dataclass
class _Context:
    check: CheckSpec
    url: str
    deadline: float
    verify_tls: bool
    ca_file: str
    headers: dict[str, str]
    max_body: int
    latency: float = 0.0
    reply_date: float | None = None  # newest responseDate seen
    trail: list[str] = field(default_factory=list)  # one line per request, for the evidence

    def note(self, query: dict[str, str], outcome: str) -> None:
        if len(self.trail) < 24:
            target = _reasons.redact_url(self.url) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
            self.trail.append(f"GET {target} -> {outcome}")

    @property
    def evidence(self) -> str:
        return bounded("\n".join(self.trail))


async def probe(check: CheckSpec) -> Sample:
    """Query the repository (Identify, and ListIdentifiers in lag mode) and judge the answers.

    Args:
        check: The resolved check; `check.timeout` bounds every request and wait together.

    Returns:
        A Sample whose value is the latency (identify) or the sync lag in seconds (lag).
    """
    loop = asyncio.get_running_loop()
    try:
        ctx, mode = _context(check, loop.time() + check.timeout)
    except ParamError as exc:
        return make_sample(check, CheckStatus.UNKNOWN, f"bad check configuration: {exc}")
    try:
        known = _identities.get(ctx.url) if mode == "lag" else None
        if known is not None and known.until > time.monotonic():
            return await _lag_sample(ctx, known, time.time() + known.offset)
        identify = await _call(ctx, {"verb": "Identify"})
        info = identify_info(identify.root)
        ctx.note({"verb": "Identify"}, f"{info['repositoryName'] or 'unnamed'}, granularity {info['granularity']}")
        identity = _remember(ctx.url, info, identify.response_date)
        if mode == "identify":
            return _identify_sample(ctx, info)
        return await _lag_sample(ctx, identity, identify.response_date or time.time())
    except OaiFailure as failure:
        _identities.pop(ctx.url, None)
        _newest.pop(check.id, None)
        return make_sample(check, failure.status, failure.reason, latency=ctx.latency or None, evidence=ctx.evidence)


def _remember(url: str, info: dict[str, str], response_date: float | None) -> _Identity:
    if len(_identities) > _MAX_REMEMBERED:
        _identities.clear()
    offset = response_date - time.time() if response_date is not None else 0.0
    identity = _Identity(
        info["granularity"], parse_datestamp(info["earliestDatestamp"]), offset, time.monotonic() + IDENTIFY_MAX_AGE
    )
    _identities[url] = identity
    return identity


def _context(check: CheckSpec, deadline: float) -> tuple[_Context, str]:
    p = check.params
    mode = param_str(p, "mode", "identify").lower()
    if mode not in ("identify", "lag"):
        raise ParamError(f"mode must be identify or lag, not {mode!r}")
    headers = p.get("headers", {}) or {}
    if not isinstance(headers, dict):
        raise ParamError("parameter headers must be a table of name = value")
    url = build_url(check.address, {**p, "path": param_str(p, "path", DEFAULT_PATH) or DEFAULT_PATH})
    ctx = _Context(
        check=check,
        url=url,
        deadline=deadline,
        verify_tls=param_bool(p, "verify_tls", True),
        ca_file=param_str(p, "ca_file"),
        headers={str(k): str(v) for k, v in headers.items()},
        max_body=param_int(p, "max_body", 4 << 20, minimum=1024),
    )
    return ctx, mode


async def _call(ctx: _Context, query: dict[str, str]) -> _Reply:
    """One OAI-PMH request, with a single polite retry when the repository asks for one.

    Raises:
        OaiError: The repository answered with OAI-PMH errors (noRecordsMatch included).
        OaiFailure: Any other failure (transport, HTTP status, unreadable reply).
    """
    loop = asyncio.get_running_loop()
    for attempt in range(2):
        reply = await _get(ctx, query)
        if reply.status == 503 and "retry-after" in reply.headers:
            delay = _retry_after(reply.headers["retry-after"])
            remaining = ctx.deadline - loop.time()
            ctx.note(query, f"HTTP 503, Retry-After {reply.headers['retry-after'][:30]}")
            if delay is not None and attempt == 0 and delay < remaining - 0.05:
                await asyncio.sleep(delay)
                continue
            if delay is None:
                shown = reply.headers["retry-after"][:30]
                raise OaiFailure(CheckStatus.UNKNOWN, f"repository busy, unreadable Retry-After {shown!r}")
            raise OaiFailure(CheckStatus.UNKNOWN, f"repository busy, asks to retry after {_reasons.duration(delay)}")
        break
    if reply.status != 200:
        ctx.note(
            query, f"{reply.status_text}: {_reasons.first_line(reply.body, reply.headers.get('content-type', ''))}"
        )
        reason = _reasons.http_failure(
            "GET", ctx.url, reply.status, reply.reason_phrase, reply.body, reply.headers.get("content-type", "")
        )
        raise OaiFailure(CheckStatus.CRITICAL, reason)
    if reply.truncated:
        ctx.note(query, f"reply larger than {ctx.max_body} bytes")
        raise OaiFailure(CheckStatus.UNKNOWN, f"OAI-PMH reply larger than max_body ({ctx.max_body} bytes), not parsed")
    try:
        root = parse(reply.body)
        raise_oai_errors(root)
    except OaiError as exc:
        ctx.note(query, f"error {exc.code}")
        raise
    except OaiFailure as exc:
        ctx.note(query, exc.reason)
        raise
    response_date = parse_datestamp(text_of(root, "responseDate"))
    if response_date is not None:
        ctx.reply_date = response_date
    return _Reply(root, response_date, reply.latency)


async def _get(ctx: _Context, query: dict[str, str]) -> FetchResult:
    try:
        reply = await fetch(
            ctx.check.site_id,
            ctx.url,
            deadline=ctx.deadline,
            params=query,
            headers=ctx.headers,
            max_body=ctx.max_body,
            verify_tls=ctx.verify_tls,
            ca_file=ctx.ca_file,
        )
    except FetchError as exc:
        ctx.note(query, exc.reason)
        raise OaiFailure(CheckStatus.UNKNOWN if exc.config else CheckStatus.CRITICAL, exc.reason) from None
    ctx.latency += reply.latency
    return reply


def _identify_sample(ctx: _Context, info: dict[str, str]) -> Sample:
    values: dict[str, float] = {}
    earliest = parse_datestamp(info["earliestDatestamp"])
    if earliest is not None:
        values["earliest_datestamp"] = earliest
    name = info["repositoryName"] or "unnamed repository"
    status, judged = judge_metric(ctx.check.thresholds, ctx.latency, "reply in", "s")
    reason = f"{name}: granularity {info['granularity'] or '?'}, earliest {info['earliestDatestamp'] or '?'}, {judged}"
    return make_sample(
        ctx.check, status, reason, value=ctx.latency, values=values, latency=ctx.latency, evidence=ctx.evidence
    )


class _DayOnly(Exception):
    """The repository refused a `from` with a time of day (badArgument): ask by date."""


async def _lag_sample(ctx: _Context, identity: _Identity, server_now: float) -> Sample:
    p = ctx.check.params
    try:
        window_days = param_int(p, "window_days", 30, minimum=1)
        budget = param_int(p, "max_requests", param_int(p, "max_pages", 20, minimum=1), minimum=1)
        prefix = param_str(p, "metadata_prefix", "oai_dc") or "oai_dc"
    except ParamError as exc:
        raise OaiFailure(CheckStatus.UNKNOWN, f"bad check configuration: {exc}") from None
    day = identity.granularity != _SECOND_GRANULARITY
    window_start = server_now - window_days * DAY
    floor = max(window_start, identity.earliest) if identity.earliest is not None else window_start
    hint = _newest.get(ctx.check.id)
    try:
        bounds = await _search(ctx, prefix, server_now, floor, day, budget, hint)
    except _DayOnly:
        day = True
        # remembered, so the next polls ask by date straight away
        _identities[ctx.url] = dataclasses.replace(identity, granularity=_DAY_GRANULARITY)
        bounds = await _search(ctx, prefix, server_now, floor, day, max(budget - 1, 1), hint)
    if bounds.exact and bounds.newest is not None:
        if len(_newest) > _MAX_REMEMBERED:
            _newest.clear()
        _newest[ctx.check.id] = bounds.newest
    else:
        _newest.pop(ctx.check.id, None)
    now = ctx.reply_date if ctx.reply_date is not None else server_now
    judged = _judge(ctx.check, bounds, now=now, day=day, floor=floor, window_start=window_start)
    status, reason, value, values = judged
    values["requests"] = float(bounds.requests)
    return make_sample(
        ctx.check, status, reason, value=value, values=values, latency=ctx.latency, evidence=ctx.evidence
    )


async def _search(
    ctx: _Context, prefix: str, now: float, floor: float, day: bool, budget: int, hint: float | None
) -> LagBounds:
    async def list_from(since: float) -> Page | None:
        query = {"verb": "ListIdentifiers", "metadataPrefix": prefix, "from": format_datestamp(since, day)}
        try:
            reply = await _call(ctx, query)
        except OaiError as exc:
            if exc.code == "noRecordsMatch":
                return None
            if exc.code == "badArgument" and not day:
                raise _DayOnly from None
            raise
        page = _first_page(reply.root)
        if page is None:
            ctx.note(query, "a page without readable datestamps")
            raise OaiFailure(CheckStatus.UNKNOWN, "ListIdentifiers reply has no readable datestamp")
        more = ", resumptionToken (more pages)" if page.more else ", complete"
        ctx.note(query, f"{_reasons.plural(page.count, 'header')}, newest {format_datestamp(page.newest, day)}{more}")
        return page

    return await search_newest(list_from, now=now, floor=floor, day=day, budget=budget, hint=hint)


def _first_page(root: Element) -> Page | None:
    node = root.find(NS + "ListIdentifiers")
    if node is None:
        raise OaiFailure(CheckStatus.CRITICAL, "OAI-PMH reply has no <ListIdentifiers> element")
    newest: float | None = None
    deleted = False
    count = 0
    for header in node.iterfind(NS + "header"):
        count += 1
        stamp = parse_datestamp(text_of(header, "datestamp"))
        if stamp is not None and (newest is None or stamp >= newest):
            newest, deleted = stamp, header.get("status") == "deleted"
    if newest is None:
        return None
    return Page(newest, deleted, count, bool(text_of(node, "resumptionToken")))


def _judge(
    check: CheckSpec, bounds: LagBounds, *, now: float, day: bool, floor: float, window_start: float
) -> tuple[CheckStatus, str, float | None, dict[str, float]]:
    """Status, reason, value and extra values for what the search proved."""
    th = check.thresholds
    cut = f"stopped after {_reasons.plural(bounds.requests, 'request')} (max_requests)"
    if bounds.newest is None:
        since = bounds.empty_since if bounds.empty_since is not None else bounds.below
        if since is None:  # cannot happen: a search that found nothing has listed from somewhere
            return CheckStatus.UNKNOWN, "no listing could be made", None, {}
        lag_min = max(now - since, 0.0)
        if bounds.empty_since is not None and since > window_start + DAY:
            what = f"no record changed since the repository's earliest datestamp ({format_datestamp(since, day)})"
        else:
            what = f"no record changed in the last {_reasons.duration(lag_min)}"
        if bounds.empty_since is None:
            what += f" ({cut}, older records not listed)"
        return _ranged(th, lag_min, None, what, {"lag_at_least": lag_min})
    newest = bounds.newest
    step = DAY if day else 1.0
    upper = newest + step if bounds.exact else (bounds.below if bounds.below is not None else now)
    lag_max = max(now - newest, 0.0)
    lag_min = max(now - upper, 0.0) if day or not bounds.exact else lag_max
    values = {"newest_datestamp": newest}
    noun = "change (a deleted record)" if bounds.newest_deleted else "record"
    stamp = format_datestamp(newest, day)
    if not bounds.exact:
        values.update(lag_at_least=lag_min, lag_at_most=lag_max)
        what = f"newest {noun} changed at most {_reasons.duration(lag_max)} ago (at {stamp} or later; {cut})"
        return _ranged(th, lag_min, lag_max, what, values)
    if day:
        when = "today" if lag_min == 0 else f"{_reasons.duration(lag_min)} to {_reasons.duration(lag_max)} ago"
        what = f"newest {noun} dated {stamp}: changed {when}"
    else:
        what = f"newest {noun} changed {_reasons.duration(lag_max)} ago at {stamp}"
    status = th.classify(lag_min)
    note = _reasons.crossed(th, status, "s")
    return status, f"{what} {note}".strip(), lag_min, values


def _ranged(
    th: Thresholds, lag_min: float, lag_max: float | None, what: str, values: dict[str, float]
) -> tuple[CheckStatus, str, float | None, dict[str, float]]:
    """Judge a lag known only to lie in [lag_min, lag_max]: never worse than what is proven.

    Both ends with one status give that status; a proven minimum past a threshold gives the status it
    proves (the lag is at least that); otherwise nothing is proven either way and the sample is UNKNOWN.
    """
    low = th.classify(lag_min)
    high = th.classify(lag_max if lag_max is not None else float("inf"))
    if low is high or low is not CheckStatus.OK:
        note = _reasons.crossed(th, low, "s")
        value = lag_max if low is high and lag_max is not None else lag_min
        return low, f"{what} {note}".strip(), value, values
    top = _reasons.duration(lag_max) if lag_max is not None else "unbounded"
    reason = f"sync lag not known: between {_reasons.duration(lag_min)} and {top} — {what}"
    return CheckStatus.UNKNOWN, reason, None, values


def _retry_after(value: str) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when.timestamp() - time.time(), 0.0)
