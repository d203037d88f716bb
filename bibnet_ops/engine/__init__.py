"""The polling engine: asyncio scheduler, SOFT/HARD states, flap detection and site dependencies.

Usage::

    engine = Engine(inventory)
    engine.subscribe(callback)        # receives Sample, StateChange, SiteStatusChange, FlappingChange
    await engine.run()                # until engine.stop()
    engine.snapshot()                 # read-only state of every check and site, plus poll health
    engine.poll_now("bplp-31")        # re-poll a selection at once
    engine.evidence("bplp-31/catalogue/opac")  # the raw reply its last result was judged on
    engine.set_maintenance("bplp-31", True)
    engine.reconfigure(new_inventory)  # reload: diff by check id, unchanged checks keep their state

The engine knows no screen, store or alerting; they subscribe to its events.
"""

from __future__ import annotations

from bibnet_ops.engine._checkstate import FLAP_HIGH, FLAP_LOW, FLAP_WINDOW, CheckState, flap_percent
from bibnet_ops.engine._engine import (
    CheckSnapshot,
    Engine,
    EngineSnapshot,
    SiteSnapshot,
    Subscriber,
    close_probe_clients,
    matches,
)
from bibnet_ops.engine._evidence import EVIDENCE_LIMIT, Evidence, evidence_of, no_reply_reason, redact_evidence
from bibnet_ops.engine._health import PollHealth
from bibnet_ops.engine._reconfigure import CheckSeed, Reconfiguration
from bibnet_ops.engine._scheduler import TIMEOUT_MARGIN, guarded_probe, poll_once
from bibnet_ops.engine._sites import NETWORK_KINDS, reachability_checks

__all__ = [
    "EVIDENCE_LIMIT",
    "FLAP_HIGH",
    "FLAP_LOW",
    "FLAP_WINDOW",
    "NETWORK_KINDS",
    "TIMEOUT_MARGIN",
    "CheckSeed",
    "CheckSnapshot",
    "CheckState",
    "Engine",
    "EngineSnapshot",
    "Evidence",
    "PollHealth",
    "Reconfiguration",
    "SiteSnapshot",
    "Subscriber",
    "close_probe_clients",
    "evidence_of",
    "flap_percent",
    "guarded_probe",
    "matches",
    "no_reply_reason",
    "poll_once",
    "reachability_checks",
    "redact_evidence",
]
