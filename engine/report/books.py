"""Detectors over the node's own books: forwards and sling reconciled against bookkeeper, fees
changed outside hiveops, and channels whose return on capacity is negative."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from engine.report.base import fired, not_measurable, passed, sat
from models.report import Finding, Severity

MAX_LISTED = 8


def detect_books_mismatch(reconciliation: pl.DataFrame) -> Finding:
    """A day whose settled forwards' fees differ from bookkeeper's routed income by any msat, or
    whose sling fees differ from bookkeeper's rebalance fees by more than sling's whole-sat
    rounding, is a finding with both numbers."""
    name = "books_mismatch"
    if reconciliation.is_empty():
        return not_measurable(name, "no complete day with bookkeeper income (bkpr not collected?)")
    bad = reconciliation.filter(
        (pl.col("routed_diff_msat") != 0)
        | (pl.col("rebalance_diff_msat").abs() > pl.col("rebalance_tolerance_msat"))
        | (pl.col("bkpr_unexplained_events") > 0)
    ).sort("day")
    days = reconciliation.height
    if bad.is_empty():
        routed = int(reconciliation["bkpr_routed_msat"].sum())
        return passed(
            name,
            f"{days} node-days reconciled: forwards = bookkeeper routed to the msat "
            f"({sat(routed)}), sling = bookkeeper rebalance fees within rounding",
            {"node_days": days, "bkpr_routed_msat": routed},
        )
    rows = [
        {
            "node": r["node_name"],
            "day": str(r["day"]),
            "forwards_fee_msat": r["forwards_fee_msat"],
            "bkpr_routed_msat": r["bkpr_routed_msat"],
            "sling_fee_msat": r["sling_fee_msat"],
            "bkpr_rebalance_fee_msat": r["bkpr_rebalance_fee_msat"],
            "bkpr_unexplained_events": r["bkpr_unexplained_events"],
        }
        for r in bad.iter_rows(named=True)
    ]
    first = rows[0]
    return fired(
        name,
        Severity.WARNING,
        f"{bad.height} of {days} node-days disagree with bookkeeper; first {first['node']} "
        f"{first['day']}: forwards {first['forwards_fee_msat']} msat vs bookkeeper routed "
        f"{first['bkpr_routed_msat']} msat, sling {first['sling_fee_msat']} msat vs bookkeeper "
        f"rebalance fees {first['bkpr_rebalance_fee_msat']} msat",
        "Bookkeeper is the ledger: find the missing or extra forwards (a collect gap, a "
        "re-read) or the rebalance sling did not report; `select * from ledger_reconciliation`",
        {"days": rows[:MAX_LISTED], "mismatched_node_days": bad.height, "node_days": days},
    )


def detect_external_changes(changes: pl.DataFrame, now: datetime) -> Finding:
    """Fees, base fees or max-HTLCs changed without a hiveops decision: shown, and learned from as
    the level in force, but an operator should know another hand is on the controls."""
    name = "external_changes"
    if changes.is_empty():
        return passed(name, "no fee, base fee or max-HTLC changed outside hiveops")
    listed = [
        f"{r['node_name']} {r['scid']} {r['field']} {r['old_value']} -> {r['new_value']} "
        f"(seen {r['detected_at']:%Y-%m-%d %H:%M})"
        for r in changes.sort("detected_at", descending=True).iter_rows(named=True)
    ]
    return fired(
        name,
        Severity.INFO,
        f"{changes.height} channel setting(s) changed outside hiveops: " + "; ".join(listed[:3]),
        "The fee learner treats them as the level in force; set a policy "
        "(`hiveops policy set`) if the change is meant to stay",
        {"changes": listed[:MAX_LISTED], "count": changes.height, "as_of": now.isoformat()},
    )


def detect_losing_channels(returns: pl.DataFrame) -> Finding:
    """Channels whose costs exceeded their revenue over the window (return on capacity < 0)."""
    name = "losing_channels"
    if returns.is_empty():
        return not_measurable(name, "no channel snapshots in the window")
    losing = returns.filter(pl.col("net_msat") < 0).sort("net_msat")
    best = returns.sort("annualised_pct", descending=True, nulls_last=True).row(0, named=True)
    total = int(returns["net_msat"].sum())
    evidence = {
        "channels": returns.height,
        "net_msat": total,
        "best": f"{best['node_name']} {best['scid']} {best['annualised_pct'] or 0:.4f}%/year",
        "sources": sorted(set(returns["source"].to_list())),
    }
    if losing.is_empty():
        return passed(
            name,
            f"{returns.height} channels, net {sat(total)}; none lost money; "
            f"best {evidence['best']}",
            evidence,
        )
    listed = [
        f"{r['node_name']} {r['scid']}: revenue {sat(r['revenue_msat'])}, costs "
        f"{sat(r['cost_msat'])} ({r['annualised_pct']:.4f}%/year on capacity)"
        for r in losing.iter_rows(named=True)
    ]
    return fired(
        name,
        Severity.INFO,
        f"{losing.height} of {returns.height} channels cost more than they earned: "
        + "; ".join(listed[:3]),
        "See `select * from channel_returns`: a channel that keeps losing is a close candidate",
        {**evidence, "losing": listed[:MAX_LISTED]},
    )
