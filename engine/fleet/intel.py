"""Fleet fee intelligence: what every member sees competitors charge toward each peer (pure).

Each member's collect stores the channel_updates it sees toward its own peers; merged, the fleet
knows the market toward every peer any member has. The latest policy per (scid, direction) is
one competitor's price; the quartiles per destination peer are the prior the fee controller can
start from where its own channel has no history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import polars as pl

INTEL_SCHEMA: dict[str, pl.DataType] = {
    "scid": pl.String(),
    "direction": pl.Int64(),
    "last_update": pl.Int64(),
    "source_id": pl.String(),
    "peer_id": pl.String(),
    "observer_id": pl.String(),
    "is_ours": pl.Boolean(),
    "fee_ppm": pl.Int64(),
    "active": pl.Boolean(),
}


def merge_fee_intelligence(
    policies: pl.DataFrame, member_ids: Iterable[str], now: datetime
) -> pl.DataFrame:
    """One row per destination peer: competitors' ppm quartiles, how many channels and sources
    they come from, and how many members contributed observations."""
    ours = list(member_ids)
    frame = policies.select([pl.col(c).cast(t) for c, t in INTEL_SCHEMA.items()])
    latest = frame.sort("last_update").unique(
        subset=["scid", "direction"], keep="last", maintain_order=True
    )
    competitors = latest.filter(
        pl.col("active") & ~pl.col("is_ours") & ~pl.col("source_id").is_in(ours)
    )
    observers = frame.group_by("peer_id").agg(pl.col("observer_id").n_unique().alias("observers"))
    return (
        competitors.group_by("peer_id")
        .agg(
            pl.len().cast(pl.Int64).alias("channels"),
            pl.col("source_id").n_unique().cast(pl.Int64).alias("sources"),
            pl.col("fee_ppm").median().alias("median_ppm"),
            pl.col("fee_ppm").quantile(0.25, interpolation="linear").alias("p25_ppm"),
            pl.col("fee_ppm").quantile(0.75, interpolation="linear").alias("p75_ppm"),
            pl.col("fee_ppm").min().alias("min_ppm"),
            pl.col("fee_ppm").max().alias("max_ppm"),
            pl.col("last_update").max().alias("latest_update"),
        )
        .join(observers, on="peer_id", how="left")
        .with_columns(
            pl.col("observers").cast(pl.Int64),
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("computed_at"),
        )
        .sort("peer_id")
    )
