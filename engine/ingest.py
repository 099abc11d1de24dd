"""Row shaping for forwards, gossip policies and on-chain costs (pure; frames in, frames out)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import polars as pl

from models.cln import GossipChannel, IncomeEvent

COST_TAGS = frozenset({"onchain_fee"})


def _epoch_to_utc(column: str) -> pl.Expr:
    return (
        (pl.col(column) * 1_000_000)
        .round()
        .cast(pl.Int64)
        .pipe(pl.from_epoch, time_unit="us")
        .dt.replace_time_zone("UTC")
    )


def forward_rows(page: pl.DataFrame, node_id: str) -> pl.DataFrame:
    """A parsed listforwards page as warehouse rows (epoch floats become UTC timestamps)."""
    return page.select(
        pl.lit(node_id).alias("node_id"),
        "created_index",
        "updated_index",
        "in_channel",
        "out_channel",
        "in_htlc_id",
        "out_htlc_id",
        "in_msat",
        "out_msat",
        "fee_msat",
        "status",
        pl.col("failcode").cast(pl.Int32),
        "failreason",
        _epoch_to_utc("received_time").alias("received_at"),
        _epoch_to_utc("resolved_time").alias("resolved_at"),
        "style",
    )


def rows_from(page: pl.DataFrame, start: int, column: str) -> pl.DataFrame:
    """The rows of a page at or past `start`: a node that ignores `start` repeats stored ones."""
    return page.filter(pl.col(column) >= start)


def index_reset(stored: dict[str, Any], probe: pl.DataFrame) -> str | None:
    """Why the node's forward at our high-water mark is not the one we stored, if it is not.

    `probe` is the node's listforwards from that created_index on (limit 1). A row past it means
    the stored one was deleted (autoclean, delforward): fine. A different row at the same index
    means lightningd's database was replaced or restored, and its new forwards would collide
    with stored ones under the same keys.
    """
    index = int(stored["created_index"])
    same = probe.filter(pl.col("created_index") == index)
    if same.is_empty():
        return None
    node = same.row(0, named=True)
    received_s = node["received_time"]
    checks = {
        "in_channel": (stored["in_channel"], node["in_channel"]),
        "in_msat": (stored["in_msat"], node["in_msat"]),
        "received_time": (
            round(stored["received_at"].timestamp(), 3),
            None if received_s is None else round(float(received_s), 3),
        ),
    }
    differ = [f"{k} stored {a} != node {b}" for k, (a, b) in checks.items() if a != b]
    if not differ:
        return None
    return f"the node's forward created_index={index} is not the one stored ({'; '.join(differ)})"


def policy_rows(
    channels: list[GossipChannel],
    *,
    peer_id: str,
    observer_id: str,
    our_ids: set[str],
    seen_at: datetime,
) -> pl.DataFrame:
    """Channel updates *toward* `peer_id` (what competitors and we charge to reach it)."""
    rows = [
        {
            "scid": c.short_channel_id,
            "direction": c.direction,
            "last_update": c.last_update,
            "source_id": c.source,
            "peer_id": peer_id,
            "observer_id": observer_id,
            "is_ours": c.source in our_ids,
            "capacity_msat": c.amount_msat,
            "base_fee_msat": c.base_fee_millisatoshi,
            "fee_ppm": c.fee_per_millionth,
            "active": c.active,
            "htlc_max_msat": c.htlc_maximum_msat,
            "first_seen_at": seen_at,
        }
        for c in channels
        if c.destination == peer_id
    ]
    return pl.DataFrame(rows, schema=POLICY_SCHEMA)


def cost_rows(events: list[IncomeEvent], node_id: str) -> pl.DataFrame:
    """On-chain fees from bookkeeper income events, keyed so re-reads add nothing."""
    rows = []
    for e in events:
        if e.tag not in COST_TAGS or e.debit_msat == 0:
            continue
        key_source = f"{e.account}|{e.tag}|{e.timestamp}|{e.txid}|{e.outpoint}|{e.debit_msat}"
        rows.append(
            {
                "node_id": node_id,
                "cost_key": hashlib.sha256(key_source.encode()).hexdigest()[:24],
                "occurred_at": datetime.fromtimestamp(e.timestamp, tz=UTC),
                "account": e.account,
                "tag": e.tag,
                "amount_msat": e.debit_msat,
                "txid": e.txid,
                "outpoint": e.outpoint,
                "description": e.description,
            }
        )
    return pl.DataFrame(rows, schema=COST_SCHEMA)


POLICY_SCHEMA = {
    "scid": pl.String,
    "direction": pl.Int32,
    "last_update": pl.Int64,
    "source_id": pl.String,
    "peer_id": pl.String,
    "observer_id": pl.String,
    "is_ours": pl.Boolean,
    "capacity_msat": pl.Int64,
    "base_fee_msat": pl.Int64,
    "fee_ppm": pl.Int32,
    "active": pl.Boolean,
    "htlc_max_msat": pl.Int64,
    "first_seen_at": pl.Datetime("us", "UTC"),
}

COST_SCHEMA = {
    "node_id": pl.String,
    "cost_key": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
    "account": pl.String,
    "tag": pl.String,
    "amount_msat": pl.Int64,
    "txid": pl.String,
    "outpoint": pl.String,
    "description": pl.String,
}
