"""Detectors of the money loops: rebalances that never succeed, a budget table of zeros, fee
changes whose outcome is never measured (the audit's findings 3, 7 and 8)."""

from __future__ import annotations

from typing import Any

import polars as pl

from engine.report.base import (
    counts,
    fired,
    fmt_counts,
    not_measurable,
    passed,
    reason_kind,
    sat,
)
from models.report import Finding, ReportConfig, Severity

FINISHED_STATES = ("succeeded", "failed", "released")


def detect_rebalances_failing(attempts: pl.DataFrame, config: ReportConfig) -> Finding:
    """A node whose last N finished (non-dry-run) rebalance attempts all failed."""
    name = "rebalances_failing"
    done = attempts.filter(~pl.col("dry_run") & pl.col("state").is_in(FINISHED_STATES)).sort(
        "proposed_at"
    )
    if done.is_empty():
        return not_measurable(
            name,
            f"no finished rebalance attempt in the last {config.history_window_s // 86_400} d",
        )
    nodes: list[dict[str, Any]] = []
    parts: list[str] = []
    for (node,), rows in done.group_by("node_name", maintain_order=True):
        recent = rows.tail(config.rebalance_recent_attempts)
        succeeded = int((recent["state"] == "succeeded").sum())
        failed = int((recent["state"] == "failed").sum())
        released = int((recent["state"] == "released").sum())
        amounts = sorted(set(recent["amount_msat"].to_list()))
        reasons = counts(recent["failure_reason"].drop_nulls().to_list())
        nodes.append(
            {
                "node": node,
                "recent": recent.height,
                "succeeded": succeeded,
                "failed": failed,
                "released": released,
                "amount_msat": amounts,
                "reasons": reasons,
            }
        )
        if succeeded == 0 and recent.height >= config.rebalance_min_attempts:
            parts.append(
                f"{node}: last {recent.height} attempts all failed ({failed} failed, {released} "
                f"never ran; {', '.join(sat(a) for a in amounts)}"
                + (f"; {fmt_counts(reasons)}" if reasons else "")
                + ")"
            )
    evidence = {"nodes": nodes}
    if not parts:
        return passed(
            name,
            "every node with rebalances had a success among its last "
            f"{config.rebalance_recent_attempts} attempts",
            evidence,
        )
    return fired(
        name,
        Severity.CRITICAL,
        "; ".join(parts),
        "Investigate the failure reasons in rebalance_attempts; NoRoutes/NoCheapRoute with "
        "large amounts usually means rebalance.chunk_sat is too big for the channels",
        evidence,
    )


def detect_zero_budget_rows(budget: pl.DataFrame, config: ReportConfig) -> Finding:
    """Budget rows that are all zero, or that say 0 earned on days forwards earned fees."""
    name = "zero_budget_rows"
    if budget.is_empty():
        return not_measurable(
            name,
            f"no budget_ledger row in the last {config.history_window_s // 86_400} d "
            "(has the rebalance loop run?)",
        )
    amount_cols = [
        "budget_msat",
        "earned_msat",
        "rebalance_spent_msat",
        "onchain_spent_msat",
        "reserved_msat",
    ]
    all_zero = budget.filter(pl.all_horizontal([pl.col(c) == 0 for c in amount_cols]))
    missed = budget.filter((pl.col("earned_msat") == 0) & (pl.col("forwards_earned_msat") > 0))
    evidence = {
        "rows": budget.height,
        "all_zero_rows": all_zero.height,
        "earned_zero_while_forwards_earned": [
            {
                "node": r["node_name"],
                "day": str(r["day"]),
                "forwards_msat": r["forwards_earned_msat"],
            }
            for r in missed.head(10).iter_rows(named=True)
        ],
    }
    if all_zero.height < budget.height and missed.is_empty():
        return passed(
            name,
            f"{budget.height} budget rows, {all_zero.height} all-zero; earnings agree with "
            "forwards",
            evidence,
        )
    problems = []
    if all_zero.height == budget.height:
        problems.append(f"all {budget.height} budget rows are zero (budget, earned, spent)")
    if not missed.is_empty():
        problems.append(
            f"{missed.height} day(s) show 0 earned while settled forwards earned "
            f"{sat(int(missed['forwards_earned_msat'].sum()))}"
        )
    return fired(
        name,
        Severity.WARNING,
        "; ".join(problems),
        "Budget enforcement is blind: check that the rebalance loop rewrites budget_ledger from "
        "forwards and attempts (rebalance run heartbeats, budget.daily_budget_sat)",
        evidence,
    )


def detect_zero_fee_outcomes(outcomes: pl.DataFrame, config: ReportConfig) -> Finding:
    """Fee changes whose outcomes are all unmeasurable or all measured as exactly 0."""
    name = "zero_fee_outcomes"
    total = outcomes.height
    if total < config.fee_outcomes_min:
        return not_measurable(
            name,
            f"{total} fee outcome(s) in the last {config.history_window_s // 86_400} d (need "
            f"{config.fee_outcomes_min} to judge)",
        )
    measured = outcomes.filter(pl.col("status") == "measured")
    zero = measured.filter(pl.col("actual_benefit_msat") == 0)
    helped = int((measured["actual_benefit_msat"] > 0).sum())
    net_msat = int(measured["actual_benefit_msat"].sum() or 0)
    reasons = counts(
        reason_kind(d) for d in outcomes.filter(pl.col("status") != "measured")["detail"]
    )
    evidence = {
        "outcomes": total,
        "measured": measured.height,
        "insufficient_data": total - measured.height,
        "measured_zero": zero.height,
        "helped": helped,
        "net_benefit_msat": net_msat,
        "insufficient_reasons": reasons,
    }
    if measured.height and zero.height < measured.height:
        return passed(
            name,
            f"{measured.height} of {total} fee outcomes measured, {helped} helped, net "
            f"{sat(net_msat)}",
            evidence,
        )
    if not measured.height:
        summary = (
            f"none of {total} fee-change outcomes could be measured (all insufficient_data: "
            f"{fmt_counts(reasons, 2)})"
        )
    else:
        summary = f"all {measured.height} measured fee-change outcomes show exactly 0 benefit"
    return fired(
        name,
        Severity.WARNING,
        summary,
        "Nothing can be learned from fee changes: check that forwards are collected for the "
        "changed channels and that control channels exist (fee_outcomes.detail)",
        evidence,
    )
