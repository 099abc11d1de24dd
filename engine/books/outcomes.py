"""Outcomes of opens, closes and external changes, measured on bookkeeper's per-channel ledger.

Windows are whole UTC days (the ledger is daily): an action on day D is measured over
[D, D + horizon) after it, and a close's counterfactual over [D - horizon, D) before it.

- open: revenue routed out through the new channel minus what it cost (its funding's on-chain
  fee and any rebalance fee paid through it). A 7-day row is usually negative: the on-chain fee
  is paid on day one, the revenue accrues.
- close: freed capital (the channel's last local balance), lost revenue (what it earned over
  the horizon before the close), the rebalance fees it no longer costs (paid through it over the
  same days) and its close fee; benefit = avoided fees - lost revenue - close fee. Freed capital
  earns nothing until it is redeployed, so it is reported, not valued.
- external change: the channel's bookkeeper revenue over 7 days after vs 7 days before.

Never a silent 0: with no channel to measure a row says insufficient_data and why.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl


def _window(ledger: pl.DataFrame, account: str, start: date, end: date) -> dict[str, int]:
    rows = ledger.filter(
        (pl.col("account") == account) & (pl.col("day") >= start) & (pl.col("day") < end)
    )
    return {
        c: int(rows[c].sum() or 0)
        for c in ("routed_msat", "rebalance_fee_msat", "onchain_fee_msat", "net_msat")
    }


def _base(row: dict[str, Any], action_type: str, now: datetime) -> dict[str, Any]:
    return {
        "action_type": action_type,
        "action_id": row["action_id"],
        "horizon_days": int(row["horizon_days"]),
        "node_id": row["node_id"],
        "scid": row.get("scid"),
        "acted_at": row["acted_at"],
        "measured_at": now,
        "status": "insufficient_data",
        "revenue_msat": None,
        "cost_msat": None,
        "freed_capital_msat": None,
        "lost_revenue_msat": None,
        "actual_benefit_msat": None,
        "predicted_benefit_msat": None,
        "decision_horizon_days": None,
    }


def _pro_rata(row: dict[str, Any], decision_horizon_days: int) -> dict[str, Any]:
    predicted = row.get("predicted_benefit_msat")
    scaled = None
    if predicted is not None:
        scaled = round(int(predicted) * int(row["horizon_days"]) / decision_horizon_days)
    return {"predicted_benefit_msat": scaled, "decision_horizon_days": decision_horizon_days}


def open_outcome(
    row: dict[str, Any],
    accounts: pl.DataFrame,
    ledger: pl.DataFrame,
    now: datetime,
    decision_horizon_days: int,
) -> dict[str, Any]:
    out = _base(row, "channel_open", now) | _pro_rata(row, decision_horizon_days)
    acted: datetime = row["acted_at"]
    channel = accounts.filter(
        (pl.col("peer_id") == row["peer_id"]) & (pl.col("first_seen_at") >= acted)
    ).sort("first_seen_at")
    if channel.is_empty():
        out["detail"] = f"no channel with peer {row['peer_id']} seen after the open"
        return out
    account, scid = channel["account"][0], channel["scid"][0]
    start = acted.date()
    w = _window(ledger, account, start, start + timedelta(days=int(row["horizon_days"])))
    cost = w["onchain_fee_msat"] + w["rebalance_fee_msat"]
    out.update(
        scid=scid,
        status="measured",
        revenue_msat=w["routed_msat"],
        cost_msat=cost,
        actual_benefit_msat=w["routed_msat"] - cost,
        detail=(
            f"{scid}: routed {w['routed_msat']} msat out in {row['horizon_days']} days against "
            f"{w['onchain_fee_msat']} msat on-chain and {w['rebalance_fee_msat']} msat "
            "rebalance fees"
        ),
    )
    return out


def close_outcome(
    row: dict[str, Any],
    accounts: pl.DataFrame,
    ledger: pl.DataFrame,
    now: datetime,
    decision_horizon_days: int,
) -> dict[str, Any]:
    out = _base(row, "channel_close", now) | _pro_rata(row, decision_horizon_days)
    match = accounts.filter(pl.col("scid") == row["scid"])
    if match.is_empty():
        out["detail"] = f"{row['scid']}: no bookkeeper account known for the channel"
        return out
    account = match["account"][0]
    day, horizon = row["acted_at"].date(), timedelta(days=int(row["horizon_days"]))
    before = _window(ledger, account, day - horizon, day)
    after = _window(ledger, account, day, day + horizon)
    lost, avoided, close_fee = (
        before["routed_msat"],
        before["rebalance_fee_msat"],
        after["onchain_fee_msat"],
    )
    freed = row.get("freed_capital_msat")
    out.update(
        status="measured",
        revenue_msat=after["routed_msat"],
        cost_msat=close_fee,
        freed_capital_msat=None if freed is None else int(freed),
        lost_revenue_msat=lost,
        actual_benefit_msat=avoided - lost - close_fee,
        detail=(
            f"{row['scid']}: lost {lost} msat routed over the {row['horizon_days']} days before, "
            f"avoided {avoided} msat rebalance fees, paid {close_fee} msat to close; freed "
            f"{freed} msat (not valued until redeployed)"
        ),
    )
    return out


def external_outcome(
    row: dict[str, Any], accounts: pl.DataFrame, ledger: pl.DataFrame, now: datetime
) -> dict[str, Any]:
    out = _base(row, "external_change", now)
    match = accounts.filter(pl.col("scid") == row["scid"])
    if match.is_empty():
        out["detail"] = f"{row['scid']}: no bookkeeper account known for the channel"
        return out
    account = match["account"][0]
    day, horizon = row["acted_at"].date(), timedelta(days=int(row["horizon_days"]))
    before = _window(ledger, account, day - horizon, day)
    after = _window(ledger, account, day, day + horizon)
    out.update(
        status="measured",
        revenue_msat=after["routed_msat"],
        actual_benefit_msat=after["routed_msat"] - before["routed_msat"],
        detail=(
            f"{row['scid']}: {row['field']} {row['old_value']} -> {row['new_value']} outside "
            f"hiveops; routed {before['routed_msat']} msat the {row['horizon_days']} days before, "
            f"{after['routed_msat']} msat after"
        ),
    )
    return out


OUTCOME_SCHEMA = {
    "action_type": pl.String,
    "action_id": pl.String,
    "horizon_days": pl.Int32,
    "node_id": pl.String,
    "scid": pl.String,
    "acted_at": pl.Datetime("us", "UTC"),
    "measured_at": pl.Datetime("us", "UTC"),
    "status": pl.String,
    "revenue_msat": pl.Int64,
    "cost_msat": pl.Int64,
    "freed_capital_msat": pl.Int64,
    "lost_revenue_msat": pl.Int64,
    "actual_benefit_msat": pl.Int64,
    "predicted_benefit_msat": pl.Int64,
    "decision_horizon_days": pl.Int32,
    "detail": pl.String,
}
