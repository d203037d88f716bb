"""`Sample.evidence`: the raw reply a status was judged on, bounded in size and with secrets redacted.

Built only from what a probe already holds (the request URL, the status line, the headers and the head
of the body it read), with slicing and joining only, so it costs microseconds per sample.
"""

from __future__ import annotations

from collections.abc import Iterable

from bibnet_ops.probes._reasons import is_secret_name, redact_url

__all__ = ["BODY_LIMIT", "EVIDENCE_LIMIT", "bounded", "http_evidence"]

BODY_LIMIT = 2048
"""Bytes of a reply body kept in the evidence."""
EVIDENCE_LIMIT = 4096
"""Characters of evidence kept in all (status line, headers, body head)."""
_MAX_HEADERS = 40
# control characters (but newline and tab) shown as U+FFFD: a terminal must not act on a device's bytes
_CONTROLS = {c: "\ufffd" for c in [*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)]}
_MAX_HEADER_LINE = 200


def http_evidence(
    method: str,
    url: str,
    status_text: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    truncated: bool = False,
) -> str:
    """The request line, the status line, the headers and the first 2 KiB of the body.

    Args:
        method: The request method.
        url: The URL requested (credentials in it are redacted).
        status_text: E.g. "HTTP 404 Not Found".
        headers: The reply headers as (name, value) pairs; credentials (Set-Cookie, Authorization,
            tokens) are redacted.
        body: The body as read (only its first `BODY_LIMIT` bytes are used).
        truncated: The probe stopped reading the body at its `max_body`.

    Returns:
        A multi-line text of at most `EVIDENCE_LIMIT` characters.
    """
    lines = [f"{method.upper()} {redact_url(url)}", status_text]
    for count, (name, value) in enumerate(headers):
        if count >= _MAX_HEADERS:
            lines.append("… (more headers)")
            break
        shown = "***" if is_secret_name(name) else value
        lines.append(f"{name}: {shown}"[:_MAX_HEADER_LINE])
    head = body[:BODY_LIMIT].decode("utf-8", "replace").translate(_CONTROLS)
    if len(body) > BODY_LIMIT or truncated:
        head += f"\n… ({len(body)} bytes read{', more not read' if truncated else ''})"
    return bounded("\n".join(lines) + "\n\n" + head)


def bounded(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    """Cut evidence to `limit` characters, saying so."""
    return text if len(text) <= limit else text[: limit - 12] + "\n… (cut)"
