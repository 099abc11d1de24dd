"""Detectors of loops that stopped or keep failing, of bad snapshots and of risky config.

The audit's first finding (the advisor silent for five days) and its second (a day of all-zero
financial snapshots) were found by reading tables by hand; these read the same facts daily.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from engine.report.base import counts, fired, fmt_counts, not_measurable, passed
from engine.watchdog import find_stale_loops
from models.orchestration import LoopFreshness, OrchestrationConfig
from models.report import Finding, ReportConfig, Severity

ADVISOR = "advisor"


def detect_loop_stale(
    freshness: Sequence[LoopFreshness],
    orchestration: OrchestrationConfig,
    now: datetime,
    *,
    first_heartbeat_at: datetime | None,
    nodes: Sequence[str] = (),
) -> Finding:
    name = "loop_stale"
    if first_heartbeat_at is None:
        return not_measurable(name, "no heartbeat has ever been written (no loop has run yet)")
    stale = find_stale_loops(
        freshness, orchestration, now, first_heartbeat_at=first_heartbeat_at, nodes=nodes
    )
    watched = list(orchestration.loops)
    if not stale:
        return passed(
            name,
            f"all {len(watched)} watched loops succeeded within 2x their interval",
            {"loops": watched},
        )
    advisor = [s for s in stale if s.loop == ADVISOR]
    ordered = advisor + [s for s in stale if s.loop != ADVISOR]
    loops = sorted({s.loop for s in stale})
    head = f"{len(stale)} stale loop run(s) across {len(loops)} loop(s) ({', '.join(loops)})"
    if advisor:
        head = "the advisor is stale; " + head
    severity = (
        Severity.CRITICAL
        if advisor or any(s.severity == "critical" for s in stale)
        else Severity.WARNING
    )
    return fired(
        name,
        severity,
        head + ": " + "; ".join(s.describe() for s in ordered[:5]),
        "Start the silent loops' schedules (`hiveops serve` or the Prefect worker), then read "
        "their last failed runs in the Prefect UI: "
        + ", ".join(f"{s.loop}" + (f" on {s.node}" if s.node else "") for s in ordered[:6]),
        {
            "stale": [
                {
                    "loop": s.loop,
                    "node": s.node,
                    "reason": s.reason,
                    "age_s": s.age_s,
                    "stale_after_s": s.stale_after_s,
                }
                for s in ordered
            ]
        },
    )


def detect_zero_snapshot(
    snapshots: pl.DataFrame, alerts: pl.DataFrame, config: ReportConfig, now: datetime
) -> Finding:
    """Zero-balance snapshots stored, or refused by the collect guard, in the recent window."""
    name = "zero_snapshot"
    since = now - timedelta(seconds=config.recent_window_s)
    window = f"the last {config.recent_window_s // 3600} h"
    snaps = snapshots.filter(pl.col("taken_at") >= since)
    zero = snaps.filter(
        (pl.col("num_channels") > 0)
        & ((pl.col("capacity_msat") == 0) | (pl.col("local_msat") + pl.col("remote_msat") == 0))
    )
    refused = alerts.filter((pl.col("kind") == "zero_snapshot") & (pl.col("raised_at") >= since))
    if snaps.is_empty() and refused.is_empty():
        return not_measurable(name, f"no node snapshot in {window} (is collect running?)")
    by_node = counts(zero["node_name"].to_list() + refused["node"].fill_null("?").to_list())
    evidence = {
        "snapshots": snaps.height,
        "zero_rows_stored": zero.height,
        "refused_by_guard": refused.height,
        "by_node": by_node,
    }
    if zero.is_empty() and refused.is_empty():
        return passed(name, f"{snaps.height} node snapshots in {window}, none zero", evidence)
    return fired(
        name,
        Severity.CRITICAL,
        f"{refused.height} snapshot(s) refused as zero-balance by the collect guard and "
        f"{zero.height} zero row(s) stored in {window} ({fmt_counts(by_node)}); P&L and health "
        f"for those cycles are missing",
        "Compare listpeerchannels and listfunds on "
        + ", ".join(by_node)
        + ": the node reported zero balances while its funds show channels (plugin or lightningd "
        "fault); restart it and check the next collect",
        evidence,
    )


def detect_retries_exhausted(
    heartbeats: pl.DataFrame, alerts: pl.DataFrame, config: ReportConfig, now: datetime
) -> Finding:
    """Runs that failed after their retries, and open alerts, in the recent window."""
    name = "retries_exhausted"
    since = now - timedelta(seconds=config.recent_window_s)
    window = f"the last {config.recent_window_s // 3600} h"
    beats = heartbeats.filter(pl.col("started_at") >= since)
    raised = alerts.filter((pl.col("raised_at") >= since) & pl.col("resolved_at").is_null())
    if beats.is_empty() and raised.is_empty():
        return not_measurable(name, f"no loop ran in {window}")
    runs = (
        beats.group_by("loop", "node")
        .agg(
            pl.len().alias("runs"),
            (pl.col("status") == "failed").sum().alias("failed"),
        )
        .filter(pl.col("failed") > 0)
        .sort("failed", "loop", "node", descending=[True, False, False])
    )
    failing = [
        {"loop": r["loop"], "node": r["node"], "failed": r["failed"], "runs": r["runs"]}
        for r in runs.iter_rows(named=True)
    ]
    kinds = counts(raised["kind"].to_list())
    evidence = {"runs": beats.height, "failing": failing, "open_alerts_by_kind": kinds}
    if not failing and raised.is_empty():
        return passed(name, f"{beats.height} loop runs in {window}, none failed", evidence)
    failed_total = sum(f["failed"] for f in failing)
    always = [f for f in failing if f["failed"] == f["runs"] and f["runs"] >= 2]
    where = ", ".join(f"{f['loop']} on {f['node']}: {f['failed']} of {f['runs']}" for f in failing)
    summary = f"{failed_total} failed loop run(s) in {window}" + (f" ({where})" if where else "")
    summary += f"; {raised.height} open alert(s) ({fmt_counts(kinds)})" if kinds else ""
    return fired(
        name,
        Severity.CRITICAL if always else Severity.WARNING,
        summary,
        'Read the open alerts (`hiveops sql "select raised_at, loop, node, message from alerts '
        'where resolved_at is null order by raised_at desc"`) and fix the node or RPC each '
        "one names; every failed run already used its retries",
        evidence,
    )


def detect_risky_config(warnings: Sequence[str]) -> Finding:
    name = "risky_config"
    if not warnings:
        return passed(name, "no risky configuration value (hiveops config check)")
    return fired(
        name,
        Severity.WARNING,
        f"{len(warnings)} risky configuration value(s): " + "; ".join(warnings[:3]),
        "Review each value with `hiveops config check` and change it or accept it knowingly",
        {"warnings": list(warnings)},
    )
