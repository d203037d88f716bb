"""The last raw reply of a check, as a technician reads it to tell why the check fails (no UI here).

Probes put what they judged on in `Sample.evidence` (an HTTP status line, headers and body head; SNMP varbinds
or error status; the OAI-PMH request and error code). Whoever shows it goes through `evidence_of`, which bounds
it once more and redacts the check's own secrets and the usual credential carriers, whatever the probe did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretError

__all__ = ["EVIDENCE_LIMIT", "Evidence", "evidence_of", "no_reply_reason", "redact_evidence"]

EVIDENCE_LIMIT = 8192
"""Characters of raw reply shown at most: the headers and 2 KiB of body fit, a runaway reply does not."""

_MASK = "<redacted>"
# Header lines whose value is a credential, in a request or a reply.
_SECRET_HEADER = re.compile(
    r"(?im)^(\s*(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token|x-koha-authorization)"
    r"\s*:\s*)(.+)$"
)
# user:password@ in a URL.
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@/\s]+)(@)")
# password=..., token=..., community=... in a query string or a form body.
# Control characters a hostile reply could use to drive the technician's terminal (newlines and tabs stay).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;\s](?:pass(?:word)?|passwd|pwd|token|access_token|api_?key|secret|community|auth_key|priv_key)=)"
    r"([^&;\s\"'<]+)"
)


@dataclass(frozen=True)
class Evidence:
    """What a check's last result was judged on.

    Attributes:
        check_id: `site/device/check`.
        probe: the probe kind (`http`, `snmp`, `oaipmh`, `tcp`, `host`).
        status: the last result's status, None before the first result.
        reason: the last result's reason.
        time: UTC epoch seconds of the last result, None before the first one.
        text: the raw reply, bounded and redacted; empty when the probe kept none.
        cut: characters left out beyond `EVIDENCE_LIMIT`.
        value: the last result's measured value (None when nothing was measured: no reply at all).
    """

    check_id: str
    probe: str
    status: CheckStatus | None = None
    reason: str = ""
    time: float | None = None
    text: str = ""
    cut: int = 0
    value: float | None = None


def redact_evidence(text: str, spec: CheckSpec | None = None) -> str:
    """`text` with credentials masked: the check's resolved secrets, auth headers, URL passwords, secret parameters."""
    if spec is not None:
        for ref in spec.credentials.values():
            try:
                value = ref.resolve()
            except SecretError:
                continue
            if len(value) >= 3:  # a one- or two-character secret would mask half the reply and hide nothing
                text = text.replace(value, f"<secret {ref.ref}>")
    text = _SECRET_HEADER.sub(lambda m: m.group(1) + _MASK, text)
    text = _USERINFO.sub(lambda m: m.group(1) + _MASK + m.group(3), text)
    return _SECRET_PARAM.sub(lambda m: m.group(1) + _MASK, text)


def no_reply_reason(status: CheckStatus | None, reason: str, value: float | None) -> str | None:
    """Why a result has no raw reply, when its own reason says it (refused, timed out: nothing measured), else None.

    A failure that measured something (a threshold crossed, a host figure) had a reply or needed none: its reason
    says why it failed, not why no reply was kept.
    """
    if status is None or status == CheckStatus.OK or value is not None or not reason:
        return None
    return " ".join(reason.split())


def evidence_of(spec: CheckSpec, sample: Sample | None, limit: int = EVIDENCE_LIMIT) -> Evidence:
    """The evidence of `spec`'s last result `sample` (None before the first), bounded to `limit` and redacted."""
    if sample is None:
        return Evidence(spec.id, spec.probe)
    raw = sample.evidence
    cut = max(0, len(raw) - limit)
    text = redact_evidence(raw[:limit] if cut else raw, spec)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\r\n", "\n"))
    return Evidence(spec.id, spec.probe, sample.status, sample.reason, sample.time, text, cut, sample.value)
