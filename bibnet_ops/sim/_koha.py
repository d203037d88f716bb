"""What a simulated site's Koha server answers: OPAC page, REST API, SRU explain, health, OAI-PMH."""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from bibnet_ops.model import Site
from bibnet_ops.sim._http import Request, Response
from bibnet_ops.sim._oai import oai_response
from bibnet_ops.sim._state import CatalogueState

__all__ = ["KohaSite"]

OPAC_PATH = "/cgi-bin/koha/opac-main.pl"
OAI_PATH = "/cgi-bin/koha/oai.pl"
LIBRARIES_PATH = "/api/v1/public/libraries"
SRU_PATH = "/biblios"
HEALTH_PATH = "/health"
KOHA_VERSION = "23.11.05.000"

_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_XML = "text/xml; charset=utf-8"


class KohaSite:
    """Request handler for one site's catalogue server; `base_url` is set once the port is known."""

    def __init__(self, site: Site, catalogue: CatalogueState, boot_time: float,
                 serve_opac: bool = True, serve_oai: bool = True) -> None:
        self.site = site
        self.catalogue = catalogue
        self.boot_time = boot_time
        self.serve_opac = serve_opac
        self.serve_oai = serve_oai
        self.base_url = ""

    def __call__(self, request: Request, garbage: bool) -> Response:
        response = self.answer(request)
        if garbage and response.status < 400:
            return Response(200, _junk(response.content_type), response.content_type)
        return response

    def answer(self, request: Request) -> Response:
        """The well-behaved reply to `request`."""
        path = request.path.rstrip("/") or "/"
        now = time.time()
        if request.method not in ("GET", "HEAD", "POST"):
            return Response(405, b"method not allowed\n", headers={"Allow": "GET, HEAD, POST"})
        if path == OAI_PATH and self.serve_oai:
            args = dict(request.query)
            if request.method == "POST":
                args.update(parse_qsl(request.body.decode("utf-8", "replace")))
            xml = oai_response(args, self.site.id, self.base_url + OAI_PATH, self.catalogue,
                               self.site.name_fr, now)
            return Response(200, xml.encode(), _XML)
        if not self.serve_opac:
            return Response(404, b"not found\n")
        if path == HEALTH_PATH:
            return Response(200, json.dumps(self.health(now)).encode(), _JSON)
        if path in ("/", OPAC_PATH):
            return Response(200, self.opac().encode(), _HTML)
        if path == LIBRARIES_PATH:
            return Response(200, json.dumps(self.libraries(), ensure_ascii=False).encode(), _JSON)
        if path == SRU_PATH:
            return self.sru(request.query, now)
        return Response(404, b"<html><body><h1>Not Found</h1></body></html>", _HTML)

    def health(self, now: float) -> dict[str, object]:
        return {
            "status": "ok",
            "site": self.site.id,
            "koha_version": KOHA_VERSION,
            "uptime_s": int(max(0.0, now - self.boot_time)),
            "database": "ok",
            "zebra": "ok",
            "records": self.catalogue.count(now),
        }

    def opac(self) -> str:
        name = escape(self.site.name_fr)
        return (
            "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
            f"<title>{name} catalogue › Accueil</title>"
            f'<meta name="generator" content="Koha {KOHA_VERSION}"></head>'
            f'<body id="opac-main"><h1 id="libraryname">{name}</h1>'
            f'<p dir="rtl">{escape(self.site.name_ar)}</p>'
            '<form action="/cgi-bin/koha/opac-search.pl"><input name="q"></form>'
            "<footer>Powered by Koha</footer></body></html>\n"
        )

    def libraries(self) -> list[dict[str, object]]:
        return [{
            "library_id": self.site.id.upper().replace("-", ""),
            "name": self.site.name_fr,
            "address1": self.site.name_ar,
            "country": "Algérie",
            "geolocation": f"{self.site.lat},{self.site.lon}",
            "pickup_location": True,
            "public": True,
        }]

    def sru(self, query: dict[str, str], now: float) -> Response:
        operation = query.get("operation", "explain")
        ns = 'xmlns:zs="http://www.loc.gov/zing/srw/"'
        if operation == "searchRetrieve":
            body = (f"<zs:searchRetrieveResponse {ns}><zs:version>1.1</zs:version>"
                    f"<zs:numberOfRecords>{self.catalogue.count(now)}</zs:numberOfRecords>"
                    "</zs:searchRetrieveResponse>")
        elif operation == "explain":
            host, _, port = self.base_url.split("//", 1)[-1].partition(":")
            body = (
                f"<zs:explainResponse {ns}><zs:version>1.1</zs:version><zs:record>"
                "<zs:recordSchema>http://explain.z3950.org/dtd/2.0/</zs:recordSchema>"
                "<zs:recordPacking>xml</zs:recordPacking><zs:recordData>"
                '<explain xmlns="http://explain.z3950.org/dtd/2.0/"><serverInfo protocol="SRU">'
                f"<host>{escape(host)}</host><port>{escape(port)}</port><database>biblios</database>"
                f"</serverInfo><databaseInfo><title>{escape(self.site.name_fr)}</title>"
                "</databaseInfo></explain></zs:recordData></zs:record></zs:explainResponse>"
            )
        else:
            body = (f"<zs:searchRetrieveResponse {ns}><zs:diagnostics><diagnostic>"
                    "<uri>info:srw/diagnostic/1/4</uri><message>Unsupported operation</message>"
                    "</diagnostic></zs:diagnostics></zs:searchRetrieveResponse>")
        return Response(200, ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode(), _XML)


def _junk(content_type: str) -> bytes:
    """A body that looks like a broken server's: truncated XML/JSON or binary noise."""
    noise = os.urandom(24).hex().encode()
    if "xml" in content_type:
        return b'<?xml version="1.0"?><OAI-PMH><responseDate>2\x00' + noise + b"<ListRec"
    if "json" in content_type:
        return b'{"status": "o' + noise
    return b"\x1f\x8b\x08\x00" + os.urandom(64)
