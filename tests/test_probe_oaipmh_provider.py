"""The sync-lag check against a real OAI-PMH provider library (pyoai's server) of 10 to 100,000 records.

Every case starts from a fresh probe state (the first poll after a collector starts) and uses the
shipped `oai-sync` template's thresholds (warning 3 days, critical 14 days, a 30-day window).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from _oai_provider import DAY_GRANULARITY, OaiProvider, Repository, serve

from bibnet_ops.model import CheckSpec, CheckStatus, Thresholds
from bibnet_ops.probes._httpclient import close_clients
from bibnet_ops.probes.oaipmh import forget_repositories, probe

HOUR = 3600.0
DAY = 86400.0
SHIPPED = Thresholds(warning=3 * DAY, critical=14 * DAY)


@pytest.fixture(autouse=True)
async def fresh() -> AsyncIterator[None]:
    forget_repositories()
    yield
    await close_clients()


@pytest.fixture
def provider_for() -> Iterator[list[OaiProvider]]:
    started: list[OaiProvider] = []
    yield started


def lag_check(url: str, *, thresholds: Thresholds = SHIPPED, **params: object) -> CheckSpec:
    return CheckSpec(
        site_id="bplp-13",
        device_id="catalogue",
        name="sync-lag",
        probe="oaipmh",
        address=url,
        params={"mode": "lag", "path": "/cgi-bin/koha/oai.pl", "window_days": 30, **params},
        timeout=30.0,
        thresholds=thresholds,
    )


@pytest.mark.parametrize("count", [10, 5_000, 100_000])
@pytest.mark.parametrize(
    ("lag", "status"),
    [
        (5 * 60, CheckStatus.OK),
        (3 * HOUR, CheckStatus.OK),
        (4 * DAY, CheckStatus.WARNING),
        (20 * DAY, CheckStatus.CRITICAL),
    ],
)
async def test_lag_is_exact_on_the_first_poll_whatever_the_size(count: int, lag: float, status: CheckStatus) -> None:
    repo = Repository.generate(count, lag=lag, now=time.time())
    with serve(OaiProvider(repo)) as provider:
        sample = await probe(lag_check(provider.url))
        requests = len(provider.list_requests())
    assert sample.status is status, sample.reason
    assert sample.value is not None and lag <= sample.value < lag + 30, sample.reason
    assert sample.reason.startswith("newest record changed ")
    assert requests <= 20 and sample.values["requests"] == requests
    if status is CheckStatus.WARNING:
        assert sample.reason.endswith("(warning above 3 days)")
    if status is CheckStatus.CRITICAL:
        assert sample.reason.endswith("(critical above 14 days)")


async def test_thousands_of_recent_records_do_not_look_like_an_old_newest_record() -> None:
    # the false CRITICAL of issue 12: thousands of records in the window, the newest 3 hours old
    repo = Repository.generate(5_000, lag=3 * HOUR, now=time.time(), recent=1.0, recent_span=27 * DAY)
    with serve(OaiProvider(repo, page_size=50)) as provider:
        sample = await probe(lag_check(provider.url))
    assert sample.status is CheckStatus.OK, sample.reason
    assert sample.reason.startswith("newest record changed 3 h ago at ")


async def test_a_bulk_import_of_100000_records_within_hours() -> None:
    repo = Repository.generate(100_000, lag=20 * 60, now=time.time(), recent=1.0, recent_span=2 * HOUR)
    with serve(OaiProvider(repo)) as provider:
        sample = await probe(lag_check(provider.url))
        requests = len(provider.list_requests())
    assert sample.status is CheckStatus.OK and sample.value is not None
    assert 20 * 60 <= sample.value < 20 * 60 + 30
    assert requests <= 20


async def test_second_poll_costs_one_short_request() -> None:
    repo = Repository.generate(100_000, lag=2 * HOUR, now=time.time())
    with serve(OaiProvider(repo)) as provider:
        check = lag_check(provider.url)
        first = await probe(check)
        provider.queries.clear()
        second = await probe(check)
        assert [q.get("verb") for q in provider.queries] == ["ListIdentifiers"]
    assert first.values["newest_datestamp"] == second.values["newest_datestamp"]


async def test_nothing_changed_in_the_window_is_a_proven_critical() -> None:
    repo = Repository.generate(100_000, lag=45 * DAY, now=time.time())
    with serve(OaiProvider(repo)) as provider:
        sample = await probe(lag_check(provider.url))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == "no record changed in the last 30 days (critical above 14 days)"
    assert "2592000" not in sample.reason


async def test_a_search_cut_short_by_max_requests_raises_no_alert() -> None:
    repo = Repository.generate(100_000, lag=3 * HOUR, now=time.time(), recent=1.0, recent_span=20 * DAY)
    with serve(OaiProvider(repo, page_size=10)) as provider:
        # nothing in the last hour, records in the last 8: the lag is between 1 h and 8 h, no more is known
        tight = Thresholds(warning=4 * HOUR, critical=DAY)
        sample = await probe(lag_check(provider.url, max_requests=2, thresholds=tight))
        assert len(provider.list_requests()) == 2
        # what is proven still counts: a lag of at least 1 h is past a 30 min warning
        proven = await probe(lag_check(provider.url, max_requests=2, thresholds=Thresholds(warning=1800)))
    assert sample.status is CheckStatus.UNKNOWN and sample.value is None
    assert sample.reason.startswith("sync lag not known: between 1 h and 7 h ")
    assert "— newest record changed at most 7 h " in sample.reason
    assert "stopped after 2 requests (max_requests)" in sample.reason
    assert proven.status is CheckStatus.WARNING and proven.reason.endswith("(warning above 30 min)")


async def test_day_granularity_and_a_provider_that_refuses_times() -> None:
    now = time.time()
    repo = Repository.generate(5_000, lag=5 * DAY, now=now, granularity=DAY_GRANULARITY)
    with serve(OaiProvider(repo, strict_day=True)) as provider:
        sample = await probe(lag_check(provider.url))
        froms = [q.get("from", "") for q in provider.list_requests()]
    assert all("T" not in f for f in froms), froms  # Identify said days: never asked with a time
    assert sample.status is CheckStatus.WARNING, sample.reason
    assert sample.reason.startswith("newest record dated ")
    # the record's date covers a whole day, so the range's rounded ends depend on the hour the test runs at
    assert re.search(r"changed [45] days to [56] days ago", sample.reason), sample.reason
    assert sample.value is not None and 4 * DAY <= sample.value <= 5 * DAY


async def test_a_time_refused_with_bad_argument_is_asked_again_by_date() -> None:
    repo = Repository.generate(500, lag=2 * DAY, now=time.time(), granularity=DAY_GRANULARITY)
    repo.granularity = "YYYY-MM-DDThh:mm:ssZ"  # claims seconds, refuses them
    with serve(OaiProvider(repo, strict_day=True)) as provider:
        sample = await probe(lag_check(provider.url))
        froms = [q.get("from", "") for q in provider.list_requests()]
    assert "T" in froms[0] and all("T" not in f for f in froms[1:])
    assert sample.status is CheckStatus.OK, sample.reason
    assert sample.reason.startswith("newest record dated ")
    with serve(OaiProvider(repo, strict_day=True)) as provider:
        await probe(lag_check(provider.url))  # a new port: a new repository URL, identified again
        provider.queries.clear()
        again = await probe(lag_check(provider.url))
        assert all("T" not in q.get("from", "") for q in provider.list_requests())  # by date from now on
    assert again.status is CheckStatus.OK


async def test_a_deleted_newest_record_counts_as_a_change() -> None:
    repo = Repository.generate(1_000, lag=HOUR, now=time.time())
    repo.deleted.add(len(repo.stamps) - 1)
    with serve(OaiProvider(repo)) as provider:
        sample = await probe(lag_check(provider.url))
    assert sample.status is CheckStatus.OK
    assert sample.reason.startswith("newest change (a deleted record) changed 1 h ago")


async def test_an_empty_window_proves_a_lag_of_at_least_the_window() -> None:
    now = time.time()
    repo = Repository.generate(10, lag=10 * DAY, now=now, recent=1.0, recent_span=2 * DAY)
    with serve(OaiProvider(repo)) as provider:
        sample = await probe(lag_check(provider.url, window_days=5))
        identify = await probe(lag_check(provider.url, mode="identify"))
    assert sample.status is CheckStatus.WARNING
    assert sample.reason == "no record changed in the last 5 days (warning above 3 days)"
    assert identify.status is CheckStatus.OK and identify.reason.startswith("Bibliothèque de test (pyoai): granularity")


async def test_disabled_oai_service_quotes_the_server() -> None:
    repo = Repository.generate(10, lag=HOUR, now=time.time())
    provider = OaiProvider(repo)
    provider.disabled = True
    with serve(provider):
        sample = await probe(lag_check(provider.url))
    assert sample.status is CheckStatus.CRITICAL
    assert sample.reason == "GET /cgi-bin/koha/oai.pl: HTTP 404 — OAI-PMH service is disabled"
    assert "verb=Identify -> HTTP 404" in sample.evidence
