"""`bibnet-ops sim`: serve a simulated library network on 127.0.0.1 until stopped."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="serve a simulated library network on 127.0.0.1",
        description=(
            "Serve every site of the inventory (or the built-in 58-wilaya network) on 127.0.0.1: "
            "Koha catalogues with OAI-PMH, scanner and switch SNMP agents, with optional faults. "
            "Prints 'ready: N sites, M endpoints, config in DIR' once everything listens; "
            "stops on Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--sites", type=int, metavar="N",
                        help="serve the first N sites, adding synthetic annexes beyond the inventory")
    parser.add_argument("--scenario", metavar="FILE", type=Path, help="TOML scenario of faults")
    parser.add_argument("--seed", type=int, help="seed for device behaviour and random faults")
    parser.add_argument("--write-config", metavar="DIR", type=Path,
                        help="write the served inventory here (for --config DIR check|collect|dashboard)")
    parser.add_argument("--synthetic", action="store_true",
                        help="ignore the inventory and serve the built-in 58-wilaya network")
    parser.add_argument("--always-open", action="store_true",
                        help="libraries count as open around the clock (scanners keep scanning)")
    parser.add_argument("--tls", metavar="SITE", action="append", default=[],
                        help="serve this site's catalogue over HTTPS too (repeatable)")
    parser.add_argument("--admin-port", type=int, default=0, metavar="PORT",
                        help="port of the JSON admin endpoint (default: any free port)")
    parser.set_defaults(func=run)


def _load_network(args: argparse.Namespace) -> Any:
    """The inventory to serve, or None for the built-in network."""
    if args.synthetic:
        return None
    from bibnet_ops.inventory import ConfigError, load_inventory, resolve_config_dir

    config_dir = resolve_config_dir(args.config) if hasattr(args, "config") else None
    if config_dir is None or not Path(config_dir).is_dir():
        return None
    try:
        return load_inventory(Path(config_dir))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def run(args: argparse.Namespace) -> int:
    """Entry point of `bibnet-ops sim`."""
    from bibnet_ops.sim import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
    except ScenarioError as exc:
        print(f"bibnet-ops sim: {exc}", file=sys.stderr)
        return 2
    network = _load_network(args)
    if args.write_config and network is not None and (
            args.write_config.resolve() == Path(network.root).resolve()):
        print("bibnet-ops sim: --write-config must not overwrite the inventory it serves", file=sys.stderr)
        return 2
    if args.sites is not None and args.sites < 1:
        print("bibnet-ops sim: --sites must be at least 1", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args, network, scenario))


async def _serve(args: argparse.Namespace, network: Any, scenario: Any) -> int:
    from bibnet_ops.sim import Simulator
    from bibnet_ops.sim._admin import start_admin

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.perf_counter()
    sim = Simulator(network, scenario=scenario, seed=args.seed, sites=args.sites,
                    always_open=args.always_open, tls_sites=args.tls)
    try:
        await sim.start()
        admin = await start_admin(sim, args.admin_port)
    except OSError as exc:
        print(f"bibnet-ops sim: {exc}", file=sys.stderr)
        await sim.stop()
        return 1
    where = "not written"
    if args.write_config:
        where = str(sim.write_config(args.write_config))
    for warning in sim.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"admin: {sim.admin_url}", flush=True)
    print(f"ready: {len(sim.sites)} sites, {len(sim.endpoints)} endpoints, config in {where}", flush=True)
    print(f"started in {time.perf_counter() - t0:.2f}s (pid {os.getpid()})", file=sys.stderr, flush=True)
    await stop.wait()
    await admin.close()
    await sim.stop()
    return 0
