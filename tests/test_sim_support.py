"""Shared helpers for the simulator tests: a small SNMP manager on pysnmp's hlapi."""

from __future__ import annotations

from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)

__all__ = ["community", "snmp_bulk", "snmp_get", "v3_user"]


def v3_user(user: str, auth: str | None = None, priv: str | None = None) -> UsmUserData:
    if auth and priv:
        return UsmUserData(user, auth, priv, authProtocol=usmHMACSHAAuthProtocol,
                           privProtocol=usmAesCfb128Protocol)
    return UsmUserData(user)


async def snmp_get(address: str, oids: list[str], auth: Any, timeout: float = 1.0) -> dict[str, Any] | str:
    """GET `oids`; returns {oid: value} or the error indication as text."""
    host, port = address.rsplit(":", 1)
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((host, int(port)), timeout=timeout, retries=0)
        err, status, _, binds = await get_cmd(engine, auth, target, ContextData(),
                                              *(ObjectType(ObjectIdentity(o)) for o in oids))
        if err:
            return str(err)
        if status:
            return str(status)
        return {str(name): value for name, value in binds}
    finally:
        engine.close_dispatcher()


async def snmp_bulk(address: str, oid: str, auth: Any, count: int = 10) -> list[tuple[str, Any]] | str:
    host, port = address.rsplit(":", 1)
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((host, int(port)), timeout=1.0, retries=0)
        err, status, _, binds = await bulk_cmd(engine, auth, target, ContextData(), 0, count,
                                               ObjectType(ObjectIdentity(oid)))
        if err or status:
            return str(err or status)
        return [(str(name), value) for name, value in binds]
    finally:
        engine.close_dispatcher()


def community(value: str) -> CommunityData:
    return CommunityData(value)
