"""The `oaipmh` probe: is a catalogue's OAI-PMH repository answering, and how far behind is it.

The device address is the catalogue's base URL; params: `path` ("/cgi-bin/koha/oai.pl"), `mode`
("identify" or "lag"), `metadata_prefix` ("oai_dc"), `window_days` (30), `max_pages` (5), plus the
transport options `verify_tls`, `ca_file`, `headers`, `max_body` (4 MiB) shared with the http probe.

- identify: one Identify request; the reason names the repository, its granularity and earliest
  datestamp; the metric is the latency in seconds.
- lag: Identify (for the granularity and the server's clock), then ListIdentifiers from `window_days`
  ago, following at most `max_pages` resumption tokens; the metric is the sync lag in seconds, i.e.
  the reply's own responseDate minus the newest header datestamp (both server time, so no clock skew).
  `noRecordsMatch` means nothing changed in the window: the value is then the window itself.
  Identify's granularity and clock offset are kept per repository URL for `IDENTIFY_MAX_AGE` seconds
  (any Identify, from either mode, refreshes them; any failure forgets them), and each check
  remembers the newest datestamp it saw: the next poll lists only from that datestamp on (usually one
  short page), and falls back to the whole window when that finds nothing (records deleted, clock
  reset). Every record at or after the remembered datestamp is listed, so the newest is the same.

OAI-PMH errors (HTTP 200 with `<error code="...">`) are CRITICAL and quoted verbatim. A 503 with
Retry-After is retried once when the wait fits in the timeout. XML is parsed only with defusedxml:
entity declarations and external references are refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from bibnet_ops.model import CheckSpec, CheckStatus, Sample
from bibnet_ops.probes._common import (
    ParamError,
    judge_metric,
    make_sample,
    param_bool,
    param_int,
    param_str,
)
from bibnet_ops.probes._httpclient import FetchError, FetchResult, fetch
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

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
DEFAULT_PATH = "/cgi-bin/koha/oai.pl"
_NS = "{" + OAI_NS + "}"
_DAY_GRANULARITY = "YYYY-MM-DD"
_SECOND_GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
IDENTIFY_MAX_AGE = 3600.0
"""Seconds a repository's Identify (granularity, clock offset) is reused by lag polls."""


@dataclass(frozen=True)
class _Identity:
    granularity: str
    offset: float  # server clock minus ours, seconds
    until: float  # monotonic expiry


_identities: dict[str, _Identity] = {}
_newest: dict[str, float] = {}


def forget_repositories() -> None:
    """Drop every remembered Identify and newest datestamp (the next polls start afresh)."""
    _identities.clear()
    _newest.clear()


def _remember(url: str, info: dict[str, str], response_date: float | None) -> None:
    if len(_identities) > 50_000:
        _identities.clear()
    offset = response_date - time.time() if response_date is not None else 0.0
    _identities[url] = _Identity(info["granularity"], offset, time.monotonic() + IDENTIFY_MAX_AGE)


class _Failure(Exception):
    """Ends the probe with a given status and reason."""

    def __init__(self, status: CheckStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _NoRecords(Exception):
    """The repository answered noRecordsMatch."""


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
            return await _lag_sample(ctx, known.granularity, time.time() + known.offset)
        identify = await _call(ctx, {"verb": "Identify"})
        info = _identify_info(identify.root)
        _remember(ctx.url, info, identify.response_date)
        if mode == "identify":
            return _identify_sample(ctx, info)
        return await _lag_sample(ctx, info["granularity"], identify.response_date)
    except _Failure as failure:
        _identities.pop(ctx.url, None)
        _newest.pop(check.id, None)
        return make_sample(check, failure.status, failure.reason, latency=ctx.latency or None)
    except _NoRecords:
        _identities.pop(ctx.url, None)
        return make_sample(check, CheckStatus.CRITICAL, "OAI-PMH error noRecordsMatch in reply to Identify")


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
    """One OAI-PMH request, with a single polite retry when the repository asks for one."""
    loop = asyncio.get_running_loop()
    for attempt in range(2):
        reply = await _get(ctx, query)
        if reply.status == 503 and "retry-after" in reply.headers:
            delay = _retry_after(reply.headers["retry-after"])
            remaining = ctx.deadline - loop.time()
            if delay is not None and attempt == 0 and delay < remaining - 0.05:
                await asyncio.sleep(delay)
                continue
            if delay is None:
                shown = reply.headers["retry-after"][:30]
                raise _Failure(CheckStatus.UNKNOWN, f"repository busy, unreadable Retry-After {shown!r}")
            raise _Failure(CheckStatus.UNKNOWN, f"repository busy, asks to retry after {delay:.0f} s")
        break
    if reply.status != 200:
        raise _Failure(CheckStatus.CRITICAL, f"{reply.status_text} (expected 200)")
    if reply.truncated:
        raise _Failure(CheckStatus.UNKNOWN, f"OAI-PMH reply larger than max_body ({ctx.max_body} bytes), not parsed")
    root = _parse(reply.body)
    _raise_oai_errors(root)
    return _Reply(root, _response_date(root), reply.latency)


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
        raise _Failure(CheckStatus.UNKNOWN if exc.config else CheckStatus.CRITICAL, exc.reason) from None
    ctx.latency += reply.latency
    return reply


def _parse(body: bytes) -> Element:
    """Parse untrusted XML, refusing entity declarations and external references."""
    try:
        root: Element = fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except EntitiesForbidden:
        raise _Failure(CheckStatus.CRITICAL, "refused unsafe XML (entity declarations)") from None
    except ExternalReferenceForbidden:
        raise _Failure(CheckStatus.CRITICAL, "refused unsafe XML (external reference)") from None
    except DefusedXmlException as exc:
        raise _Failure(CheckStatus.CRITICAL, f"refused unsafe XML ({type(exc).__name__})") from None
    except ParseError as exc:
        raise _Failure(CheckStatus.CRITICAL, f"malformed XML in OAI-PMH reply: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise _Failure(CheckStatus.CRITICAL, f"unreadable XML in OAI-PMH reply: {exc}") from None
    if root.tag != _NS + "OAI-PMH":
        namespace = str(root.tag)[1:].split("}", 1)[0] if str(root.tag).startswith("{") else ""
        where = f" in namespace {namespace[:40]}" if namespace else ""
        if _local(root.tag) == "OAI-PMH":
            where = where or " without the OAI-PMH 2.0 namespace"
        raise _Failure(CheckStatus.CRITICAL, f"not an OAI-PMH reply (root element <{_local(root.tag)}>{where})")
    return root


def _local(tag: Any) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1][:40]


def _raise_oai_errors(root: Element) -> None:
    errors = root.findall(_NS + "error")
    if not errors:
        return
    codes = [e.get("code", "?") for e in errors]
    if codes == ["noRecordsMatch"]:
        raise _NoRecords
    first = errors[0]
    text = " ".join((first.text or "").split())
    reason = f"OAI-PMH error {first.get('code', '?')}: {text}".rstrip(": ")
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    raise _Failure(CheckStatus.CRITICAL, reason)


def _text(parent: Element, name: str) -> str:
    node = parent.find(_NS + name)
    return " ".join((node.text or "").split()) if node is not None else ""


def _response_date(root: Element) -> float | None:
    return parse_datestamp(_text(root, "responseDate"))


def _identify_info(root: Element) -> dict[str, str]:
    node = root.find(_NS + "Identify")
    if node is None:
        raise _Failure(CheckStatus.CRITICAL, "OAI-PMH reply has no <Identify> element")
    return {
        name: _text(node, name) for name in ("repositoryName", "granularity", "earliestDatestamp", "protocolVersion")
    }


def parse_datestamp(text: str) -> float | None:
    """UTC epoch of an OAI-PMH datestamp (`YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`); None if unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    try:
        return stamp.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _format_datestamp(epoch: float, granularity: str) -> str:
    # a repository claiming a date outside 1970..9999 must still yield a well-formed request
    stamp = dt.datetime.fromtimestamp(min(max(epoch, 0.0), 253402300799.0), dt.UTC)
    if granularity == _SECOND_GRANULARITY:
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp.strftime("%Y-%m-%d")


def format_duration(seconds: float) -> str:
    """Short duration for a reason: `45 s`, `12 min`, `3 h 20 min`, `4 days`."""
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    return f"{seconds / 86400:.0f} days"


def _identify_sample(ctx: _Context, info: dict[str, str]) -> Sample:
    values: dict[str, float] = {}
    earliest = parse_datestamp(info["earliestDatestamp"])
    if earliest is not None:
        values["earliest_datestamp"] = earliest
    name = info["repositoryName"] or "unnamed repository"
    status, judged = judge_metric(ctx.check.thresholds, ctx.latency, "reply in", "s")
    reason = f"{name}: granularity {info['granularity'] or '?'}, earliest {info['earliestDatestamp'] or '?'}, {judged}"
    return make_sample(ctx.check, status, reason, value=ctx.latency, values=values, latency=ctx.latency)


async def _lag_sample(ctx: _Context, granularity: str, server_now: float | None) -> Sample:
    p = ctx.check.params
    try:
        window_days = param_int(p, "window_days", 30, minimum=1)
        max_pages = param_int(p, "max_pages", 5, minimum=1)
        prefix = param_str(p, "metadata_prefix", "oai_dc") or "oai_dc"
    except ParamError as exc:
        raise _Failure(CheckStatus.UNKNOWN, f"bad check configuration: {exc}") from None
    granularity = granularity if granularity == _SECOND_GRANULARITY else _DAY_GRANULARITY
    window = window_days * 86400.0
    since = (server_now if server_now is not None else time.time()) - window
    listing = _Listing()
    remembered = _newest.get(ctx.check.id)
    if remembered is not None and remembered > since:
        await _list_from(ctx, listing, remembered, granularity, prefix, max_pages)
    if listing.newest is None:
        await _list_from(ctx, listing, since, granularity, prefix, max_pages)
    newest, reply_date, pages = listing.newest, listing.reply_date, listing.pages
    if newest is None and listing.no_records:
        _newest.pop(ctx.check.id, None)
        values = {"window_s": window}
        status, judged = judge_metric(ctx.check.thresholds, window, "lag at least", "s")
        reason = f"no record changed in the last {window_days} days"
        if status is not CheckStatus.OK:
            reason += f" ({judged})"
        return make_sample(ctx.check, status, reason, value=window, values=values, latency=ctx.latency)
    if newest is None:
        raise _Failure(CheckStatus.UNKNOWN, "ListIdentifiers reply has no readable datestamp")
    if reply_date is None:
        raise _Failure(CheckStatus.UNKNOWN, "OAI-PMH reply has no readable responseDate")
    if len(_newest) > 50_000:
        _newest.clear()
    _newest[ctx.check.id] = newest
    lag = max(reply_date - newest, 0.0)
    values = {"newest_datestamp": newest, "pages": float(pages)}
    status, judged = judge_metric(ctx.check.thresholds, lag, "lag", "s")
    reason = f"newest record changed {format_duration(lag)} ago ({_format_datestamp(newest, granularity)})"
    if status is not CheckStatus.OK:
        reason += f", {judged}"
    if listing.stopped:
        reason += f" (stopped after {listing.last_pages} pages)"
    return make_sample(ctx.check, status, reason, value=lag, values=values, latency=ctx.latency)


@dataclass
class _Listing:
    """What the ListIdentifiers requests of one poll found."""

    newest: float | None = None
    reply_date: float | None = None
    pages: int = 0
    last_pages: int = 0
    stopped: bool = False
    no_records: bool = False


async def _list_from(
    ctx: _Context, listing: _Listing, since: float, granularity: str, prefix: str, max_pages: int
) -> None:
    """List identifiers changed since `since` (at most `max_pages` pages) into `listing`."""
    query = {"verb": "ListIdentifiers", "metadataPrefix": prefix, "from": _format_datestamp(since, granularity)}
    pages = 0
    token = ""
    listing.no_records = False
    try:
        while pages < max_pages:
            reply = await _call(ctx, query)
            pages += 1
            listing.reply_date = reply.response_date or listing.reply_date
            node = reply.root.find(_NS + "ListIdentifiers")
            if node is None:
                raise _Failure(CheckStatus.CRITICAL, "OAI-PMH reply has no <ListIdentifiers> element")
            for header in node.iterfind(_NS + "header"):
                stamp = parse_datestamp(_text(header, "datestamp"))
                if stamp is not None and (listing.newest is None or stamp > listing.newest):
                    listing.newest = stamp
            token = _text(node, "resumptionToken")
            if not token:
                break
            query = {"verb": "ListIdentifiers", "resumptionToken": token}
    except _NoRecords:
        listing.no_records = True
    listing.pages += pages
    listing.last_pages = pages
    listing.stopped = bool(token) and pages >= max_pages


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
