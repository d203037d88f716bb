"""The custom prometheus_client collector: the engine's state and the collector's health, read at scrape time.

Conventions (https://prometheus.io/docs/practices/naming/): base units (seconds, bytes), `_seconds`,
`_total` for counters, `_timestamp_seconds` for UTC epoch times; one metric per meaning, labels for the
dimensions. Statuses are exported two ways, both cheap to query:

- a check's status as its monitoring-plugins code (`bibnet_check_status`: 0 OK, 1 WARNING, 2 CRITICAL,
  3 UNKNOWN), so `bibnet_check_status > 0` lists every problem;
- a site's status as one series per possible status with value 1 for the current one
  (`bibnet_site_status{status="DOWN"} == 1`), as kube-state-metrics exports phases.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from bibnet_ops import __version__
from bibnet_ops.collector import CollectorStatus
from bibnet_ops.engine import EngineSnapshot
from bibnet_ops.inventory import Inventory
from bibnet_ops.model import CheckStatus, SiteStatus

__all__ = ["CHECK_LABELS", "SITE_LABELS", "EngineExporter", "MetricsSource"]

log = logging.getLogger(__name__)

CHECK_LABELS = ("site", "device", "check", "kind", "template")
"""Labels of every per-check series: the check's id parts, its device kind (its template's kind) and template."""
SITE_LABELS = ("site", "region", "wilaya")
_SITE_STATUSES = tuple(s.value for s in SiteStatus)
_SNAPSHOT_TRIES = 5


class MetricsSource(Protocol):
    """What the exporter reads: the Collector offers it (`inventory`, `snapshot()`, `status()`)."""

    inventory: Inventory

    def snapshot(self) -> EngineSnapshot: ...

    def status(self) -> CollectorStatus: ...


class EngineExporter(Collector):
    """Register with a `CollectorRegistry`; each scrape reads `source` once (snapshot + status).

    Args:
        source: the running collector.
        collector_id: the `collector` label of the health series (the host name by default, set by the
            caller; a national network runs several collectors).
    """

    def __init__(self, source: MetricsSource, collector_id: str = "") -> None:
        self.source = source
        self.collector_id = collector_id
        self._labels_for: Inventory | None = None
        self._check_labels: dict[str, dict[str, str]] = {}
        self._value_labels: dict[str, dict[str, str]] = {}
        self._site_labels: dict[str, dict[str, str]] = {}

    def describe(self) -> Iterator[Any]:
        return iter(())  # families depend on the inventory: nothing to check at registration

    def _labels(self) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """Label dicts per check and per site, built once per inventory (a scrape only looks them up)."""
        inventory = self.source.inventory
        if inventory is not self._labels_for:  # a reload swapped it: label values are rebuilt once
            kinds = {name: t.kind for name, t in inventory.templates.items()}
            self._check_labels = {
                c.id: dict(zip(CHECK_LABELS, (c.site_id, c.device_id, c.name, kinds.get(c.template, ""), c.template),
                               strict=True))
                for c in inventory.checks
            }
            self._value_labels = {
                c.id: {**self._check_labels[c.id], "metric": c.metric,
                       "unit": c.unit or ("s" if c.metric in ("", "latency") else "")}
                for c in inventory.checks
            }
            self._site_labels = {
                s.id: {"site": s.id, "region": s.region, "wilaya": str(s.wilaya) if s.wilaya else ""}
                for s in inventory.sites.values()
            }
            self._labels_for = inventory
        return self._check_labels, self._site_labels

    def _read(self) -> tuple[EngineSnapshot, CollectorStatus]:
        # the scrape runs on the HTTP server's thread while the loop polls: a reload changing the check
        # dicts, or a poll recording its lag, under the copy only means reading again
        for attempt in range(_SNAPSHOT_TRIES):
            try:
                return self.source.snapshot(), self.source.status()
            except RuntimeError:
                if attempt == _SNAPSHOT_TRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def collect(self) -> Iterator[Any]:
        snap, status = self._read()
        check_labels, site_labels = self._labels()
        yield from self._checks(snap, check_labels)
        yield from self._sites(snap, site_labels)
        yield from self._health(status)

    def _checks(self, snap: EngineSnapshot, labels_of: dict[str, dict[str, str]]) -> Iterator[Any]:
        # samples are added with the cached label dicts (Metric.add_sample): a scrape builds no label
        # dict of its own, which matters at 16,000 checks
        status = GaugeMetricFamily("bibnet_check_status", "Current status of the check: 0 OK, 1 WARNING, "
                                   "2 CRITICAL, 3 UNKNOWN (absent before its first result)")
        soft = GaugeMetricFamily("bibnet_check_soft", "1 while the check's status is SOFT (retries or a recovery "
                                 "still being counted); absent when it is the HARD state")
        flapping = GaugeMetricFamily("bibnet_check_flapping", "1 while the check is flapping; absent otherwise")
        value = GaugeMetricFamily("bibnet_check_value", "Last value of the check's metric (named by the `metric` "
                                  "label), in the unit of the `unit` label (latency checks: seconds)")
        extra = GaugeMetricFamily("bibnet_check_values", "Other figures of the last result, by `name` (e.g. "
                                  "name=\"total\": a counter's raw value, such as a scanner's lifetime pages)")
        latency = GaugeMetricFamily("bibnet_check_latency_seconds", "How long the last probe waited for the "
                                    "device")
        last = GaugeMetricFamily("bibnet_check_last_poll_timestamp_seconds", "When the last result came in "
                                 "(UTC epoch seconds)")
        values_of = self._value_labels
        for check_id, check in snap.checks.items():
            labels = labels_of.get(check_id)
            if labels is None:
                continue  # polled but not (yet) in the inventory object the scrape saw
            if check.status is not None:
                status.add_sample("bibnet_check_status", labels, _CODES[check.status])
                if not check.hard:
                    soft.add_sample("bibnet_check_soft", labels, 1.0)
            if check.flapping:
                flapping.add_sample("bibnet_check_flapping", labels, 1.0)
            sample = check.last
            if sample is None:
                continue
            last.add_sample("bibnet_check_last_poll_timestamp_seconds", labels, sample.time)
            if sample.latency is not None:
                latency.add_sample("bibnet_check_latency_seconds", labels, sample.latency)
            if sample.value is not None and _finite(sample.value):
                value.add_sample("bibnet_check_value", values_of[check_id], sample.value)
            for key, number in sample.values.items():
                if _finite(number):
                    extra.add_sample("bibnet_check_values", {**labels, "name": key}, number)
        yield from (status, soft, flapping, value, extra, latency, last)

    def _sites(self, snap: EngineSnapshot, labels_of: dict[str, dict[str, str]]) -> Iterator[Any]:
        status = GaugeMetricFamily("bibnet_site_status", "1 for the site's current status (UP, DEGRADED, DOWN, "
                                   "UNREACHABLE, MAINTENANCE), 0 for the others; none before its first status")
        since = GaugeMetricFamily("bibnet_site_status_change_timestamp_seconds", "When the site's status last "
                                  "changed (UTC epoch seconds)")
        for site_id, site in snap.sites.items():
            labels = labels_of.get(site_id)
            if labels is None or site.status is None:
                continue
            current = site.status.value
            for name in _SITE_STATUSES:
                status.add_sample("bibnet_site_status", {**labels, "status": name}, 1.0 if name == current else 0.0)
            if site.since is not None:
                since.add_sample("bibnet_site_status_change_timestamp_seconds", labels, site.since)
        yield from (status, since)

    def _health(self, st: CollectorStatus) -> Iterator[Any]:
        cid = [self.collector_id]
        lab = ["collector"]

        def gauge(name: str, doc: str, number: float | None) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=lab)
            if number is not None:
                family.add_metric(cid, number)
            return family

        def counter(name: str, doc: str, number: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=lab)
            family.add_metric(cid, number)
            return family

        poll = st.poll
        info = InfoMetricFamily("bibnet_collector", "The collector's version", labels=lab)
        info.add_metric(cid, {"version": __version__})
        yield info
        yield gauge("bibnet_collector_checks", "Checks being polled", st.checks)
        yield gauge("bibnet_collector_sites", "Sites in the inventory", st.sites)
        yield counter("bibnet_collector_polls", "Polls completed since start", poll.completed)
        yield counter("bibnet_collector_poll_timeouts", "Polls cut off at their timeout since start", poll.timeouts)
        yield gauge("bibnet_collector_checks_per_second", "Polls completed per second over the last minute",
                    poll.checks_per_second)
        lag = GaugeMetricFamily("bibnet_collector_scheduling_lag_seconds", "Poll start minus due time over the "
                                "last minute (slot waits included), by quantile", labels=[*lab, "quantile"])
        lag.add_metric([*cid, "0.5"], poll.lag_p50)
        lag.add_metric([*cid, "0.99"], poll.lag_p99)
        yield lag
        yield gauge("bibnet_collector_polls_in_flight", "Probes running now", poll.in_flight)
        yield gauge("bibnet_collector_polls_queued", "Polls due but waiting for a concurrency slot", poll.queued)
        yield gauge("bibnet_collector_last_poll_age_seconds", "Seconds since the last poll completed",
                    poll.last_poll_age)
        yield gauge("bibnet_collector_store_pending_events", "Events queued for the history store, not yet "
                    "committed", st.store_pending)
        yield gauge("bibnet_collector_store_write_seconds", "How long the last history commit took",
                    st.store_write_seconds)
        yield counter("bibnet_collector_store_commits", "History commits since start", st.store_commits)
        if st.buffer_depth is not None:
            yield gauge("bibnet_collector_outbox_depth", "Items waiting in the outbox for the central store",
                        st.buffer_depth)
        yield counter("bibnet_collector_reloads", "Configurations reloaded since start", st.reloads)
        yield counter("bibnet_collector_reload_failures", "Reloads refused (invalid configuration) since start",
                      st.reload_failures)
        yield gauge("bibnet_collector_last_reload_timestamp_seconds", "When the configuration was last reloaded "
                    "(UTC epoch seconds)", st.last_reload)


_CODES = {status: float(status.exit_code) for status in CheckStatus}


def _finite(number: float) -> bool:
    return isinstance(number, int | float) and math.isfinite(number)
