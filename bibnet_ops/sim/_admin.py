"""A tiny JSON admin endpoint so an out-of-process simulator can be steered (tests, benchmarks).

GET /status; GET /faults; POST /faults {"site", "kind", "device"?, "duration"?, ...params} -> {"id"};
DELETE /faults/<id>; POST /faults/clear {"site"?, "kind"?}.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bibnet_ops.sim._faults import FAULT_PARAMS, FaultKind, parse_duration
from bibnet_ops.sim._http import HttpServer, Request, Response

if TYPE_CHECKING:
    from bibnet_ops.sim._simulator import Simulator

__all__ = ["start_admin"]

_JSON = "application/json"


def _reply(status: int, data: Any) -> Response:
    return Response(status, (json.dumps(data, ensure_ascii=False) + "\n").encode(), _JSON)


def _set_fault(sim: Simulator, body: dict[str, Any]) -> Response:
    try:
        kind = FaultKind(body.pop("kind"))
        site = str(body.pop("site"))
        device = body.pop("device", None)
        duration = parse_duration(body.pop("duration")) if body.get("duration") is not None else None
        start = parse_duration(body.pop("start", 0))
        params = {k: parse_duration(v) if k in ("delay", "period", "downtime", "lag") else v
                  for k, v in body.items() if k in FAULT_PARAMS[kind]}
        fault_id = sim.set_fault(site, kind, device=device, duration=duration, start=start, **params)
    except (KeyError, ValueError, TypeError) as exc:
        return _reply(400, {"error": str(exc)})
    return _reply(201, {"id": fault_id})


def handle(sim: Simulator, request: Request) -> Response:
    """Route one admin request."""
    path = request.path.rstrip("/")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _reply(400, {"error": "body must be JSON"})
    if not isinstance(body, dict):
        return _reply(400, {"error": "body must be a JSON object"})
    if request.method == "GET" and path in ("", "/status"):
        return _reply(200, sim.summary())
    if request.method == "GET" and path == "/faults":
        return _reply(200, [af.as_dict() for af in sim.faults.values()])
    if request.method == "GET" and path == "/endpoints":
        return _reply(200, {f"{s}/{d}": sim.address(s, d) for s, eps in sim.by_site.items()
                            for ep in eps for d in ep.device_ids})
    if request.method == "POST" and path == "/faults":
        return _set_fault(sim, body)
    if request.method == "POST" and path == "/faults/clear":
        try:
            return _reply(200, {"cleared": sim.clear_fault(site=body.get("site"), kind=body.get("kind"))})
        except ValueError as exc:
            return _reply(400, {"error": str(exc)})
    if request.method == "DELETE" and path.startswith("/faults/"):
        try:
            fault_id = int(path.rsplit("/", 1)[1])
        except ValueError:
            return _reply(400, {"error": "fault id must be an integer"})
        return _reply(200, {"cleared": sim.clear_fault(fault_id)})
    return _reply(404, {"error": f"no route {request.method} {request.path}"})


async def start_admin(sim: Simulator, port: int = 0) -> HttpServer:
    """Serve the admin endpoint on 127.0.0.1:`port` (0 picks one); sets `sim.admin_url`."""
    server = HttpServer(lambda request, _garbage: handle(sim, request))
    await server.start(port)
    sim.admin_url = f"http://127.0.0.1:{server.port}"
    return server
