"""The dashboard served in a browser: textual-serve (what `textual serve` runs) driving `bibnet-ops demo`.

A real aiohttp websocket client plays the browser: it must see the dashboard's header and map, and `q`
typed in the page must end the served process so nothing keeps polling after the tab is closed.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _free_port()
    app = f"{sys.executable} -m bibnet_ops demo --sites 4 --lang en --store {tmp_path / 'h.db'}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from textual_serve.server import Server; "
            "Server(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2])).serve()",
            app,
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("textual-serve did not start listening within 20 s")
    try:
        yield port, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _demo_processes(store: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if store in line and "textual_serve" not in line]


async def test_dashboard_runs_in_a_browser_tab_and_q_ends_it(
    served: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, _server = served
    screen = b""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30") as ws,
    ):
        await ws.send_json(["resize", {"width": 100, "height": 30}])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        text = ""
        while loop.time() < deadline and not ("4 sites" in text and "Centre" in text):
            try:
                message = await asyncio.wait_for(ws.receive(), 1)
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                screen += message.data
                text = ANSI.sub(b"", screen).decode("utf-8", "replace")
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        assert "4 sites" in text, f"no dashboard header in the page: {text[-800:]!r}"
        assert "Centre" in text  # the region tree is drawn
        assert _demo_processes(str(tmp_path)), "the served dashboard is not a process of its own"

        await ws.send_json(["stdin", "q"])
        closed_by = loop.time() + 20
        while loop.time() < closed_by and not ws.closed:
            try:
                message = await asyncio.wait_for(ws.receive(), 1)
            except TimeoutError:
                continue
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    # q in the page quits the app: no demo, collector or simulator process may stay behind
    gone_by = time.monotonic() + 15
    while time.monotonic() < gone_by and _demo_processes(str(tmp_path)):
        time.sleep(0.2)
    assert _demo_processes(str(tmp_path)) == []
