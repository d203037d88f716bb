"""Fuzz the http and oaipmh probes with generated malformed replies served by one real loopback server.

Whatever a device sends, a probe must return a Sample (never raise), within its timeout, with a reason.
Probes are called directly, not through `run_probe`, so that any escaping exception fails the test.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback_http import LoopbackServer, Request

from bibnet_ops.model import CheckSpec, CheckStatus, Sample, Thresholds
from bibnet_ops.probes import http as http_probe
from bibnet_ops.probes import oaipmh as oai_probe
from bibnet_ops.probes._httpclient import close_clients

TIMEOUT = 1.0
FUZZ = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Rig:
    """One event loop and one loopback server whose raw reply is set per example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.payload = b""
        self.abort = False
        self.server = LoopbackServer(self._handler)
        self.loop.run_until_complete(self.server.start())

    async def _handler(self, request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(self.payload)
        await writer.drain()
        if self.abort:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    def run(self, spec: CheckSpec, payload: bytes, abort: bool) -> Sample:
        self.payload, self.abort = payload, abort
        func = http_probe.probe if spec.probe == "http" else oai_probe.probe
        started = time.monotonic()
        sample = self.loop.run_until_complete(func(spec))
        assert time.monotonic() - started < TIMEOUT + 0.5
        return sample

    def close(self) -> None:
        self.loop.run_until_complete(close_clients())
        self.loop.run_until_complete(self.server.stop())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.close()


def assert_well_formed(sample: Sample, spec: CheckSpec) -> None:
    assert isinstance(sample, Sample)
    assert sample.check_id == spec.id
    assert isinstance(sample.status, CheckStatus)
    assert sample.time > 0
    if sample.status is not CheckStatus.OK:
        assert sample.reason.strip()
    # the catch-all wording means a failure mode nobody translated for the technician
    assert " failed: " not in sample.reason, sample.reason
    assert len(sample.reason) <= 200


# --- HTTP replies ----------------------------------------------------------------------------------

_HEADER_NAMES = [
    b"Content-Length",
    b"Transfer-Encoding",
    b"Content-Type",
    b"Content-Encoding",
    b"Location",
    b"Retry-After",
    b"Connection",
    b"Set-Cookie",
]
_HEADER_VALUES = [
    b"chunked",
    b"gzip",
    b"deflate",
    b"br",
    b"zstd",
    b"identity, gzip",
    b"-1",
    b"99999999999999999999",
    b"0",
    b"application/json; charset=klingon",
    b"text/xml; charset=utf-16",
    b"text/html; charset=",
    b"close",
    b"keep-alive",
    b"chunked, chunked",
    b"\xff\xfe",
    b" ",
    b"http://203.0.113.7/x",
]

status_lines = st.one_of(
    st.builds(
        lambda version, code, reason: b"%s %d %s" % (version, code, reason.encode("utf-8", "replace")),
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/0.9", b"HTTP/1.1 "]),
        st.integers(0, 1000),
        st.text(max_size=20),
    ),
    st.binary(max_size=40),
    st.sampled_from([b"HTTP/1.1 200", b"ICY 200 OK", b"", b"HTTP/1.1 200 OK\n", b"200 OK"]),
)
header_values = st.one_of(
    st.sampled_from(_HEADER_VALUES),
    st.binary(max_size=30),
    st.integers(-5, 10**6).map(lambda i: str(i).encode()),
)
headers = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(_HEADER_NAMES), header_values),
        st.tuples(st.binary(max_size=15), st.binary(max_size=30)),
    ),
    max_size=6,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=15,
)
bodies = st.one_of(
    st.binary(max_size=3000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"0\r\n\r\n", b"zz\r\nabc\r\n", b"5\r\nab", b"\x1f\x8b\x08\x00garbage", b"[" * 5000]),
)


@st.composite
def raw_replies(draw: st.DrawFn) -> bytes:
    line = draw(status_lines)
    head = b"".join(
        name + draw(st.sampled_from([b": ", b":", b" : ", b"\n"])) + value + b"\r\n" for name, value in draw(headers)
    )
    sep = draw(st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n", b""]))
    return line + b"\r\n" + head + sep + draw(bodies)


http_params = st.fixed_dictionaries(
    {},
    optional={
        "body_contains": st.text(max_size=5),
        "body_regex": st.sampled_from([r"Koha", r"\d+", r"^$", r"(a|b)*c"]),
        "json_field": st.sampled_from(["a", "0", "a.0.b", "status", "", "0.0.0"]),
        "json_equals": st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
        "json_min_items": st.integers(0, 3),
        "json_metric": st.booleans(),
        "expect_status": st.lists(st.integers(100, 599), min_size=1, max_size=3),
        "max_body": st.integers(1, 5000),
        "tls_expiry": st.booleans(),
        "method": st.sampled_from(["GET", "HEAD", "POST"]),
    },
)


@FUZZ
@given(payload=raw_replies(), abort=st.booleans(), params=http_params)
def test_http_probe_survives_any_reply(rig: Rig, payload: bytes, abort: bool, params: dict[str, Any]) -> None:
    spec = CheckSpec(
        "fuzz",
        "dev",
        "web",
        "http",
        rig.server.url,
        params=params,
        timeout=TIMEOUT,
        thresholds=Thresholds(warning=0.5, critical=0.9),
    )
    assert_well_formed(rig.run(spec, payload, abort), spec)


# --- OAI-PMH replies -------------------------------------------------------------------------------

xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(escape)
datestamps = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.dates().map(str),
    xml_text,
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "0001-01-01",
            "2024-02-30",
            "2024-05-10T25:00:00Z",
            "2024-05-10T12:00:00+14:00",
            "",
            "2024-05-10T12:00:00.123456Z",
        ]
    ),
)
granularities = st.sampled_from(["YYYY-MM-DD", "YYYY-MM-DDThh:mm:ssZ", "", "hourly"]) | xml_text


@st.composite
def oai_documents(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["Identify", "ListIdentifiers", "error", "empty", "other"]))
    if kind == "Identify":
        inner = (
            f"<Identify><repositoryName>{draw(xml_text)}</repositoryName>"
            f"<earliestDatestamp>{draw(datestamps)}</earliestDatestamp>"
            f"<granularity>{draw(granularities)}</granularity></Identify>"
        )
    elif kind == "ListIdentifiers":
        items = "".join(
            f"<header><identifier>{draw(xml_text)}</identifier><datestamp>{stamp}</datestamp></header>"
            for stamp in draw(st.lists(datestamps, max_size=4))
        )
        token = draw(st.sampled_from(["", "next", "1"]) | xml_text)
        inner = f"<ListIdentifiers>{items}<resumptionToken>{token}</resumptionToken></ListIdentifiers>"
    elif kind == "error":
        codes = st.sampled_from(["badArgument", "noRecordsMatch", "badVerb", "cannotDisseminateFormat"])
        inner = "".join(
            f'<error code="{code}">{draw(xml_text)}</error>' for code in draw(st.lists(codes | xml_text, max_size=3))
        )
    else:
        inner = draw(xml_text)
    namespace = draw(st.sampled_from(["http://www.openarchives.org/OAI/2.0/", "urn:other", ""]))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="{namespace}">'
        f"<responseDate>{draw(datestamps)}</responseDate>{inner}</OAI-PMH>"
    )


_DOCTYPES = [
    '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">',
    '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
]


@st.composite
def oai_bodies(draw: st.DrawFn) -> bytes:
    doc = draw(oai_documents())
    mutation = draw(st.sampled_from(["none", "truncate", "doctype", "inject", "encode"]))
    if mutation == "truncate":
        doc = doc[: draw(st.integers(0, len(doc)))]
    elif mutation == "doctype":
        doc = doc.replace("?>", "?>" + draw(st.sampled_from(_DOCTYPES)), 1)
    elif mutation == "inject":
        at = draw(st.integers(0, len(doc)))
        doc = doc[:at] + draw(st.sampled_from(["&x;", "<", "]]>", "\x00", "&#0;", "<a:b>", "&#x110000;"])) + doc[at:]
    data = doc.encode("utf-8", "surrogatepass")
    if mutation == "encode":
        data = data.decode().encode("utf-16")
    return data


@st.composite
def oai_replies(draw: st.DrawFn) -> bytes:
    body = draw(oai_bodies())
    status = draw(st.sampled_from([b"200 OK"] * 6 + [b"503 Service Unavailable", b"500 Oops", b"302 Found"]))
    extra = draw(st.sampled_from([b"", b"Retry-After: 0\r\n", b"Retry-After: 3600\r\n", b"Retry-After: soon\r\n"]))
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: text/xml\r\nConnection: close\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


@FUZZ
@given(payload=oai_replies(), mode=st.sampled_from(["identify", "lag"]), window=st.integers(1, 400))
def test_oaipmh_probe_survives_any_reply(rig: Rig, payload: bytes, mode: str, window: int) -> None:
    params = {"path": "/oai", "mode": mode, "window_days": window, "max_pages": 2}
    spec = CheckSpec(
        "fuzz",
        "dev",
        "oai",
        "oaipmh",
        rig.server.url,
        params=params,
        timeout=TIMEOUT,
        thresholds=Thresholds(warning=3600, critical=86400),
    )
    assert_well_formed(rig.run(spec, payload, False), spec)
