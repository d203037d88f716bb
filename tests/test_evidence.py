"""The last raw reply of a check: bounded, redacted, kept by the engine, asked for over the collector's socket,
and printed by `bibnet-ops check --verbose` (real processes against real loopback HTTP servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_check import bibnet, config

from bibnet_ops.cli.check_cmd import evidence_block
from bibnet_ops.engine import EVIDENCE_LIMIT, evidence_of
from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretRef
from bibnet_ops.remote._outbox import Outbox

REPLY = (
    "HTTP/1.1 401 Unauthorized\r\n"
    "WWW-Authenticate: Basic realm=koha\r\n"
    "Set-Cookie: CGISESSID=4f1c9a; path=/\r\n"
    "\r\n"
    "<p>see http://admin:hunter22@10.0.0.5/cgi-bin/koha?password=s3cret&x=1 and key swordfish42</p>\x1b[2J"
)


def _spec(monkeypatch: pytest.MonkeyPatch) -> CheckSpec:
    monkeypatch.setenv("KOHA_KEY", "swordfish42")
    return CheckSpec("bplp-16", "catalogue", "opac", "http", "http://koha.test",
                     credentials={"api_key": SecretRef("env:KOHA_KEY")})


def test_evidence_is_redacted_and_made_harmless_for_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(monkeypatch)
    sample = Sample(spec.id, CheckStatus.CRITICAL, "HTTP 401", time=5.0, evidence=REPLY)
    ev = evidence_of(spec, sample)
    assert ev.status == CheckStatus.CRITICAL and ev.reason == "HTTP 401" and ev.time == 5.0 and ev.cut == 0
    assert ev.text.startswith("HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Basic realm=koha\n")
    for secret in ("4f1c9a", "hunter22", "s3cret", "swordfish42"):
        assert secret not in ev.text
    assert "Set-Cookie: <redacted>" in ev.text
    assert "admin:<redacted>@10.0.0.5" in ev.text and "password=<redacted>&x=1" in ev.text
    assert "<secret env:KOHA_KEY>" in ev.text
    assert "\x1b" not in ev.text and "\\x1b[2J" in ev.text  # shown, never obeyed by the terminal


def test_evidence_is_bounded_and_a_check_never_polled_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(monkeypatch)
    huge = "HTTP/1.1 200 OK\n\n" + "x" * (EVIDENCE_LIMIT * 4)
    ev = evidence_of(spec, Sample(spec.id, CheckStatus.OK, time=1.0, evidence=huge))
    assert len(ev.text) == EVIDENCE_LIMIT and ev.cut == len(huge) - EVIDENCE_LIMIT
    never = evidence_of(spec, None)
    assert never.time is None and never.status is None and never.text == ""


def test_samples_cross_to_the_dashboard_without_their_reply() -> None:
    """The outbox strips the reply from every streamed sample: it is asked for on demand, never streamed."""
    outbox = Outbox(10)
    outbox.event(Sample("a/b/c", CheckStatus.OK, "fine", 1.0, time=2.0, evidence="HTTP/1.1 200 OK\n\n" + "x" * 2048))
    batch, _ = outbox.take()
    assert batch is not None
    (sent,) = batch.events
    assert isinstance(sent, Sample) and sent.evidence == "" and sent.reason == "fine" and sent.value == 1.0


def test_check_verbose_block_for_a_reply_and_for_none(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(monkeypatch)
    block = evidence_block(spec, Sample(spec.id, CheckStatus.CRITICAL, "HTTP 401", time=1.0, evidence=REPLY))
    assert block[0] == "    | reason: HTTP 401"
    assert block[1] == "    | HTTP/1.1 401 Unauthorized"
    assert all(line.startswith("    |") for line in block) and not any("hunter22" in line for line in block)
    refused = evidence_block(spec, Sample(spec.id, CheckStatus.CRITICAL, "connection refused", time=1.0))
    assert refused[-1] == "    | no raw reply kept (connection refused)"


async def test_check_verbose_prints_each_rows_reply_under_it(tmp_path: Path) -> None:
    async with config(tmp_path, {"alger": None, "oran": None}) as devices:
        devices["oran"].mode = "fail"
        code, out, _ = await bibnet(tmp_path, "check", "--verbose")
        assert code == 2
        lines = out.splitlines()
        assert lines[0].split() == ["CHECK", "STATUS", "VALUE", "LATENCY", "REASON"]
        rows = [i for i, line in enumerate(lines) if not line.startswith("    |")]
        assert [lines[i].split()[0] for i in rows[1:]] == ["alger/web/home", "oran/web/home"]
        code, out_json, _ = await bibnet(tmp_path, "check", "--json", "--verbose")
        replies = {r["id"]: r for r in map(json.loads, out_json.splitlines())}
        for row, nxt in zip(rows[1:], [*rows[2:], len(lines)], strict=True):
            ident = lines[row].split()[0]
            block = lines[row + 1:nxt]
            assert block, f"no evidence block under {ident}"
            text = replies[ident]["evidence"]
            if text:  # the probe kept the reply: its first line is printed under the row
                assert f"    | {text.splitlines()[0]}".rstrip() in block
            elif replies[ident]["status"] == "OK":
                assert block[-1] == "    | no raw reply kept (the http probe kept none for this result)"
            else:
                assert block[-1].startswith("    | no raw reply kept (") and "503" in block[-1]
        failing = lines[rows[2] + 1]
        assert failing.startswith("    | reason: ") and "503" in failing  # the whole reason, not cut at 80 columns
        # A device that is not there at all: the reason says why no reply was kept.
        assert devices["alger"].server is not None
        await devices["alger"].server.stop()
        devices["alger"].server = None
        code, out, _ = await bibnet(tmp_path, "check", "alger", "--verbose")
        assert code == 2
        last = out.splitlines()[-1]  # the http probe keeps the request and why no reply came back
        assert last.startswith(("    | no raw reply kept (", "    | (no complete reply) ")) and "refused" in last


def test_a_failure_explains_a_missing_reply_only_when_nothing_was_measured() -> None:
    from bibnet_ops.engine import no_reply_reason

    assert no_reply_reason(CheckStatus.CRITICAL, "connection refused", None) == "connection refused"
    assert no_reply_reason(CheckStatus.CRITICAL, "no SNMP answer\n within 1 s", None) == "no SNMP answer within 1 s"
    # a threshold crossed: something was measured, so the reason does not say why no reply was kept
    assert no_reply_reason(CheckStatus.CRITICAL, "CPU 100 % (critical above 95 %)", 100.0) is None
    assert no_reply_reason(CheckStatus.OK, "HTTP 200 OK", None) is None
    assert no_reply_reason(None, "", None) is None
