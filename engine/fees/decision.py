"""Assembling a FeeDecision: the model's predictions and the facts every decision stores (pure).

The audit's 1,079 decisions all carried predicted_benefit = 0 and snapshot_metrics = NULL, so
nothing could be learnt from them. Here every decision states the revenue the model expects
before and after, the benefit over the evaluation window, and the inputs it saw, as JSON-safe
values the flow stores verbatim.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from engine.fees.bandit import RevenueModel
from models.fees import (
    ChannelFeeState,
    FeeDecision,
    FeeHistory,
    FeePolicy,
    FeeReason,
    FeeTuning,
    MarketView,
    PolicyKind,
)


def assemble_decision(
    channel: ChannelFeeState,
    now: datetime,
    kind: PolicyKind,
    reason: FeeReason,
    new_fee: tuple[int, int],
    *,
    model: RevenueModel | None,
    inputs: dict[str, Any],
    tuning: FeeTuning,
) -> FeeDecision:
    """A FeeDecision with the model's predictions (fleet: 0 by design, said so in inputs).

    `new_fee` is (base_fee_msat, fee_ppm). Shared with the baselines, so every strategy's
    predictions come from the same model and stay comparable.
    """
    new_base_msat, new_ppm = new_fee
    if model is None:
        before_per_h = after_per_h = 0.0
    else:
        before_per_h = model.mean_revenue_msat_per_h(channel.fee_ppm, channel.base_fee_msat)
        after_per_h = model.mean_revenue_msat_per_h(new_ppm, new_base_msat)
    window_h = tuning.evaluation_window_s / 3600
    return FeeDecision(
        node_id=channel.node_id,
        scid=channel.scid,
        peer_id=channel.peer_id,
        decided_at=now,
        policy_kind=kind,
        reason=reason,
        old_base_fee_msat=channel.base_fee_msat,
        old_fee_ppm=channel.fee_ppm,
        new_base_fee_msat=new_base_msat,
        new_fee_ppm=new_ppm,
        apply=(new_base_msat, new_ppm) != (channel.base_fee_msat, channel.fee_ppm),
        predicted_revenue_msat_per_day_before=round(before_per_h * 24),
        predicted_revenue_msat_per_day_after=round(after_per_h * 24),
        predicted_benefit_msat=round((after_per_h - before_per_h) * window_h),
        evaluation_window_s=tuning.evaluation_window_s,
        inputs=inputs,
    )


def context_inputs(
    channel: ChannelFeeState,
    history: FeeHistory,
    market: MarketView,
    policy: FeePolicy,
    now: datetime,
) -> dict[str, Any]:
    """The facts every decision stores, whatever rule decides (JSON-safe values only)."""
    since_s = None
    if channel.last_change_at is not None:
        since_s = round((now - channel.last_change_at).total_seconds())
    return {
        "policy_kind": str(policy.kind),
        "policy_scope": policy.scope,
        "policy_note": policy.note,
        "local_share": round(channel.local_share, 4),
        "capacity_msat": channel.capacity_msat,
        "since_last_change_s": since_s,
        "market_competitors": len(market.competitor_fee_ppm),
        "market_p25_ppm": market.quantile_ppm(0.25),
        "market_median_ppm": market.median_ppm,
        "market_p75_ppm": market.quantile_ppm(0.75),
        "fleet_observations": len(market.fleet_levels),
        "history_forwards": history.total_forwards,
        "history_hours": round(history.total_hours, 2),
        "since_change_hours": None
        if history.since_change is None
        else round(history.since_change.hours, 2),
    }


def json_float(value: float) -> float | None:
    """Round for storage; infinities (a gain over an arm sampled at 0) are stored as null."""
    return round(value, 4) if math.isfinite(value) else None
