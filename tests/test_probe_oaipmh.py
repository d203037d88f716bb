"""The oaipmh probe against a small loopback OAI-PMH provider with scripted faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from loopback_http import LoopbackServer, Request, reply

from bibnet_ops.model import CheckSpec, CheckStatus, Thresholds
from bibnet_ops.probes import run_probe
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.probes.oaipmh import forget_repositories, format_duration, parse_datestamp, probe

# the provider's clock is deliberately far from ours: lag must come from the server's own responseDate
SERVER_NOW = "2024-05-10T12:00:00Z"
STAMPS = [
    "2024-05-01T08:00:00Z",
    "2024-05-03T10:00:00Z",
    "2024-05-05T11:00:00Z",
    "2024-05-10T09:30:00Z",  # the newest, on page 2: lag 2 h 30 min
    "2024-05-07T16:00:00Z",
    "2024-05-08T07:45:00Z",
]
PAGE = 3

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>&lol4;</responseDate></OAI-PMH>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><repositoryName>&xxe;</repositoryName></OAI-PMH>"""


def envelope(body: str, request_attrs: str = "", now: str = SERVER_NOW) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        f"<responseDate>{now}</responseDate><request {request_attrs}>http://127.0.0.1/oai</request>"
        f"{body}</OAI-PMH>"
    )


def identify(granularity: str = "YYYY-MM-DDThh:mm:ssZ") -> str:
    return envelope(
        "<Identify><repositoryName>Koha BPLP Oran</repositoryName>"
        "<baseURL>http://127.0.0.1/oai</baseURL><protocolVersion>2.0</protocolVersion>"
        "<adminEmail>it@bplp-oran.dz</adminEmail><earliestDatestamp>2010-01-01T00:00:00Z</earliestDatestamp>"
        f"<deletedRecord>persistent</deletedRecord><granularity>{granularity}</granularity></Identify>"
    )


def headers_page(stamps: list[str], token: str) -> str:
    items = "".join(
        f"<header><identifier>oai:bplp-31:{i}</identifier><datestamp>{s}</datestamp></header>"
        for i, s in enumerate(stamps)
    )
    return envelope(f"<ListIdentifiers>{items}<resumptionToken>{token}</resumptionToken></ListIdentifiers>")


def error(code: str, text: str) -> str:
    return envelope(f'<error code="{code}">{text}</error>')


class Provider:
    """Routes by the first path segment to a scenario; remembers the queries it saw."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.busy_hits = 0
        self.live = list(STAMPS)  # the "live" scenario's records, honouring `from`

    async def __call__(self, request: Request, writer: asyncio.StreamWriter) -> None:
        scenario = request.path.strip("/").split("/")[0]
        query = request.query
        self.queries.append(query)
        verb = query.get("verb", "")
        xml = {"Content-Type": "text/xml; charset=UTF-8"}
        if scenario == "busy" and self.busy_hits == 0:
            self.busy_hits += 1
            await reply(writer, 503, "busy", {"Retry-After": "1"})
        elif scenario == "busylong":
            await reply(writer, 503, "busy", {"Retry-After": "120"})
        elif scenario == "malformed":
            await reply(writer, 200, "<OAI-PMH><Identify><repositoryName>Koha</Identify>", xml)
        elif scenario == "bomb":
            await reply(writer, 200, BOMB, xml)
        elif scenario == "xxe":
            await reply(writer, 200, XXE, xml)
        elif scenario == "html":
            await reply(writer, 200, "<html><body>Koha maintenance</body></html>", {"Content-Type": "text/html"})
        elif verb == "Identify":
            await reply(writer, 200, identify("YYYY-MM-DD" if scenario == "day" else "YYYY-MM-DDThh:mm:ssZ"), xml)
        elif scenario == "empty":
            await reply(writer, 200, error("noRecordsMatch", "No records match"), xml)
        elif scenario == "bad":
            await reply(writer, 200, error("badArgument", "Illegal argument 'from'"), xml)
        elif scenario == "endless":
            n = int(query.get("resumptionToken", "0") or 0)
            await reply(writer, 200, headers_page(STAMPS[:2], str(n + 1)), xml)
        elif scenario == "day":
            await reply(writer, 200, headers_page(["2024-05-08", "2024-05-09"], ""), xml)
        else:
            # a well-behaved provider: honours `from`, lists oldest-first in pages of PAGE with tokens
            since = query.get("from", "")
            start = 0
            if "resumptionToken" in query:
                since, _, offset = query["resumptionToken"].partition("|")
                start = int(offset)
            found = [stamp for stamp in self.live if stamp >= since]
            if not found:
                await reply(writer, 200, error("noRecordsMatch", "No records match"), xml)
                return
            token = f"{since}|{start + PAGE}" if start + PAGE < len(found) else ""
            await reply(writer, 200, headers_page(found[start : start + PAGE], token), xml)


@pytest.fixture(autouse=True)
def fresh_repositories() -> None:
    forget_repositories()


@pytest.fixture
async def provider() -> AsyncIterator[tuple[LoopbackServer, Provider]]:
    handler = Provider()
    async with LoopbackServer(handler) as srv:
        yield srv, handler
    await close_clients()


def check(
    address: str, path: str, timeout: float = 3.0, thresholds: Thresholds | None = None, **params: Any
) -> CheckSpec:
    return CheckSpec(
        site_id="bplp-31",
        device_id="catalogue",
        name="oai-sync",
        probe="oaipmh",
        address=address,
        params={"path": path, **params},
        timeout=timeout,
        thresholds=thresholds or Thresholds(),
    )


Fixture = tuple[LoopbackServer, Provider]


async def test_identify(provider: Fixture) -> None:
    srv, handler = provider
    sample = await probe(check(srv.url, "/ok/oai.pl"))
    assert sample.status is CheckStatus.OK, sample.reason
    assert sample.reason.startswith("Koha BPLP Oran: granularity YYYY-MM-DDThh:mm:ssZ, earliest 2010-01-01T00:00:00Z")
    assert sample.value is not None and sample.value == sample.latency
    assert sample.values["earliest_datestamp"] == parse_datestamp("2010-01-01T00:00:00Z")
    assert handler.queries == [{"verb": "Identify"}]


async def test_default_path_is_koha() -> None:
    seen: list[str] = []

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        seen.append(request.path)
        await reply(writer, 200, identify())

    async with LoopbackServer(handler) as srv:
        sample = await run_probe(CheckSpec("s", "d", "c", "oaipmh", srv.url))
    await close_clients()
    assert sample.status is CheckStatus.OK and seen == ["/cgi-bin/koha/oai.pl"]


async def test_lag_on_server_clock_widens_from_a_short_window(provider: Fixture) -> None:
    srv, handler = provider
    sample = await probe(check(srv.url, "/ok", mode="lag", thresholds=Thresholds(warning=3600, critical=86400)))
    assert sample.value == 2.5 * 3600
    assert sample.status is CheckStatus.WARNING
    assert sample.reason == "newest record changed 2 h 30 min ago at 2024-05-10T09:30:00Z (warning above 1 h)"
    # the last hour (server time) holds nothing, the last 8 hours one record: a complete listing
    assert [q.get("from") for q in handler.queries[1:]] == ["2024-05-10T11:00:00Z", "2024-05-10T04:00:00Z"]
    assert sample.values["requests"] == 2
    assert "from=2024-05-10T11:00:00Z -> error noRecordsMatch" in sample.evidence
    assert "from=2024-05-10T04:00:00Z -> 1 header, newest 2024-05-10T09:30:00Z, complete" in sample.evidence


async def test_lag_day_granularity_counts_from_the_end_of_the_day(provider: Fixture) -> None:
    srv, handler = provider
    sample = await probe(check(srv.url, "/day", mode="lag", window_days=7, metadata_prefix="marcxml"))
    assert sample.status is CheckStatus.OK
    assert sample.value == 12 * 3600  # the end of 2024-05-09 to 2024-05-10 12:00
    assert sample.reason == "newest record dated 2024-05-09: changed 12 h to 36 h ago"
    assert handler.queries[1] == {"verb": "ListIdentifiers", "metadataPrefix": "marcxml", "from": "2024-05-09"}


async def test_lag_polls_reuse_identify_and_list_only_what_changed(provider: Fixture) -> None:
    srv, handler = provider
    lag = check(srv.url, "/live", mode="lag")
    first = await probe(lag)
    assert first.value == 2.5 * 3600
    assert [q["verb"] for q in handler.queries] == ["Identify", "ListIdentifiers", "ListIdentifiers"]
    handler.queries.clear()
    handler.live.append("2024-05-10T11:00:00Z")
    second = await probe(lag)
    assert second.value == 3600
    # no Identify, and only records from the newest already seen on
    assert handler.queries == [{"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "from": "2024-05-10T09:30:00Z"}]
    handler.queries.clear()
    handler.live = STAMPS[:3]  # the newest records were deleted: the search widens again
    third = await probe(lag)
    assert third.value == 5 * 86400 + 3600  # 2024-05-05T11:00 to 2024-05-10T12:00 (server clock)
    assert [q.get("from") for q in handler.queries] == [
        "2024-05-10T11:00:00Z",
        "2024-05-10T04:00:00Z",
        "2024-05-07T20:00:00Z",
        "2024-04-19T04:00:00Z",
    ]


async def test_identify_is_asked_again_after_a_failure(provider: Fixture) -> None:
    srv, handler = provider
    bad = check(srv.url, "/bad", mode="lag")
    for _ in range(2):
        handler.queries.clear()
        sample = await probe(bad)
        assert sample.status is CheckStatus.CRITICAL
        # badArgument to a `from` with a time: asked again by date before giving up
        assert [q["verb"] for q in handler.queries] == ["Identify", "ListIdentifiers", "ListIdentifiers"]
        assert handler.queries[2]["from"] == "2024-05-09"


async def test_a_search_cut_short_is_never_judged_as_complete(provider: Fixture) -> None:
    srv, handler = provider
    # a repository that ignores `from` and pages forever: only a lower bound on the newest record
    th = Thresholds(warning=86400, critical=14 * 86400)
    sample = await probe(check(srv.url, "/endless", mode="lag", max_requests=3, thresholds=th))
    assert sample.status is CheckStatus.UNKNOWN
    assert sample.value is None
    assert sample.reason.startswith("sync lag not known: between 0 s and 7 days")
    assert "stopped after 3 requests (max_requests)" in sample.reason
    assert len(handler.queries) == 4
    calm = await probe(check(srv.url, "/endless", mode="lag", max_pages=2, thresholds=Thresholds(warning=30 * 86400)))
    assert calm.status is CheckStatus.OK  # at most 7 days old: below the warning whatever the rest holds
    assert calm.reason.startswith("newest record changed at most 7 days ago (at 2024-05-03T10:00:00Z or later")


async def test_no_records_match_means_lag_is_the_window(provider: Fixture) -> None:
    srv, _ = provider
    sample = await probe(check(srv.url, "/empty", mode="lag", window_days=10, thresholds=Thresholds(critical=86400)))
    assert sample.value == 10 * 86400
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason.startswith("no record changed in the last 10 days")
    quiet = await probe(check(srv.url, "/empty", mode="lag"))
    assert (quiet.status, quiet.reason) == (CheckStatus.OK, "no record changed in the last 30 days")


async def test_oai_error_reported_verbatim(provider: Fixture) -> None:
    srv, _ = provider
    sample = await probe(check(srv.url, "/bad", mode="lag"))
    assert (sample.status, sample.reason) == (
        CheckStatus.CRITICAL,
        "OAI-PMH error badArgument: Illegal argument 'from'",
    )


async def test_busy_repository_retried_once_when_it_fits(provider: Fixture) -> None:
    srv, handler = provider
    started = time.monotonic()
    sample = await probe(check(srv.url, "/busy", timeout=3.0))
    assert 1.0 <= time.monotonic() - started < 2.5
    assert sample.status is CheckStatus.OK, sample.reason
    assert handler.busy_hits == 1


async def test_busy_repository_too_long_is_unknown(provider: Fixture) -> None:
    srv, _ = provider
    started = time.monotonic()
    sample = await probe(check(srv.url, "/busylong", timeout=2.0))
    assert time.monotonic() - started < 1.0
    assert (sample.status, sample.reason) == (CheckStatus.UNKNOWN, "repository busy, asks to retry after 2 min")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/bomb", "refused unsafe XML (entity declarations)"),
        ("/xxe", "refused unsafe XML (entity declarations)"),
        ("/malformed", "malformed XML in OAI-PMH reply: mismatched tag"),
        ("/html", "not an OAI-PMH reply (root element <html>)"),
    ],
)
async def test_unsafe_or_malformed_xml(provider: Fixture, path: str, reason: str) -> None:
    srv, _ = provider
    started = time.monotonic()
    sample = await probe(check(srv.url, path))
    assert time.monotonic() - started < 1.0
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason.startswith(reason)
    assert "root:" not in sample.reason


async def test_unreachable_and_bad_config() -> None:
    down = await probe(check("http://127.0.0.1:9", "/oai"))
    assert down.status is CheckStatus.CRITICAL and "127.0.0.1:9" in down.reason
    bad = await probe(check("http://127.0.0.1:9", "/oai", mode="harvest"))
    assert bad.status is CheckStatus.UNKNOWN and "mode" in bad.reason
    await close_clients()


def test_helpers() -> None:
    assert parse_datestamp("2024-05-10") == parse_datestamp("2024-05-10T00:00:00Z")
    assert parse_datestamp("yesterday") is None
    assert format_duration(45) == "45 s"
    assert format_duration(9000) == "2 h 30 min"
    assert format_duration(5 * 86400) == "5 days"
