"""The simulated library network: the world bibnet-ops observes, served on 127.0.0.1.

`Simulator` serves an inventory's sites (Koha catalogues with OAI-PMH, scanner and switch SNMP agents)
and injects faults from a `Scenario` or at run time with `set_fault`/`clear_fault`. It reads the
inventory but never imports probes or the engine. `bibnet-ops sim` runs it as a process.
"""

from __future__ import annotations

from bibnet_ops.sim._apply import ActiveFault
from bibnet_ops.sim._faults import (
    Fault,
    FaultKind,
    RandomFaults,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_duration,
    parse_scenario,
)
from bibnet_ops.sim._network import base_network, resize_network
from bibnet_ops.sim._simulator import Simulator
from bibnet_ops.sim._thread import SimulatorThread

__all__ = [
    "ActiveFault",
    "Fault",
    "FaultKind",
    "RandomFaults",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "SimulatorThread",
    "base_network",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
    "resize_network",
]
