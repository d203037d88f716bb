"""The collector in a process of its own, driven by the dashboard over a socket (no Textual).

A dashboard watching thousands of devices must answer keys at once: polling, parsing, history writing and
alerting hold the interpreter for long stretches, so they run in a child process (`CollectorProcess`)
and reach the screen as batches of the engine's events.
"""

from __future__ import annotations

from bibnet_ops.remote._parent import CollectorProcess
from bibnet_ops.remote._protocol import CollectorSpec, NotAvailableError, Reloaded
from bibnet_ops.remote._resync import snapshot_events

__all__ = ["CollectorProcess", "CollectorSpec", "NotAvailableError", "Reloaded", "snapshot_events"]
