"""The numbers behind the report's charts and its P&L section (pure; drawing is in tasks)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

import polars as pl

from engine.report.channels import mark_fleet

PNL_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "day": pl.Date,
    "node_name": pl.String,
    "revenue_msat": pl.Int64,
    "forwards": pl.Int64,
    "onchain_cost_msat": pl.Int64,
    "rebalance_cost_msat": pl.Int64,
}


def pnl_by_day(pnl_daily: pl.DataFrame, rebalance_costs: pl.DataFrame | None) -> pl.DataFrame:
    """Revenue, costs, net and cumulative net per node per day (days without data are absent)."""
    base = pnl_daily.select(
        "day", "node_name", "revenue_msat", "forwards", "onchain_cost_msat"
    ).with_columns(pl.lit(0, dtype=pl.Int64).alias("rebalance_cost_msat"))
    if rebalance_costs is not None and not rebalance_costs.is_empty():
        reb = rebalance_costs.select(
            "day",
            "node_name",
            pl.lit(0, dtype=pl.Int64).alias("revenue_msat"),
            pl.lit(0, dtype=pl.Int64).alias("forwards"),
            pl.lit(0, dtype=pl.Int64).alias("onchain_cost_msat"),
            pl.col("rebalance_cost_msat").cast(pl.Int64),
        )
        base = pl.concat([base.cast(PNL_SCHEMA), reb.cast(PNL_SCHEMA)])
    frame = (
        base.cast(PNL_SCHEMA)
        .group_by("day", "node_name")
        .agg(pl.all().sum())
        .with_columns(
            (
                pl.col("revenue_msat") - pl.col("onchain_cost_msat") - pl.col("rebalance_cost_msat")
            ).alias("net_msat")
        )
        .sort("node_name", "day")
    )
    return frame.with_columns(
        pl.col("net_msat").cum_sum().over("node_name").alias("cumulative_net_msat")
    )


@dataclass(frozen=True)
class PnlTotals:
    node_name: str
    revenue_msat: int
    forwards: int
    onchain_cost_msat: int
    rebalance_cost_msat: int

    @property
    def cost_msat(self) -> int:
        return self.onchain_cost_msat + self.rebalance_cost_msat

    @property
    def net_msat(self) -> int:
        return self.revenue_msat - self.cost_msat


def pnl_totals(by_day: pl.DataFrame) -> tuple[list[PnlTotals], PnlTotals]:
    """Per node totals, and the fleet's."""
    cols = ["revenue_msat", "forwards", "onchain_cost_msat", "rebalance_cost_msat"]
    nodes = [
        PnlTotals(node_name=r["node_name"], **{c: int(r[c]) for c in cols})
        for r in by_day.group_by("node_name")
        .agg(pl.col(c).sum() for c in cols)
        .sort("node_name")
        .iter_rows(named=True)
    ]
    fleet = PnlTotals(node_name="fleet", **{c: sum(getattr(n, c) for n in nodes) for c in cols})
    return nodes, fleet


def fleet_cumulative(by_day: pl.DataFrame) -> list[tuple[str, int]]:
    """(day, cumulative fleet net msat) for the P&L chart."""
    if by_day.is_empty():
        return []
    daily = by_day.group_by("day").agg(pl.col("net_msat").sum()).sort("day")
    return [
        (str(day), int(total))
        for day, total in zip(daily["day"], daily["net_msat"].cum_sum(), strict=True)
    ]


def node_cumulative(by_day: pl.DataFrame) -> dict[str, list[tuple[str, int]]]:
    return {
        str(node): [
            (str(d), int(v)) for d, v in rows.select("day", "cumulative_net_msat").iter_rows()
        ]
        for (node,), rows in by_day.sort("day").group_by("node_name", maintain_order=True)
    }


def balance_buckets(
    channels: pl.DataFrame, member_ids: Set[str], buckets: int = 10
) -> list[dict[str, object]]:
    """Channels per local-share bucket (0-10% … 90-100%), external and fleet counted apart."""
    external, fleet = [0] * buckets, [0] * buckets
    if not channels.is_empty():
        marked = mark_fleet(channels, member_ids).filter(pl.col("state") == "CHANNELD_NORMAL")
        for share, is_fleet in marked.select("local_share", "is_fleet").iter_rows():
            index = min(int(share * buckets), buckets - 1)
            (fleet if is_fleet else external)[index] += 1
    return [
        {
            "bucket": f"{i * 100 // buckets}-{(i + 1) * 100 // buckets}%",
            "external": external[i],
            "fleet": fleet[i],
        }
        for i in range(buckets)
    ]
