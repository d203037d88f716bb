"""A Koha-like OAI-PMH 2.0 provider over a CatalogueState (Identify, List*, GetRecord, resumptionToken)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from bibnet_ops.sim._state import CatalogueState

__all__ = ["PAGE_SIZE", "oai_response"]

PAGE_SIZE = 50
_FORMATS = ("oai_dc", "marc21", "marcxml")
_ARGS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str, end: bool) -> float:
    """An OAI datestamp (day or seconds granularity) as epoch seconds; raises ValueError."""
    if len(text) == 10:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        return day + (86399.999 if end else 0.0)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() + (
        0.999 if end else 0.0)


def _wrap(now: float, request: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ '
        'http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
        f"<responseDate>{_stamp(now)}</responseDate>\n{request}\n{body}\n</OAI-PMH>\n"
    )


def _error(code: str, message: str) -> str:
    return f'<error code="{code}">{escape(message)}</error>'


def _header(site: str, state: CatalogueState, index: int) -> str:
    biblio, stamp, *_ = state.record(index)
    return (f"<header><identifier>oai:{site}:{biblio}</identifier>"
            f"<datestamp>{_stamp(stamp)}</datestamp></header>")


def _record(site: str, state: CatalogueState, index: int) -> str:
    biblio, _, title, author, year = state.record(index)
    dc = (
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(author)}</dc:creator>"
        f"<dc:date>{year}</dc:date><dc:identifier>{biblio}</dc:identifier></oai_dc:dc>"
    )
    return f"<record>{_header(site, state, index)}<metadata>{dc}</metadata></record>"


def _list(verb: str, args: dict[str, str], site: str, state: CatalogueState, now: float) -> str:
    if "resumptionToken" in args:
        try:
            offset_s, since_s, until_s, prefix = args["resumptionToken"].split("!")
            offset = int(offset_s)
            since = float(since_s) if since_s else None
            until = float(until_s) if until_s else None
        except ValueError:
            return _error("badResumptionToken", "the resumptionToken is invalid or expired")
    else:
        prefix = args["metadataPrefix"]
        offset = 0
        try:
            since = _parse_stamp(args["from"], end=False) if "from" in args else None
            until = _parse_stamp(args["until"], end=True) if "until" in args else None
        except ValueError:
            return _error("badArgument", "from/until must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")
        # A token fixes `until` so later pages don't shift as records are added.
        until = until if until is not None else now
    if prefix not in _FORMATS:
        return _error("cannotDisseminateFormat", f"metadataPrefix {prefix} is not supported")
    if "set" in args:
        return _error("noSetHierarchy", "this repository does not support sets")
    lo, hi = state.select(now, since, until)
    total = hi - lo
    start = lo + offset
    if total == 0 or start >= hi:
        return _error("noRecordsMatch", "no records match the request")
    end = min(hi, start + PAGE_SIZE)
    item = _header if verb == "ListIdentifiers" else _record
    items = "".join(item(site, state, i) for i in range(start, end))
    if end < hi:
        token = f"{offset + PAGE_SIZE}!{since if since is not None else ''}!{until}!{prefix}"
        items += (f'<resumptionToken completeListSize="{total}" cursor="{offset}">'
                  f"{escape(token)}</resumptionToken>")
    elif offset:
        items += f'<resumptionToken completeListSize="{total}" cursor="{offset}"/>'
    return f"<{verb}>{items}</{verb}>"


def oai_response(args: dict[str, str], site: str, base_url: str, state: CatalogueState,
                 name: str, now: float | None = None) -> str:
    """The XML answer to one OAI-PMH request with query arguments `args`."""
    now = time.time() if now is None else now
    verb = args.get("verb", "")
    attrs = "".join(f' {k}="{escape(v, {chr(34): "&quot;"})}"' for k, v in sorted(args.items()))
    request = f"<request{attrs}>{escape(base_url)}</request>"
    if verb not in _ARGS:
        return _wrap(now, f"<request>{escape(base_url)}</request>", _error("badVerb", "illegal OAI verb"))
    required, optional = _ARGS[verb]
    given = set(args) - {"verb"}
    exclusive = "resumptionToken" in given
    if (exclusive and given != {"resumptionToken"}) or (not exclusive and (
            not required <= given or given - required - optional)):
        return _wrap(now, request, _error("badArgument", "missing or illegal arguments"))
    if verb == "Identify":
        body = (
            f"<Identify><repositoryName>{escape(name)}</repositoryName>"
            f"<baseURL>{escape(base_url)}</baseURL><protocolVersion>2.0</protocolVersion>"
            f"<adminEmail>koha@{escape(site)}.bibnet.dz</adminEmail>"
            f"<earliestDatestamp>{_stamp(state.earliest())}</earliestDatestamp>"
            "<deletedRecord>persistent</deletedRecord><granularity>YYYY-MM-DDThh:mm:ssZ</granularity>"
            "<description><toolkit xmlns=\"http://oai.dlib.vt.edu/OAI/metadata/toolkit\">"
            "<title>Koha</title><version>23.11.05</version></toolkit></description></Identify>"
        )
    elif verb == "ListMetadataFormats":
        body = "<ListMetadataFormats>" + "".join(
            f"<metadataFormat><metadataPrefix>{p}</metadataPrefix>"
            f"<schema>http://www.openarchives.org/OAI/2.0/{p}.xsd</schema>"
            f"<metadataNamespace>http://www.openarchives.org/OAI/2.0/{p}/</metadataNamespace>"
            "</metadataFormat>" for p in _FORMATS) + "</ListMetadataFormats>"
    elif verb == "ListSets":
        body = _error("noSetHierarchy", "this repository does not support sets")
    elif verb == "GetRecord":
        body = _get_record(args, site, state, now)
    else:
        body = _list(verb, args, site, state, now)
    return _wrap(now, request, body)


def _get_record(args: dict[str, str], site: str, state: CatalogueState, now: float) -> str:
    if args["metadataPrefix"] not in _FORMATS:
        return _error("cannotDisseminateFormat", "unsupported metadataPrefix")
    prefix = f"oai:{site}:"
    ident = args["identifier"]
    try:
        index = int(ident.removeprefix(prefix)) - CatalogueState.FIRST_BIBLIO
    except ValueError:
        index = -1
    if not ident.startswith(prefix) or not 0 <= index < state.count(now):
        return _error("idDoesNotExist", f"no record {ident}")
    return f"<GetRecord>{_record(site, state, index)}</GetRecord>"
