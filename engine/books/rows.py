"""Bookkeeper responses as warehouse rows (pure).

bkpr-listincome events have no id. A row's key is a hash of its fields and its rank among
identical events in the same read: the collector replaces every stored event after the read's
start, so the same second read twice gets the same keys, and two identical events (the same fee
on the same channel in the same second) stay two rows.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import polars as pl

from models.books import ChannelApy
from models.cln import IncomeEvent, PeerChannel

INCOME_SCHEMA = {
    "node_id": pl.String,
    "income_key": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
    "account": pl.String,
    "tag": pl.String,
    "credit_msat": pl.Int64,
    "debit_msat": pl.Int64,
    "payment_id": pl.String,
    "txid": pl.String,
    "outpoint": pl.String,
    "description": pl.String,
    "collected_at": pl.Datetime("us", "UTC"),
}

ACCOUNT_SCHEMA = {
    "node_id": pl.String,
    "account": pl.String,
    "scid": pl.String,
    "peer_id": pl.String,
    "first_seen_at": pl.Datetime("us", "UTC"),
}

APY_SCHEMA = {
    "node_id": pl.String,
    "collected_at": pl.Datetime("us", "UTC"),
    "window_start": pl.Datetime("us", "UTC"),
    "account": pl.String,
    "routed_out_msat": pl.Int64,
    "routed_in_msat": pl.Int64,
    "fees_out_msat": pl.Int64,
    "fees_in_msat": pl.Int64,
    "lease_fee_paid_msat": pl.Int64,
    "lease_fee_earned_msat": pl.Int64,
    "pushed_out_msat": pl.Int64,
    "pushed_in_msat": pl.Int64,
    "our_start_balance_msat": pl.Int64,
    "channel_start_balance_msat": pl.Int64,
    "apy_total_pct": pl.Float64,
    "apy_out_pct": pl.Float64,
}


def income_rows(events: list[IncomeEvent], node_id: str, collected_at: datetime) -> pl.DataFrame:
    seen: dict[str, int] = {}
    rows = []
    for e in events:
        fields = "|".join(
            str(v)
            for v in (
                e.account,
                e.tag,
                e.credit_msat,
                e.debit_msat,
                e.timestamp,
                e.payment_id,
                e.txid,
                e.outpoint,
                e.description,
            )
        )
        rank = seen.get(fields, 0)
        seen[fields] = rank + 1
        rows.append(
            {
                "node_id": node_id,
                "income_key": hashlib.sha256(f"{fields}|{rank}".encode()).hexdigest()[:32],
                "occurred_at": datetime.fromtimestamp(e.timestamp, tz=UTC),
                "account": e.account,
                "tag": e.tag,
                "credit_msat": e.credit_msat,
                "debit_msat": e.debit_msat,
                "payment_id": e.payment_id,
                "txid": e.txid,
                "outpoint": e.outpoint,
                "description": e.description,
                "collected_at": collected_at,
            }
        )
    return pl.DataFrame(rows, schema=INCOME_SCHEMA)


def account_rows(channels: list[PeerChannel], node_id: str, seen_at: datetime) -> pl.DataFrame:
    """channel_id -> scid for every channel the node lists (bookkeeper's account names)."""
    rows = [
        {
            "node_id": node_id,
            "account": c.channel_id,
            "scid": c.short_channel_id,
            "peer_id": c.peer_id,
            "first_seen_at": seen_at,
        }
        for c in channels
        if c.channel_id
    ]
    return pl.DataFrame(rows, schema=ACCOUNT_SCHEMA)


def pct(text: str | None) -> float | None:
    """CLN's "1.2345%" as 1.2345; None when absent or unreadable."""
    if not text:
        return None
    try:
        return float(text.rstrip("%"))
    except ValueError:
        return None


def apy_rows(
    entries: list[ChannelApy], node_id: str, collected_at: datetime, window_start: datetime
) -> pl.DataFrame:
    rows = [
        {
            "node_id": node_id,
            "collected_at": collected_at,
            "window_start": window_start,
            "account": e.account,
            "routed_out_msat": e.routed_out_msat,
            "routed_in_msat": e.routed_in_msat,
            "fees_out_msat": e.fees_out_msat,
            "fees_in_msat": e.fees_in_msat,
            "lease_fee_paid_msat": e.lease_fee_paid_msat,
            "lease_fee_earned_msat": e.lease_fee_earned_msat,
            "pushed_out_msat": e.pushed_out_msat,
            "pushed_in_msat": e.pushed_in_msat,
            "our_start_balance_msat": e.our_start_balance_msat,
            "channel_start_balance_msat": e.channel_start_balance_msat,
            "apy_total_pct": pct(e.apy_total),
            "apy_out_pct": pct(e.apy_out),
        }
        for e in entries
    ]
    return pl.DataFrame(rows, schema=APY_SCHEMA)
