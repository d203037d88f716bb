"""`bibnet-ops demo`: the dashboard on a simulated national network, in one command.

Starts `bibnet-ops sim` as a child process (a lively scenario, libraries open around the clock), waits for
its `ready:` line, loads the inventory it wrote, and runs the dashboard on it with the collector in a second
child process: the dashboard's own process only draws. On exit (q, ctrl+c, SIGHUP, SIGTERM) the collector
and the simulator are stopped and the temporary directory removed: nothing is left running (both children
also stop by themselves if the dashboard is killed outright).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from bibnet_ops.cli.dashboard_cmd import add_display_options, keymap_or_exit, run_dashboard

__all__ = ["SimProcess", "default_scenario", "register"]

DEMO_SCENARIO = "lively-demo.toml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the dashboard on a simulated national library network",
        description="Serve a simulated network on 127.0.0.1 (bibnet-ops sim), poll it and show the dashboard. "
                    "q quits and stops everything.",
    )
    parser.add_argument("--sites", type=int, metavar="N", help="simulate N sites (default: the demo inventory)")
    parser.add_argument("--scenario", type=Path, metavar="FILE",
                        help=f"fault scenario (default: config/scenarios/{DEMO_SCENARIO})")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated network (default: 7)")
    add_display_options(parser)
    parser.set_defaults(func=_run)


def default_scenario(config: str | None) -> Path | None:
    """The lively demo scenario beside the inventory (or under ./config), if present."""
    from bibnet_ops.inventory import resolve_config_dir

    for base in (resolve_config_dir(config), Path("config"), Path(__file__).resolve().parents[2] / "config"):
        path = base / "scenarios" / DEMO_SCENARIO
        if path.is_file():
            return path
    return None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the dashboard dies without cleaning up (Linux), and leave its tty signals."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class SimProcess:
    """A `bibnet-ops sim` child process writing its inventory to a temporary directory."""

    def __init__(self, argv: list[str], workdir: Path) -> None:
        self.workdir = workdir
        self.config_dir = workdir / "config"
        self.log_path = workdir / "sim.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bibnet_ops", *argv, "--write-config", str(self.config_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def wait_ready(self, timeout: float) -> str:
        """Return the `ready:` line; raise RuntimeError with the simulator's log if it fails or takes too long."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("ready:"):
                return line.strip()
        self.stop()
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"the simulator did not start:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the simulator and wait for it (kill it if it does not stop in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def _run(args: argparse.Namespace) -> int:
    from bibnet_ops.inventory import ConfigError, load_inventory

    keymap = keymap_or_exit(args)  # a broken keymap is said before the simulator starts
    scenario = args.scenario or default_scenario(args.config)
    argv = ["sim", "--always-open", "--seed", str(args.seed)]
    if args.config:
        argv = ["--config", args.config, *argv]
    if args.sites:
        argv += ["--sites", str(args.sites)]
    if scenario is not None:
        argv += ["--scenario", str(scenario)]
    else:
        print(f"bibnet-ops demo: no {DEMO_SCENARIO} found, the network will stay healthy", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bibnet-demo-") as tmp:
        print("bibnet-ops demo: starting the simulated network…", file=sys.stderr, flush=True)
        sim = SimProcess(argv, Path(tmp))
        try:
            try:
                ready = sim.wait_ready(timeout=180.0)
            except RuntimeError as exc:
                print(f"bibnet-ops demo: {exc}", file=sys.stderr)
                return 1
            print(f"bibnet-ops demo: {ready}", file=sys.stderr, flush=True)
            try:
                inventory = load_inventory(sim.config_dir)
            except ConfigError as err:
                print(f"bibnet-ops demo: the simulator wrote an invalid inventory: {err}", file=sys.stderr)
                return 1
            # A demo should come alive within seconds, not after a full polling interval.
            return run_dashboard(inventory, args, first_spread=10.0, store=Path(tmp) / "history.db", keymap=keymap)
        finally:
            sim.stop()
