"""A real OAI-PMH data provider for the tests: pyoai's server side over a real loopback HTTP server.

`oaipmh.server.BatchingServer` (PyPI `pyoai`, which nobody on this project wrote) answers every verb,
validates arguments, pages with resumption tokens and words its own errors (noRecordsMatch,
badArgument, badResumptionToken...). Behind it sits `Repository`, which holds any number of records as
one sorted array of datestamps and answers `from`/`until` with a binary search, so 100,000 records cost
a few hundred KiB and a listing costs what one page costs.

Two compatibility notes, both about running a 2015 library on Python 3.11: pyoai still imports `cgi`
(deprecated) and `pkg_resources`, silenced at import; and it decodes resumption tokens with
`cgi.parse_qs`, removed in Python 3.8, so `urllib.parse.parse_qs` (the same function) is put back in its
place. Nothing else of pyoai is changed.

pyoai writes every datestamp with a time of day, even when Identify declares day granularity; a
`day` repository therefore keeps its datestamps at midnight and, like strict day-only providers, answers
badArgument to a `from` with a time when `strict_day` is set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import threading
import types
import urllib.parse
import warnings
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from oaipmh import common, error, metadata, server

server.cgi = types.SimpleNamespace(parse_qs=urllib.parse.parse_qs)  # type: ignore[attr-defined]

__all__ = ["OaiProvider", "Repository", "serve"]

SECOND = "YYYY-MM-DDThh:mm:ssZ"
DAY_GRANULARITY = "YYYY-MM-DD"


def _naive(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def _epoch(moment: dt.datetime) -> float:
    return moment.replace(tzinfo=dt.UTC).timestamp()


@dataclass
class Repository:
    """Records as sorted datestamps (UTC epoch seconds); record i is `oai:bibnet-test:<i>`.

    Implements pyoai's IBatchingOAI interface (identify, listIdentifiers, listRecords, getRecord,
    listMetadataFormats, listSets).
    """

    stamps: array[float]
    name: str = "Bibliothèque de test (pyoai)"
    base_url: str = "http://127.0.0.1/cgi-bin/koha/oai.pl"
    granularity: str = SECOND
    deleted: set[int] = field(default_factory=set)

    @classmethod
    def generate(
        cls,
        count: int,
        *,
        lag: float,
        now: float,
        recent: float = 0.5,
        recent_span: float = 30 * 86400,
        span: float = 5 * 365 * 86400,
        granularity: str = SECOND,
        seed: int = 12,
    ) -> Repository:
        """`count` records whose newest changed `lag` seconds before `now`.

        A share `recent` of the records changed within `recent_span` before the newest (the listing
        window a sync-lag check looks at), the rest within `span` before that.
        """
        rng = random.Random(seed)
        newest = now - lag
        n_recent = max(1, round(count * recent))
        stamps = [newest - rng.uniform(0, recent_span) for _ in range(n_recent - 1)]
        stamps += [newest - recent_span - rng.uniform(0, span) for _ in range(count - n_recent)]
        stamps.append(newest)
        unit = 86400 if granularity == DAY_GRANULARITY else 1
        stamps = [float(s - s % unit) for s in stamps]
        return cls(array("d", sorted(stamps)), granularity=granularity)

    # -- pyoai IBatchingOAI ----------------------------------------------------------------------

    def identify(self) -> common.Identify:
        earliest = _naive(self.stamps[0]) if self.stamps else dt.datetime(2000, 1, 1)
        return common.Identify(
            repositoryName=self.name,
            baseURL=self.base_url,
            protocolVersion="2.0",
            adminEmails=["it@bibnet.test"],
            earliestDatestamp=earliest,
            deletedRecord="persistent",
            granularity=self.granularity,
            compression=["identity"],
            toolkit_description=False,
        )

    def listMetadataFormats(self, identifier: str | None = None) -> list[tuple[str, str, str]]:
        return [
            ("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", "http://www.openarchives.org/OAI/2.0/oai_dc/")
        ]

    def listSets(self, cursor: int = 0, batch_size: int = 10) -> list[Any]:
        raise error.NoSetHierarchyError("this repository does not support sets")

    def _range(self, from_: dt.datetime | None, until: dt.datetime | None) -> tuple[int, int]:
        lo = 0 if from_ is None else bisect_left(self.stamps, _epoch(from_))
        hi = len(self.stamps) if until is None else bisect_right(self.stamps, _epoch(until))
        return lo, max(lo, hi)

    def _header(self, index: int) -> common.Header:
        return common.Header(None, f"oai:bibnet-test:{index}", _naive(self.stamps[index]), [], index in self.deleted)

    def _check_prefix(self, prefix: str) -> None:
        if prefix != "oai_dc":
            raise error.CannotDisseminateFormatError(f"metadataPrefix {prefix} is not supported")

    def listIdentifiers(
        self,
        metadataPrefix: str,
        set: str | None = None,
        from_: dt.datetime | None = None,
        until: dt.datetime | None = None,
        cursor: int = 0,
        batch_size: int = 10,
    ) -> list[common.Header]:
        self._check_prefix(metadataPrefix)
        if set is not None:
            raise error.NoSetHierarchyError("this repository does not support sets")
        lo, hi = self._range(from_, until)
        start = lo + cursor
        return [self._header(i) for i in range(start, min(hi, start + batch_size))]

    def listRecords(
        self,
        metadataPrefix: str,
        set: str | None = None,
        from_: dt.datetime | None = None,
        until: dt.datetime | None = None,
        cursor: int = 0,
        batch_size: int = 10,
    ) -> list[tuple[common.Header, common.Metadata | None, None]]:
        headers = self.listIdentifiers(metadataPrefix, set, from_, until, cursor, batch_size)
        return [(h, None if h.isDeleted() else self._metadata(h), None) for h in headers]

    def getRecord(self, metadataPrefix: str, identifier: str) -> tuple[Any, ...]:
        self._check_prefix(metadataPrefix)
        try:
            index = int(identifier.rsplit(":", 1)[1])
            header = self._header(index)
        except (ValueError, IndexError):
            raise error.IdDoesNotExistError(f"no record {identifier}") from None
        return header, None if header.isDeleted() else self._metadata(header), None

    def _metadata(self, header: common.Header) -> common.Metadata:
        return common.Metadata(None, {"title": [f"Notice {header.identifier()}"], "identifier": [header.identifier()]})


class _Handler(BaseHTTPRequestHandler):
    provider: OaiProvider  # set on the per-server subclass
    protocol_version = "HTTP/1.1"  # keep-alive, as Koha's Apache does

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        body, status = self.provider.answer(parts.path, query)
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class OaiProvider:
    """pyoai's BatchingServer for a Repository, at `path` on a loopback HTTP server (see `serve`)."""

    def __init__(
        self,
        repository: Repository,
        *,
        page_size: int = 50,
        path: str = "/cgi-bin/koha/oai.pl",
        strict_day: bool = False,
    ) -> None:
        self.repository = repository
        self.path = path
        self.strict_day = strict_day
        self.queries: list[dict[str, str]] = []
        self.disabled = False  # answer 404 "OAI-PMH service is disabled", as Koha does when OAI is off
        registry = metadata.MetadataRegistry()
        registry.registerWriter("oai_dc", server.oai_dc_writer)
        self.server = server.BatchingServer(repository, registry, resumption_batch_size=page_size)
        self._lock = threading.Lock()
        self.url = ""

    def answer(self, path: str, query: dict[str, str]) -> tuple[bytes, int]:
        """The reply body and status to a GET of `path?query`."""
        with self._lock:
            self.queries.append(query)
            if self.disabled or path != self.path:
                return b"OAI-PMH service is disabled\n", 404
            if self.strict_day and "T" in query.get("from", ""):
                query = {**query, "from": "not-a-date"}  # pyoai words the badArgument itself
            reply: bytes = self.server.handleRequest(query)
            return reply, 200

    def list_requests(self) -> list[dict[str, str]]:
        """The ListIdentifiers/ListRecords queries received so far."""
        return [q for q in self.queries if q.get("verb", "").startswith("List")]


@contextlib.contextmanager
def serve(provider: OaiProvider) -> Iterator[OaiProvider]:
    """Serve `provider` on 127.0.0.1:<free port> in a thread; `provider.url` is its base URL."""
    handler = type("Handler", (_Handler,), {"provider": provider})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="oai-provider", daemon=True)
    thread.start()
    provider.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    provider.repository.base_url = provider.url + provider.path
    try:
        yield provider
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
