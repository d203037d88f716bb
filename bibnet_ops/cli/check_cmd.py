"""`bibnet-ops check [SITE[/DEVICE[/CHECK]]]`: run the selected checks once and print what they found.

The exit status follows the monitoring-plugins convention for the worst result: 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN (also when nothing matches); an invalid inventory exits 2 after listing its issues.
A counter-rate check has no rate after one reading, so those are read again after `--rate-wait` seconds
and the second reading is shown (as check_snmp's rate mode needs two runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from typing import Any

from bibnet_ops.model import CheckSpec, CheckStatus, Sample

__all__ = ["evidence_block", "format_table", "format_value", "register", "run", "sample_json", "worst_exit"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="run checks once and print their results",
        description=(
            "Run the checks of a site, a device or a single check once, concurrently, and print a table "
            "(or JSON lines). Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, the worst result."
        ),
    )
    parser.add_argument("selector", nargs="?", default="", metavar="SITE[/DEVICE[/CHECK]]",
                        help="what to check (default: everything)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per check")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print under each row the raw reply it was judged on (HTTP status line, headers and "
                             "body head; SNMP varbinds or error; OAI-PMH request and error), bounded and redacted")
    parser.add_argument("--rate-wait", type=float, default=5.0, metavar="SECONDS",
                        help="read counter-rate checks (e.g. pages/h) again after SECONDS to show a rate "
                             "(default 5; 0 shows the first reading only)")
    parser.set_defaults(func=run)


def worst_exit(samples: list[Sample]) -> int:
    """The exit status of the worst sample (CRITICAL > WARNING > UNKNOWN > OK); 3 when there is none."""
    if not samples:
        return CheckStatus.UNKNOWN.exit_code
    return max(samples, key=lambda s: s.status.severity).status.exit_code


def format_value(value: float | None, unit: str = "") -> str:
    """A compact number with its unit: `0.034 s`, `1200 pages/h`, `-` when there is none."""
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e12:
        text = str(int(value))
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 1:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def _latency(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.0f} s"


def _cut(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def format_table(checks: list[CheckSpec], samples: list[Sample], width: int = 80) -> list[str]:
    """Lines of a table (id, status, value, latency, reason) fitting `width` columns."""
    rows = []
    for check, sample in zip(checks, samples, strict=True):
        unit = check.unit or ("s" if check.metric in ("", "latency") and sample.value is not None else "")
        rows.append((check.id, sample.status.value, format_value(sample.value, unit), _latency(sample.latency),
                     " ".join(sample.reason.split())))
    id_w = min(max([len("CHECK"), *(len(r[0]) for r in rows)]), max(16, width // 3))
    status_w = 8
    value_w = min(max([len("VALUE"), *(len(r[2]) for r in rows)]), 14)
    lat_w = 7
    reason_w = max(8, width - (id_w + status_w + value_w + lat_w + 4))
    out = [f"{'CHECK':<{id_w}} {'STATUS':<{status_w}} {'VALUE':>{value_w}} {'LATENCY':>{lat_w}} REASON"]
    for ident, status, value, latency, reason in rows:
        out.append(
            f"{_cut(ident, id_w):<{id_w}} {status:<{status_w}} {_cut(value, value_w):>{value_w}} "
            f"{latency:>{lat_w}} {_cut(reason, reason_w)}".rstrip()
        )
    return out


def evidence_block(check: CheckSpec, sample: Sample, indent: str = "    | ") -> list[str]:
    """The raw reply `sample` was judged on as indented lines (bounded, redacted), or why there is none."""
    from bibnet_ops.engine import evidence_of, no_reply_reason

    evidence = evidence_of(check, sample)
    lines = []
    if sample.status is not CheckStatus.OK and sample.reason:
        lines.append(f"{indent}reason: {' '.join(sample.reason.split())}")
    if not evidence.text:
        why = no_reply_reason(sample.status, sample.reason, sample.value)
        return [*lines, f"{indent}no raw reply kept ({why or f'the {check.probe} probe kept none for this result'})"]
    lines += [f"{indent}{line}".rstrip() for line in evidence.text.rstrip("\n").split("\n")]
    if evidence.cut:
        lines.append(f"{indent}… {evidence.cut} more characters not kept")
    return lines


def sample_json(check: CheckSpec, sample: Sample, kind: str = "") -> dict[str, Any]:
    """The JSON form of one result; `kind` is the device kind (its template's), for scripts to filter on."""
    return {
        "id": check.id,
        "site": check.site_id,
        "device": check.device_id,
        "check": check.name,
        "probe": check.probe,
        "template": check.template,
        "kind": kind,
        "status": sample.status.value,
        "value": sample.value,
        "unit": check.unit,
        "metric": check.metric,
        "values": sample.values,
        "latency": sample.latency,
        "reason": sample.reason,
        "time": sample.time,
    }


async def _run_checks(checks: list[CheckSpec], concurrency: int, per_site: int, rate_wait: float = 0.0
                      ) -> list[Sample]:
    from bibnet_ops.engine import close_probe_clients, poll_once

    try:
        samples = await poll_once(checks, concurrency=concurrency, per_site_concurrency=per_site)
        if rate_wait > 0 and any(c.probe == "snmp" for c in checks):
            from bibnet_ops.probes.snmp import wants_second_reading

            again = [i for i, (c, s) in enumerate(zip(checks, samples, strict=True)) if wants_second_reading(c, s)]
            if again:
                what = "counter check" if len(again) == 1 else f"{len(again)} counter checks"
                print(f"bibnet-ops check: reading {what} again in {rate_wait:g} s for a rate "
                      "(--rate-wait 0 to skip)", file=sys.stderr, flush=True)
                await asyncio.sleep(rate_wait)
                second = await poll_once([checks[i] for i in again], concurrency=concurrency,
                                         per_site_concurrency=per_site)
                for i, sample in zip(again, second, strict=True):
                    samples[i] = sample
        return samples
    finally:
        await close_probe_clients()


def run(args: argparse.Namespace) -> int:
    """Entry point of `bibnet-ops check`."""
    from bibnet_ops.cli.config_cmd import inventory_or_exit

    inventory = inventory_or_exit(args)
    checks = list(inventory.select(args.selector))
    if not checks:
        print(f"bibnet-ops check: no check matches {args.selector!r}", file=sys.stderr)
        return CheckStatus.UNKNOWN.exit_code
    collector = inventory.settings.get("collector", {})
    samples = asyncio.run(_run_checks(checks, int(collector.get("concurrency") or 200),
                                      int(collector.get("per_site_concurrency") or 4), max(0.0, args.rate_wait)))
    if args.json:
        kinds = {name: t.kind for name, t in inventory.templates.items()}
        for check, sample in zip(checks, samples, strict=True):
            row = sample_json(check, sample, kinds.get(check.template, ""))
            if args.verbose:
                from bibnet_ops.engine import evidence_of

                row["evidence"] = evidence_of(check, sample).text
            print(json.dumps(row, ensure_ascii=False))
    elif args.verbose:
        width = shutil.get_terminal_size((80, 24)).columns
        lines = format_table(checks, samples, width=max(60, width))
        print(lines[0])
        for check, sample, line in zip(checks, samples, lines[1:], strict=True):
            print(line)
            for detail in evidence_block(check, sample):
                print(detail)
    else:
        width = shutil.get_terminal_size((80, 24)).columns
        lines = format_table(checks, samples, width=max(60, width))
        for line in lines:
            print(line)
        # the reason column is narrow at 80 columns: problems get their whole reason below the table
        cut = [(c, s) for c, s, line in zip(checks, samples, lines[1:], strict=False)
               if s.status is not CheckStatus.OK and line.endswith("…")]
        if cut:
            print()
            for check, sample in cut:
                print(f"{check.id}: {sample.reason}")
    return worst_exit(samples)
