"""How every probe words its reasons, so a technician reads them the same way whatever the check.

One module, used by the `http`, `oaipmh`, `tcp`, `host` and `snmp` probes (and by anything else that
judges a value against thresholds), for four habits:

- **Durations in days, hours and minutes**, never raw seconds past a minute and a half:
  `duration(2592000)` is "30 days", `duration(12600)` is "3 h 30 min", `duration(2.5)` is "2.5 s".
- **Quantities with their unit**: `quantity(0.034, "s")` is "0.034 s", `quantity(259200, "s")` is
  "3 days", `quantity(10, "days")` is "10 days", `quantity(85.2, "%")` is "85.2 %".
- **A crossed threshold is named** after the value, in the value's unit:
  `judge(th, 10, "TLS certificate expires in", "days")` gives
  `(WARNING, "TLS certificate expires in 10 days (warning below 21 days)")`; an OK value gives the bare
  "TLS certificate expires in 30 days".
- **An HTTP failure quotes the request and the first line of the body**:
  `http_failure("GET", "http://h/cgi-bin/koha/oai.pl", 404, "Not Found", b"OAI-PMH service is disabled")`
  is "GET /cgi-bin/koha/oai.pl: HTTP 404 — OAI-PMH service is disabled". HTML bodies give their title
  (or their first line of text), never markup.

Everything here is pure string work on what a probe already holds: no I/O, no parsing beyond the first
few KiB of a body, cheap enough for every sample of a 20,000-checks-a-minute collector.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bibnet_ops.model import CheckStatus, Thresholds

__all__ = [
    "SECRET_WORDS",
    "crossed",
    "duration",
    "first_line",
    "http_failure",
    "is_secret_name",
    "judge",
    "number",
    "plural",
    "quantity",
    "redact_url",
    "request_target",
]

SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "authorization", "session", "cookie", "signature")
"""Parts of a query-parameter or header name whose value is replaced by `***` in anything shown."""
_NOT_SECRET = frozenset({"resumptiontoken"})  # OAI-PMH's paging cursor: no credential, and worth showing

_SECONDS_UNITS = frozenset({"s", "sec", "second", "seconds"})
_DAY_UNITS = frozenset({"d", "day", "days"})
_BODY_SCAN = 8192  # only the head of a body is looked at for its first line
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_DROPPED = re.compile(rb"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(rb"<[^>]*>|<!--.*?-->", re.DOTALL)


def number(value: float) -> str:
    """A compact number: `0.034`, `2.5`, `12.5`, `1200` (no useless ".0").

    Args:
        value: Any finite number.

    Returns:
        Up to three decimals below 1 (no trailing zeros), one below 100, none above (or for whole numbers).
    """
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def plural(count: float, noun: str, many: str = "") -> str:
    """`1 page`, `3 pages`, `0 records`; `many` gives an irregular plural.

    Args:
        count: How many.
        noun: The singular noun.
        many: The plural when it is not `noun + "s"`.
    """
    word = noun if count == 1 else (many or noun + "s")
    return f"{number(count)} {word}"


def duration(seconds: float) -> str:
    """A duration as a technician says it: `0.5 s`, `45 s`, `12 min`, `3 h 20 min`, `4 days`.

    Below 90 s it is seconds (one decimal below 10 s); below an hour, minutes; below two days, hours
    and minutes; beyond, whole days. The sign is dropped: say "ago" or "in" around it.

    Args:
        seconds: The duration in seconds.
    """
    seconds = abs(seconds)
    if seconds < 10:
        return f"{round(seconds, 1):g} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3570:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        hours, rest = divmod(round(seconds / 60) * 60, 3600)
        minutes = rest // 60
        return f"{hours:.0f} h {minutes:.0f} min" if minutes else f"{hours:.0f} h"
    return f"{seconds / 86400:.0f} days"


def quantity(value: float, unit: str = "") -> str:
    """A value with its unit; seconds past 90 become a `duration`, days are counted in whole days.

    Args:
        value: The measured (or threshold) value.
        unit: The check's unit ("s", "days", "%", "pages/h", ...); empty for a bare number.

    Returns:
        E.g. `0.034 s`, `3 days`, `1 day`, `85.2 %`, `120 pages/h`, `7`.
    """
    key = unit.strip().lower()
    if key in _SECONDS_UNITS:
        return duration(value) if abs(value) >= 90 else f"{number(value)} s"
    if key in _DAY_UNITS:
        days = round(value) if abs(value) >= 1 else round(value, 1)
        return plural(days, "day")
    return f"{number(value)} {unit}" if unit else number(value)


def crossed(thresholds: Thresholds, status: CheckStatus, unit: str = "") -> str:
    """Name the bound a status crossed: `(warning below 21 days)`, `(critical above 8 s)`.

    Args:
        thresholds: The check's thresholds.
        status: The status `thresholds.classify()` gave.
        unit: The check's unit, so the bound reads like the value.

    Returns:
        The parenthesised note, or "" when the status is not WARNING/CRITICAL or has no bound.
    """
    if status is CheckStatus.CRITICAL:
        bound, level = thresholds.critical, "critical"
    elif status is CheckStatus.WARNING:
        bound, level = thresholds.warning, "warning"
    else:
        return ""
    if bound is None:
        return ""
    side = "below" if thresholds.direction == "below" else "above"
    return f"({level} {side} {quantity(float(bound), unit)})"


def judge(thresholds: Thresholds, value: float, label: str, unit: str = "") -> tuple[CheckStatus, str]:
    """Classify a value and word it, naming the threshold when one is crossed.

    Args:
        thresholds: The check's thresholds.
        value: The measured value, in `unit`.
        label: What comes before the value: "reply in", "lag", "CPU", "TLS certificate expires in".
        unit: The value's unit ("s", "days", "%", ...).

    Returns:
        The status and e.g. "reply in 2.5 s (warning above 2 s)" or "CPU 12 %".
    """
    status = thresholds.classify(value)
    shown = f"{label} {quantity(value, unit)}".strip()
    note = crossed(thresholds, status, unit)
    return status, f"{shown} {note}" if note else shown


def first_line(body: bytes | str, content_type: str = "", limit: int = 80) -> str:
    """The first meaningful line of a reply body, for quoting in a reason.

    HTML gives its `<title>`, else its first line of visible text; other bodies their first non-blank
    line. Control characters are dropped and the result cut to `limit` characters. Only the first
    8 KiB are looked at.

    Args:
        body: The body (bytes as read, or text).
        content_type: The reply's Content-Type, if known.
        limit: Longest result.

    Returns:
        The line, or "" for an empty or unreadable body.
    """
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    head = raw[:_BODY_SCAN]
    if not head.strip():
        return ""
    if "html" in content_type.lower() or head.lstrip()[:1] == b"<":
        title = _TITLE.search(head)
        text = _clean(title.group(1)) if title else ""
        if not text:
            visible = _TAG.sub(b"\n", _DROPPED.sub(b"", head))
            text = next((line for line in (_clean(part) for part in visible.splitlines()) if line), "")
    else:
        text = next((line for line in (_clean(part) for part in head.splitlines()) if line), "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(raw: bytes) -> str:
    text = html.unescape(raw.decode("utf-8", "replace"))
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def request_target(url: str, query: bool = False) -> str:
    """The path a request went to (and its query, redacted, when `query` is True).

    Args:
        url: Absolute URL or bare path.
        query: Keep the query string (with secret-looking parameters replaced by `***`).
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    if query and parts.query:
        return f"{path}?{_redact_query(parts.query)}"
    return path


def redact_url(url: str) -> str:
    """The URL with any user:password and secret-looking query parameters replaced by `***`.

    Args:
        url: The URL as requested.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = _redact_query(parts.query) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(is_secret_name(name) for name, _ in pairs):
        return query
    return urlencode([(name, "***" if is_secret_name(name) else value) for name, value in pairs], safe="*:/")


@functools.lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """Whether a header or parameter name looks like it carries a credential (`Authorization`, `apikey`).

    Cached: the same few header names come back in every reply.
    """
    lowered = name.lower()
    return lowered not in _NOT_SECRET and any(word in lowered for word in SECRET_WORDS)


def http_failure(
    method: str,
    url: str,
    status: int,
    reason_phrase: str = "",
    body: bytes | str = b"",
    content_type: str = "",
    expected: Iterable[int] = (),
) -> str:
    """Word an unexpected HTTP status: the request, the status and what the server said.

    Args:
        method: The request method ("GET").
        url: The URL (or path) requested; only its path is quoted.
        status: The status code received.
        reason_phrase: The status line's phrase, used when the body says nothing.
        body: The reply body (or its head).
        content_type: The reply's Content-Type.
        expected: The statuses the check accepts, named when they are not just 200.

    Returns:
        E.g. "GET /cgi-bin/koha/oai.pl: HTTP 404 — OAI-PMH service is disabled" or
        "GET /: HTTP 503 — Service Unavailable (expected 200 or 301)".
    """
    detail = first_line(body, content_type)
    # error pages often title themselves "404 Not Found": the number is already said
    detail = detail.removeprefix(str(status)).strip(" :-—") if detail.startswith(str(status)) else detail
    detail = detail or reason_phrase.strip()
    text = f"{method.upper()} {request_target(url)}: HTTP {status}"
    if detail:
        text += f" — {detail}"
    wanted = list(expected)
    if wanted and wanted != [200]:
        text += f" (expected {' or '.join(str(code) for code in wanted)})"
    return text
