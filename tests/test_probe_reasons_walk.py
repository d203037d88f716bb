"""Every probe's failure reasons, driven by real failures, read the same way.

One walk over the http, oaipmh, tcp, host and snmp probes against real servers on loopback (an HTTP
server, pyoai's OAI-PMH provider, Net-SNMP's snmpd, closed ports): each reason is one printable line a
technician can read, names durations in minutes/hours/days rather than raw seconds, names a crossed
threshold as "(warning above 2 s)", quotes an HTTP failure as "GET /path: HTTP 404 — first line", and
never shows Python internals.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _oai_provider import OaiProvider, Repository, serve
from _snmpd import SnmpAgent, free_udp_port, run_snmpd
from loopback_http import LoopbackServer, Request, reply

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, SecretRef, Thresholds
from bibnet_ops.probes import oaipmh, run_probe
from bibnet_ops.probes._httpclient import close_clients

COMMUNITY = "walk-ro-51c2"
RAW_SECONDS = re.compile(r"(?<![\d.])(\d{3,}|9\d)(\.\d+)? s\b|\bseconds?\b")
THRESHOLD_NOTE = re.compile(r"\((warning|critical) (above|below) [^()]+\)")
OLD_THRESHOLD = re.compile(r"\b(above|below) (warning|critical)\b")
HTTP_FAILURE = re.compile(r"^(GET|HEAD|POST) /\S*: HTTP \d{3}( — .+)?$")
INTERNALS = ("Traceback", "bytearray", "object at 0x", "Error(", "Exception", "None", "\\x")


async def _catalogue(request: Request, writer: asyncio.StreamWriter) -> None:
    html = {"Content-Type": "text/html; charset=utf-8"}
    if request.path == "/slow":
        await asyncio.sleep(0.4)
        await reply(writer, 200, "<form action='/search'></form>", html)
    elif request.path == "/missing":
        await reply(writer, 404, "<html><head><title>404 Not Found</title></head><body>nginx</body></html>", html)
    elif request.path == "/down":
        await reply(writer, 503, "Catalogue en maintenance jusqu'à 14 h\nRetry later", {"Content-Type": "text/plain"})
    elif request.path == "/api":
        await reply(writer, 200, '{"libraries": []}', {"Content-Type": "application/json"})
    elif request.path == "/hang":
        await asyncio.sleep(30)
    else:
        await reply(writer, 200, "<html><body>Bienvenue</body></html>", html)


@pytest.fixture
async def web() -> AsyncIterator[LoopbackServer]:
    async with LoopbackServer(_catalogue) as server:
        yield server
    await close_clients()


@pytest.fixture(scope="module")
def agent() -> Iterator[SnmpAgent]:
    with run_snmpd(community=COMMUNITY) as running:
        yield running


@pytest.fixture(autouse=True)
def community(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIBNET_WALK_COMMUNITY", COMMUNITY)
    monkeypatch.setenv("BIBNET_WALK_WRONG", "not-the-community")
    oaipmh.forget_repositories()


def spec(
    probe: str, address: str, timeout: float = 2.0, thresholds: Thresholds | None = None, **params: Any
) -> CheckSpec:
    credentials = {}
    if probe == "snmp":
        credentials["community"] = SecretRef(params.pop("community_ref", "env:BIBNET_WALK_COMMUNITY"))
    return CheckSpec(
        site_id="bplp-16",
        device_id="dev",
        name=probe,
        probe=probe,
        address=address,
        params=params,
        credentials=credentials,
        timeout=timeout,
        thresholds=thresholds or Thresholds(),
        unit=params.pop("unit", "") if "unit" in params else "",
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_readable(label: str, sample: Sample) -> None:
    reason = sample.reason
    where = f"{label}: {reason!r}"
    assert reason and reason == reason.strip() and "\n" not in reason, where
    assert reason.isprintable() and len(reason) <= 240, where
    assert not RAW_SECONDS.search(reason), f"raw seconds in {where}"
    assert not OLD_THRESHOLD.search(reason), f"old threshold wording in {where}"
    assert not any(word in reason for word in INTERNALS), f"internals in {where}"
    if " above " in reason or " below " in reason:
        assert THRESHOLD_NOTE.search(reason), f"threshold not named in {where}"
    if re.search(r"HTTP [345]\d\d", reason):
        assert HTTP_FAILURE.match(reason), f"HTTP failure not quoted in {where}"


async def test_http_tcp_and_host_failure_reasons(web: LoopbackServer) -> None:
    refused = f"http://127.0.0.1:{closed_port()}"
    cases: dict[str, CheckSpec] = {
        "http 404": spec("http", web.url, path="/missing"),
        "http 503": spec("http", web.url, path="/down"),
        "http slow": spec("http", web.url, path="/slow", thresholds=Thresholds(warning=0.1, critical=5)),
        "http hang": spec("http", web.url, timeout=0.5, path="/hang"),
        "http refused": spec("http", refused),
        "http no form": spec("http", web.url, body_regex="(?i)<form", body_label="a catalogue search form"),
        "http no text": spec("http", web.url, body_contains="Catalogue"),
        "http json": spec("http", web.url, path="/api", json_field="libraries", json_min_items=1),
        "http bad config": spec("http", "ftp://127.0.0.1/"),
        "tcp refused": spec("tcp", f"127.0.0.1:{closed_port()}"),
        "tcp slow": spec("tcp", f"127.0.0.1:{web.port}", thresholds=Thresholds(warning=0.0)),
        "tcp no port": spec("tcp", "127.0.0.1"),
        "host disk": spec("host", "", metric="disk", path="/no/such/dir"),
        "host memory": spec("host", "", metric="memory", thresholds=Thresholds(warning=0.0, critical=0.0)),
        "host load": spec("host", "", metric="load", thresholds=Thresholds(warning=-1.0)),
    }
    samples = dict(zip(cases, await asyncio.gather(*(run_probe(c) for c in cases.values())), strict=True))
    for label, sample in samples.items():
        assert sample.status is not CheckStatus.OK, (label, sample.reason)
        assert_readable(label, sample)
    assert samples["http 404"].reason == "GET /missing: HTTP 404 — Not Found"
    assert samples["http 503"].reason == "GET /down: HTTP 503 — Catalogue en maintenance jusqu'à 14 h"
    assert samples["http slow"].reason.endswith("(warning above 0.1 s)")
    assert samples["http no form"].reason == "GET /: body lacks a catalogue search form"
    assert samples["host memory"].reason.endswith("(critical above 0 %)")
    assert samples["http 404"].evidence.startswith(f"GET {web.url}/missing\nHTTP 404 Not Found\n")
    assert "connection refused" in samples["tcp refused"].evidence or "ECONNREFUSED" in samples["tcp refused"].evidence


async def test_oaipmh_failure_reasons() -> None:
    now = time.time()
    quiet = Repository.generate(1_000, lag=40 * 86400, now=now)
    late = Repository.generate(1_000, lag=5 * 86400, now=now)
    th = Thresholds(warning=3 * 86400, critical=14 * 86400)
    disabled = OaiProvider(Repository.generate(10, lag=60, now=now))
    disabled.disabled = True
    with serve(OaiProvider(quiet)) as q, serve(OaiProvider(late)) as lt, serve(disabled) as off:
        cases = {
            "oai quiet": spec("oaipmh", q.url, mode="lag", thresholds=th),
            "oai late": spec("oaipmh", lt.url, mode="lag", thresholds=th),
            "oai cut short": spec("oaipmh", lt.url, mode="lag", max_requests=1, thresholds=Thresholds(warning=3600)),
            "oai prefix": spec("oaipmh", lt.url, mode="lag", metadata_prefix="marc21", thresholds=th),
            "oai disabled": spec("oaipmh", off.url, mode="identify"),
            "oai refused": spec("oaipmh", f"http://127.0.0.1:{closed_port()}"),
        }
        samples = {label: await run_probe(c) for label, c in cases.items()}
    await close_clients()
    for label, sample in samples.items():
        assert sample.status is not CheckStatus.OK, (label, sample.reason)
        assert_readable(label, sample)
    assert samples["oai quiet"].reason == "no record changed in the last 30 days (critical above 14 days)"
    assert samples["oai late"].reason.endswith("(warning above 3 days)")
    assert samples["oai prefix"].reason.startswith("OAI-PMH error cannotDisseminateFormat")
    assert "error cannotDisseminateFormat" in samples["oai prefix"].evidence
    assert samples["oai disabled"].reason == "GET /cgi-bin/koha/oai.pl: HTTP 404 — OAI-PMH service is disabled"


async def test_snmp_failure_reasons(agent: SnmpAgent) -> None:
    silent = f"127.0.0.1:{free_udp_port()}"
    cases = {
        "snmp silent": spec("snmp", silent, timeout=0.5, oids=["1.3.6.1.2.1.1.3.0"]),
        "snmp wrong community": spec(
            "snmp", agent.address, timeout=0.5, community_ref="env:BIBNET_WALK_WRONG", oids=["1.3.6.1.2.1.1.3.0"]
        ),
        "snmp missing oid": spec("snmp", agent.address, oid="1.3.6.1.4.1.99999.1.0"),
        "snmp threshold": spec("snmp", agent.address, oid="1.3.6.1.2.1.1.3.0", thresholds=Thresholds(warning=0.0)),
        "snmp expect": spec("snmp", agent.address, oid="1.3.6.1.2.1.1.6.0", expect="Tlemcen"),
    }
    samples = {label: await run_probe(c) for label, c in cases.items()}
    for label, sample in samples.items():
        assert sample.status is not CheckStatus.OK, (label, sample.reason)
        assert_readable(label, sample)
    assert THRESHOLD_NOTE.search(samples["snmp threshold"].reason), samples["snmp threshold"].reason
