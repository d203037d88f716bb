"""Reading OAI-PMH 2.0 replies safely: defusedxml parsing, protocol errors, Identify, datestamps.

Every parse refuses entity declarations and external references; a reply that is not an OAI-PMH 2.0
document, or that carries `<error>` elements, becomes an `OaiFailure` whose reason a technician can
act on ("OAI-PMH error badArgument: Illegal argument 'from'").
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from bibnet_ops.model import CheckStatus

__all__ = [
    "NS",
    "OAI_NS",
    "OaiError",
    "OaiFailure",
    "identify_info",
    "parse",
    "parse_datestamp",
    "raise_oai_errors",
    "text_of",
]

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
NS = "{" + OAI_NS + "}"


class OaiFailure(Exception):
    """Ends the probe with a given status and reason."""

    def __init__(self, status: CheckStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class OaiError(OaiFailure):
    """The repository answered with OAI-PMH `<error>` elements; `code` is the first one's."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(CheckStatus.CRITICAL, reason)
        self.code = code


def parse(body: bytes) -> Element:
    """Parse untrusted XML, refusing entity declarations and external references.

    Raises:
        OaiFailure: The body is unsafe, malformed or not an OAI-PMH 2.0 document.
    """
    try:
        root: Element = fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except EntitiesForbidden:
        raise OaiFailure(CheckStatus.CRITICAL, "refused unsafe XML (entity declarations)") from None
    except ExternalReferenceForbidden:
        raise OaiFailure(CheckStatus.CRITICAL, "refused unsafe XML (external reference)") from None
    except DefusedXmlException as exc:
        raise OaiFailure(CheckStatus.CRITICAL, f"refused unsafe XML ({type(exc).__name__})") from None
    except ParseError as exc:
        raise OaiFailure(CheckStatus.CRITICAL, f"malformed XML in OAI-PMH reply: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise OaiFailure(CheckStatus.CRITICAL, f"unreadable XML in OAI-PMH reply: {exc}") from None
    if root.tag != NS + "OAI-PMH":
        namespace = str(root.tag)[1:].split("}", 1)[0] if str(root.tag).startswith("{") else ""
        where = f" in namespace {namespace[:40]}" if namespace else ""
        if _local(root.tag) == "OAI-PMH":
            where = where or " without the OAI-PMH 2.0 namespace"
        raise OaiFailure(CheckStatus.CRITICAL, f"not an OAI-PMH reply (root element <{_local(root.tag)}>{where})")
    return root


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1][:40]


def raise_oai_errors(root: Element) -> None:
    """Raise the reply's OAI-PMH errors, quoted verbatim.

    Raises:
        OaiError: The reply holds `<error code="...">` elements.
    """
    errors = root.findall(NS + "error")
    if not errors:
        return
    first = errors[0]
    code = first.get("code", "?")
    text = " ".join((first.text or "").split())
    reason = f"OAI-PMH error {code}: {text}".rstrip(": ")
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    raise OaiError(code, reason)


def text_of(parent: Element, name: str) -> str:
    """Whitespace-normalised text of the child `name` (in the OAI namespace), "" when absent."""
    node = parent.find(NS + name)
    return " ".join((node.text or "").split()) if node is not None else ""


def identify_info(root: Element) -> dict[str, str]:
    """The Identify fields the probe uses.

    Raises:
        OaiFailure: The reply has no `<Identify>` element.
    """
    node = root.find(NS + "Identify")
    if node is None:
        raise OaiFailure(CheckStatus.CRITICAL, "OAI-PMH reply has no <Identify> element")
    fields = ("repositoryName", "granularity", "earliestDatestamp", "protocolVersion", "deletedRecord")
    return {name: text_of(node, name) for name in fields}


def parse_datestamp(text: str) -> float | None:
    """UTC epoch of an OAI-PMH datestamp (`YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`); None if unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    try:
        return stamp.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
