"""The shared wording of reasons: durations, quantities, crossed thresholds, HTTP failures, redaction."""

from __future__ import annotations

import pytest

from bibnet_ops.model import CheckStatus, Thresholds
from bibnet_ops.probes import _reasons as r


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "0.2 s"),
        (2.5, "2.5 s"),
        (10, "10 s"),
        (45, "45 s"),
        (89, "89 s"),
        (90, "2 min"),
        (12 * 60, "12 min"),
        (3 * 3600, "3 h"),
        (3600, "1 h"),
        (75 * 60, "1 h 15 min"),
        (3 * 3600 + 20 * 60, "3 h 20 min"),
        (2 * 86400, "2 days"),
        (2_592_000, "30 days"),
        (-7200, "2 h"),
    ],
)
def test_duration_reads_in_days_hours_minutes(seconds: float, text: str) -> None:
    assert r.duration(seconds) == text


def test_quantity_keeps_short_seconds_and_turns_long_ones_into_durations() -> None:
    assert r.quantity(0.034, "s") == "0.034 s"
    assert r.quantity(259_200, "s") == "3 days"
    assert r.quantity(10, "days") == "10 days"
    assert r.quantity(1, "days") == "1 day"
    assert r.quantity(85.25, "%") == "85.2 %"
    assert r.quantity(120, "pages/h") == "120 pages/h"
    assert r.quantity(7) == "7"


def test_judge_names_the_crossed_threshold_in_the_value_unit() -> None:
    tls = Thresholds(warning=21, critical=7, direction="below")
    assert r.judge(tls, 10, "TLS certificate expires in", "days") == (
        CheckStatus.WARNING,
        "TLS certificate expires in 10 days (warning below 21 days)",
    )
    assert r.judge(tls, 3, "TLS certificate expires in", "days")[1].endswith("(critical below 7 days)")
    assert r.judge(tls, 30, "TLS certificate expires in", "days") == (
        CheckStatus.OK,
        "TLS certificate expires in 30 days",
    )
    lag = Thresholds(warning=259_200, critical=1_209_600)
    status, text = r.judge(lag, 2_592_000, "lag", "s")
    assert (status, text) == (CheckStatus.CRITICAL, "lag 30 days (critical above 14 days)")
    assert "2592000" not in text


def test_crossed_is_empty_when_ok_or_without_bound() -> None:
    assert r.crossed(Thresholds(warning=1), CheckStatus.OK) == ""
    assert r.crossed(Thresholds(), CheckStatus.CRITICAL) == ""
    assert r.crossed(Thresholds(critical=8), CheckStatus.CRITICAL, "s") == "(critical above 8 s)"


def test_http_failure_quotes_method_path_and_first_body_line() -> None:
    text = r.http_failure(
        "get", "http://10.31.0.5/cgi-bin/koha/oai.pl?verb=Identify", 404, "Not Found", b"OAI-PMH service is disabled\n"
    )
    assert text == "GET /cgi-bin/koha/oai.pl: HTTP 404 — OAI-PMH service is disabled"


def test_http_failure_reads_an_html_error_page_by_its_title_without_repeating_the_code() -> None:
    nginx = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1>"
    assert r.http_failure("GET", "/", 502, "Bad Gateway", nginx, "text/html") == "GET /: HTTP 502 — Bad Gateway"


def test_http_failure_falls_back_to_the_reason_phrase_and_names_unusual_expectations() -> None:
    assert r.http_failure("HEAD", "/x", 503, "Service Unavailable", b"", expected=[200, 301]) == (
        "HEAD /x: HTTP 503 — Service Unavailable (expected 200 or 301)"
    )
    assert r.http_failure("GET", "/x", 500, "", b"   ") == "GET /x: HTTP 500"


def test_first_line_skips_markup_scripts_and_control_characters() -> None:
    page = b"<!DOCTYPE html><html><head><script>var a=1;</script></head><body>\n\n<p>Catalogue &amp; \x07 search</p>"
    assert r.first_line(page) == "Catalogue & search"
    assert r.first_line(b'\n\n  {"error": "down"}\nmore') == '{"error": "down"}'
    assert r.first_line(b"x" * 500, limit=20) == "x" * 19 + "…"
    assert r.first_line(b"") == ""


def test_redaction_hides_credentials_but_keeps_oai_paging() -> None:
    assert r.redact_url("https://admin:s3cret@h/api?apikey=abc&q=1") == "https://***@h/api?apikey=***&q=1"
    assert r.redact_url("http://h/oai?verb=ListIdentifiers&resumptionToken=xyz") == (
        "http://h/oai?verb=ListIdentifiers&resumptionToken=xyz"
    )
    assert r.request_target("http://h/p?token=t&x=1", query=True) == "/p?token=***&x=1"
    assert r.is_secret_name("Authorization") and r.is_secret_name("Set-Cookie") and r.is_secret_name("X-Api-Key")
    assert not r.is_secret_name("WWW-Authenticate") and not r.is_secret_name("Content-Type")


def test_plural() -> None:
    assert r.plural(1, "page") == "1 page"
    assert r.plural(3, "page") == "3 pages"
    assert r.plural(2, "entry", "entries") == "2 entries"
