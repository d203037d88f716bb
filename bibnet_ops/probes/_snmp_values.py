"""Plain SNMP values for the snmp probe: targets, credentials, replies and the error a check reports.

Nothing here talks to the network: `convert` turns a pysnmp value into an `SnmpValue` (a type name and
a Python value), `SnmpError` carries the reason a technician reads, and `Credentials` builds pysnmp's
authentication object. `_snmp_session` does the exchanges and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from bibnet_ops.model import CheckStatus

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData

__all__ = [
    "AUTH_PROTOCOLS",
    "PRIV_PROTOCOLS",
    "Credentials",
    "SnmpError",
    "SnmpValue",
    "Target",
    "convert",
]

# param value -> pysnmp protocol OID name, looked up lazily so a typo fails as a config error
AUTH_PROTOCOLS: dict[str, str] = {
    "none": "usmNoAuthProtocol",
    "MD5": "usmHMACMD5AuthProtocol",
    "SHA": "usmHMACSHAAuthProtocol",
    "SHA224": "usmHMAC128SHA224AuthProtocol",
    "SHA256": "usmHMAC192SHA256AuthProtocol",
    "SHA384": "usmHMAC256SHA384AuthProtocol",
    "SHA512": "usmHMAC384SHA512AuthProtocol",
}
PRIV_PROTOCOLS: dict[str, str] = {
    "none": "usmNoPrivProtocol",
    "DES": "usmDESPrivProtocol",
    "3DES": "usm3DESEDEPrivProtocol",
    "AES": "usmAesCfb128Protocol",
    "AES192": "usmAesCfb192Protocol",
    "AES256": "usmAesCfb256Protocol",
}

_NUMERIC_TYPES = {"Integer", "Integer32", "Counter32", "Counter64", "Gauge32", "Unsigned32", "TimeTicks"}


class SnmpError(Exception):
    """A failed SNMP exchange: `reason` is what the technician reads, `status` what the check becomes.

    `evidence` is what came back, for the sample's evidence (an error status and its OID, odd datagrams).
    """

    def __init__(self, reason: str, status: CheckStatus = CheckStatus.UNKNOWN, evidence: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.evidence = evidence


@dataclass(frozen=True)
class SnmpValue:
    """One varbind's value: its SMI type name and the value as int, str, or None for an exception value."""

    type: str
    value: int | str | None

    @property
    def is_numeric(self) -> bool:
        return self.type in _NUMERIC_TYPES and isinstance(self.value, int)

    @property
    def missing(self) -> bool:
        """True for noSuchObject / noSuchInstance / endOfMibView."""
        return self.value is None


@dataclass(frozen=True)
class Target:
    """Where to send requests: host, UDP port, and the per-request timeout in seconds."""

    host: str
    port: int
    timeout: float

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Credentials:
    """Resolved credentials for one request (held in memory only; `repr` never shows secrets)."""

    version: str = "2c"
    community: str = ""
    user: str = ""
    auth_protocol: str = "SHA"
    auth_key: str = ""
    priv_protocol: str = "AES"
    priv_key: str = ""

    def __repr__(self) -> str:
        who = f"user={self.user!r}" if self.version == "3" else "community=<secret>"
        return f"Credentials(version={self.version!r}, {who})"

    def build(self) -> CommunityData | UsmUserData:
        """Return pysnmp's full-engine authentication object for these credentials (imported on first use)."""
        from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData
        from pysnmp.hlapi.v3arch.asyncio import auth as _auth

        if self.version != "3":
            return CommunityData(self.community, mpModel=1)

        auth_proto = getattr(_auth, AUTH_PROTOCOLS[self.auth_protocol])
        priv_proto = getattr(_auth, PRIV_PROTOCOLS[self.priv_protocol])
        return UsmUserData(
            self.user,
            authKey=self.auth_key or None,
            privKey=self.priv_key or None,
            authProtocol=auth_proto,
            privProtocol=priv_proto,
        )


def convert(value: Any) -> SnmpValue:
    """Turn a pysnmp value into an `SnmpValue` (exception values become value None)."""
    type_name = type(value).__name__
    if isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
        return SnmpValue(_EXCEPTION_NAMES.get(type_name, type_name), None)
    if type_name in _NUMERIC_TYPES:
        return SnmpValue(type_name, int(value))
    if type_name == "OctetString" or hasattr(value, "asOctets"):
        raw = bytes(value.asOctets())
        try:
            return SnmpValue(type_name, raw.decode("utf-8"))
        except UnicodeDecodeError:
            return SnmpValue(type_name, value.prettyPrint())
    return SnmpValue(type_name, value.prettyPrint())


_EXCEPTION_NAMES = {
    "NoSuchObject": "noSuchObject",
    "NoSuchInstance": "noSuchInstance",
    "EndOfMibView": "endOfMibView",
}
