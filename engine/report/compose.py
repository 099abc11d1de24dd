"""From the audit's inputs and findings to the report's context and chart series (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from engine.report.base import AuditInputs
from engine.report.charts import (
    PnlTotals,
    balance_buckets,
    fleet_cumulative,
    node_cumulative,
    pnl_by_day,
    pnl_totals,
)
from engine.report.markdown import ReportContext
from models.report import Finding


@dataclass(frozen=True)
class ChartData:
    """What the two PNG charts draw."""

    pnl_by_node: dict[str, list[tuple[str, int]]]  # node -> [(day, cumulative net msat)]
    pnl_fleet: list[tuple[str, int]]
    balance: list[dict[str, Any]]  # bucket, external, fleet


def _pnl(inputs: AuditInputs) -> pl.DataFrame:
    return pnl_by_day(inputs.frame("pnl_daily"), inputs.frames.get("rebalance_costs"))


def chart_data(inputs: AuditInputs) -> ChartData:
    by_day = _pnl(inputs)
    return ChartData(
        pnl_by_node=node_cumulative(by_day),
        pnl_fleet=fleet_cumulative(by_day),
        balance=balance_buckets(inputs.frame("channels"), inputs.member_ids()),
    )


def latest_budget(budget: pl.DataFrame | None) -> list[dict[str, Any]]:
    """Each node's newest budget_ledger day."""
    if budget is None or budget.is_empty():
        return []
    return (
        budget.sort("day")
        .group_by("node_name", maintain_order=True)
        .last()
        .sort("node_name")
        .to_dicts()
    )


def compose_report(
    inputs: AuditInputs,
    findings: list[Finding],
    run_id: str,
    charts: dict[str, str],
    charts_note: str = "",
) -> ReportContext:
    by_day = _pnl(inputs)
    nodes, fleet = pnl_totals(by_day)
    status = inputs.frame("node_status")
    known = {n.node_name for n in nodes}
    nodes = sorted(
        [
            *nodes,
            *(PnlTotals(name, 0, 0, 0, 0) for name in status["node_name"] if name not in known),
        ],
        key=lambda n: n.node_name,
    )
    return ReportContext(
        generated_at=inputs.now,
        run_id=run_id,
        findings=findings,
        node_status=status,
        pnl_nodes=nodes,
        pnl_fleet=fleet,
        first_day=str(by_day["day"].min()) if not by_day.is_empty() else None,
        budget_latest=latest_budget(inputs.frames.get("budget_rows")),
        freshness=inputs.freshness,
        watched_loops=inputs.orchestration.loops,
        balance_buckets=balance_buckets(inputs.frame("channels"), inputs.member_ids()),
        charts=charts,
        charts_note=charts_note,
    )
