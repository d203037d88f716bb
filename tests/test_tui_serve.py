"""`bibnet-ops serve` in a real browser: Debian's Chromium driven by Selenium through Debian's chromedriver.

The simulator serves a small network on loopback, `serve` runs one collector for it, and each browser tab gets
a dashboard process attached to that collector. The test reads what xterm.js shows (its buffer rows, through
the DevTools protocol: the page draws on a canvas), types keys into the page, opens a second tab, closes tabs
and the browser, and checks which processes exist after each step: one collector whatever the tabs, one
dashboard per open tab, none left once a tab is closed, quit with `q` or its browser gone, and nothing at all
once the server is stopped.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_tui_live import REPO, SITES

from bibnet_ops.inventory import load_inventory
from bibnet_ops.sim import Simulator
from bibnet_ops.sim._thread import SimulatorThread

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="Debian's chromium and chromium-driver are not installed (make test installs them)",
)

# xterm.js keeps its Terminal in the page's closures; the DevTools protocol finds it by its prototype's methods
# and reads the rows of its buffer, which is what the canvas shows.
_FIND_TERMINAL_PROTOTYPE = """function() {
  for (const f of this) {
    try {
      const p = f.prototype;
      if (p && typeof p.loadAddon === 'function' && typeof p.selectAll === 'function') return p;
    } catch (e) {}
  }
  return null;
}"""
_READ_ROWS = """function() {
  const t = this[this.length - 1];
  const b = t.buffer.active;
  const rows = [];
  for (let i = 0; i < t.rows; i++) rows.push(b.getLine(b.viewportY + i).translateToString(true));
  return rows;
}"""


def screen_rows(driver: Any) -> list[str]:
    """The rows of the xterm.js screen in the current tab, as text."""
    functions = driver.execute_cdp_cmd("Runtime.evaluate", {"expression": "Function.prototype"})["result"]
    every = driver.execute_cdp_cmd("Runtime.queryObjects", {"prototypeObjectId": functions["objectId"]})
    proto = driver.execute_cdp_cmd("Runtime.callFunctionOn", {
        "objectId": every["objects"]["objectId"], "functionDeclaration": _FIND_TERMINAL_PROTOTYPE})["result"]
    if proto.get("subtype") == "null" or "objectId" not in proto:
        return []
    terminals = driver.execute_cdp_cmd("Runtime.queryObjects", {"prototypeObjectId": proto["objectId"]})
    rows = driver.execute_cdp_cmd("Runtime.callFunctionOn", {
        "objectId": terminals["objects"]["objectId"], "functionDeclaration": _READ_ROWS, "returnByValue": True})
    value = rows["result"].get("value")
    return list(value) if isinstance(value, list) else []


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes(server: psutil.Process, marker: str) -> list[psutil.Process]:
    out = []
    for proc in server.children(recursive=True):
        try:
            if marker in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def tabs(server: psutil.Process) -> list[psutil.Process]:
    """The dashboards `serve` runs, one per open tab."""
    return _processes(server, "dashboard --attach")


def collectors(server: psutil.Process) -> list[psutil.Process]:
    return _processes(server, "bibnet_ops.remote._child")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Path]:
    shipped = load_inventory(REPO / "config")
    runner = SimulatorThread(Simulator([shipped.sites[s] for s in SITES], seed=5, always_open=True))
    sim = runner.start()
    try:
        yield sim.write_config(tmp_path / "config")
    finally:
        runner.stop()


@pytest.fixture
def served(network: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bibnet_ops", "--config", str(network), "serve", "--port", str(port),
         "--store", str(tmp_path / "history.db"), "--lang", "en", "--tree"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    banner = proc.stdout.readline()
    if "bibnet-ops serve: http://" not in banner:
        proc.kill()
        pytest.fail(f"serve did not start: {banner!r} {proc.stderr.read()}")
    # Whatever the server prints next (a tab's error output) is read, so it never blocks on a full pipe.
    out = threading.Thread(target=proc.stdout.read, daemon=True)
    err = threading.Thread(target=proc.stderr.read, daemon=True)
    out.start()
    err.start()
    try:
        yield f"http://127.0.0.1:{port}/", proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        out.join(5)
        err.join(5)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,800",
                 f"--user-data-dir={tmp_path / 'chromium'}",
                 # loopback only, whatever a page asks for
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    # Both binaries given: Selenium Manager never looks for (or downloads) a browser or a driver.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any) -> str:
    return "\n".join(screen_rows(driver))


def _type(driver: Any, *keys: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
    for key in keys:
        box.send_keys(key)
        time.sleep(0.15)


def test_a_browser_tab_shows_the_dashboard_answers_keys_and_leaves_no_process(
    served: tuple[str, subprocess.Popen[str]], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, proc = served
    server = psutil.Process(proc.pid)
    assert len(collectors(server)) == 1 and tabs(server) == []  # one collector, polling before any tab opens

    browser.get(url)
    wait_for("the dashboard in the page", lambda: "6 sites" in _text(browser) and "Centre" in _text(browser))
    text = _text(browser)
    assert "READ-ONLY" in text  # served dashboards change nothing unless serve --writable
    assert "bna" in text and "Bibliothèque nationale" in text  # a site of the tree, by name
    braille = sum(1 for ch in text if 0x2801 <= ord(ch) <= 0x28FF)
    assert braille > 100, "the map of Algeria is not drawn"
    assert len(tabs(server)) == 1

    # Keys typed into the page reach the dashboard: help, then into the tree, down to a site, open it.
    _type(browser, "?")
    wait_for("the help screen", lambda: "Esc or q closes this help" in _text(browser))
    _type(browser, Keys.ESCAPE)
    wait_for("the help closed", lambda: "closes this help" not in _text(browser))
    assert "checks/s" in _text(browser)  # the served collector's poll health reaches the tab
    _type(browser, "j", "j", Keys.ENTER)
    wait_for("a site screen", lambda: "wilaya" in _text(browser) and "device/check" in _text(browser))
    _type(browser, "e")
    wait_for("the last reply of a check", lambda: "Last reply of " in _text(browser))

    # A second tab: a second dashboard on the same collector.
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(url)
    wait_for("the second tab's dashboard", lambda: "6 sites" in _text(browser))
    assert len(tabs(server)) == 2 and len(collectors(server)) == 1
    second = browser.current_window_handle

    # Closing the first tab ends its dashboard process, and only that one.
    gone = tabs(server)
    browser.switch_to.window(first)
    closed_at = time.monotonic()
    browser.close()
    browser.switch_to.window(second)
    wait_for("the closed tab's process to end", lambda: len(tabs(server)) == 1, timeout=20)
    print(f"\nclosed tab's dashboard gone after {time.monotonic() - closed_at:.2f} s")
    left = tabs(server)
    assert left[0].pid in {p.pid for p in gone}
    assert "6 sites" in _text(browser)  # the other tab still works

    # q typed in the page quits that tab's dashboard: its process ends and the page says the session ended.
    _type(browser, "q")
    wait_for("the quit tab's process to end", lambda: tabs(server) == [], timeout=20)
    wait_for("the page to say so", lambda: "-closed" in (browser.find_element(By.TAG_NAME, "body")
                                                          .get_attribute("class") or ""), timeout=10)

    # A third tab, then the browser goes away: that tab's process ends too; the collector keeps polling.
    browser.switch_to.new_window("tab")
    browser.get(url)
    wait_for("the third tab's dashboard", lambda: "6 sites" in _text(browser))
    assert len(tabs(server)) == 1
    browser.quit()
    wait_for("the last tab's process to end", lambda: tabs(server) == [], timeout=20)
    assert len(collectors(server)) == 1
    everything = [server, *server.children(recursive=True)]

    # ctrl+c (SIGINT) stops the server; the collector commits its history and nothing is left.
    proc.send_signal(2)
    assert proc.wait(20) == 0
    wait_for("every served process to end", lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                                                             for p in everything), timeout=15)


def test_serve_refuses_a_bad_config_and_an_unusable_store_before_listening(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config", tmp_path / "config", ignore=shutil.ignore_patterns("scenarios"))
    site = next((tmp_path / "config" / "sites").glob("*.toml"))
    site.write_text(site.read_text(encoding="utf-8") + "\nbogus_key = 1\n", encoding="utf-8")
    port = _free_port()
    run = subprocess.run([sys.executable, "-m", "bibnet_ops", "--config", str(tmp_path / "config"), "serve",
                          "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "bogus_key" in run.stderr and f"{site.name}:" in run.stderr
    run = subprocess.run([sys.executable, "-m", "bibnet_ops", "--config", str(REPO / "config"), "serve",
                          "--port", str(port), "--store", "/proc/no-such-dir/history.db"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "the collector did not start" in run.stderr and "/proc/no-such-dir" in run.stderr


def test_each_tab_runs_an_attached_dashboard_read_only_unless_writable(tmp_path: Path) -> None:
    from bibnet_ops.cli import build_parser
    from bibnet_ops.cli.serve_cmd import tab_command

    def command(*argv: str) -> list[str]:
        args = build_parser().parse_args(["serve", *argv])
        return shlex.split(tab_command(args, tmp_path / "config", tmp_path / "c.sock"))

    plain = command()
    assert plain[0] == "exec" and plain[1:4] == [sys.executable, "-m", "bibnet_ops"]
    assert plain[plain.index("--attach") + 1] == str(tmp_path / "c.sock") and "--read-only" in plain
    writable = command("--writable", "--lang", "fr", "--theme", "high-contrast", "--tiles")
    assert "--read-only" not in writable
    assert writable[writable.index("--lang") + 1] == "fr" and "--tiles" in writable
    assert "--read-only" in command("--writable", "--read-only")  # asked for both: the safe one wins


async def test_a_killed_server_leaves_neither_its_tabs_nor_its_collector(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    """kill -9 of `serve`: its collector sees the socket close, each tab's dashboard gets SIGTERM from the kernel."""
    import asyncio

    import aiohttp

    url, proc = served
    server = psutil.Process(proc.pid)
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "ws?width=100&height=30") as ws:
        await ws.send_json(["resize", {"width": 100, "height": 30}])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline and not tabs(server):
            await asyncio.sleep(0.2)
        assert len(tabs(server)) == 1 and len(collectors(server)) == 1
        everything = [*tabs(server), *collectors(server)]
        proc.kill()
        proc.wait(10)

        def all_gone() -> bool:
            return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in everything)

        gone_by = loop.time() + 20
        while loop.time() < gone_by and not all_gone():
            await asyncio.sleep(0.2)
    assert all_gone(), [p.cmdline() for p in everything if p.is_running()]
