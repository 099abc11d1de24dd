"""Opportunities on existing channels: mispriced fees, depleted channels, zombie and bleeding ones.

Each estimate is the scan's own economics over the type's horizon, deliberately simple: the
predictor scales it by what this type of action really earned (engine.advisor.predict), so a
systematically optimistic formula is corrected by outcomes instead of by hand-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from engine.fees.inputs import build_market_view
from engine.fees.policy import resolve_policy
from models.advisor import AdvisorConfig, Opportunity, OpportunityType, OwnerLoop
from models.fees import FeePolicy, PolicyKind

PPM = 1_000_000
MSAT_PER_SAT = 1_000
DAY_S = 86_400
YEAR_DAYS = 365
MISPRICED_RATIO = 1.5  # our fee more than ×1.5 or below ÷1.5 the market median
ELASTICITY_ABOVE_MARKET = 1.5  # over-priced: lowering the fee wins volume (elastic)
ELASTICITY_BELOW_MARKET = 0.5  # under-priced: raising it loses little volume (inelastic)
DEPLETED_SHARE = 0.2
REBALANCE_TARGET_SHARE = 0.5


@dataclass(frozen=True)
class ChannelInputs:
    """One node's channels with their traffic, as the advisor.channel_stats query shapes them."""

    node_id: str
    channels: pl.DataFrame  # advisor.channel_stats
    peer_policies: pl.DataFrame  # advisor.peer_policies
    policies: tuple[FeePolicy, ...]
    window_s: int  # what the traffic columns cover
    fee_step_pct: float  # the fee loop's max step (fees.max_step_pct)
    rebalance_chunk_sat: int
    rebalance_max_fee_ppm: int


def _metrics(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The inputs a decision saw, JSON-ready (stored NOT NULL as snapshot_metrics)."""
    out = {
        k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }
    return {**out, **extra}


def scan_channels(inputs: ChannelInputs, config: AdvisorConfig, now: datetime) -> list[Opportunity]:
    found: list[Opportunity] = []
    for row in inputs.channels.sort("scid").iter_rows(named=True):
        if row["is_fleet"] or not row["usable"]:
            continue  # fleet channels are the fleet policy's; a down channel is not priced
        for scan in (_fee, _rebalance, _close):
            opportunity = scan(inputs, row, config, now)
            if opportunity is not None:
                found.append(opportunity)
    return found


def _fee(
    inputs: ChannelInputs, row: dict[str, Any], config: AdvisorConfig, now: datetime
) -> Opportunity | None:
    policy = resolve_policy(
        scid=row["scid"], peer_id=row["peer_id"], is_fleet=False, policies=inputs.policies, now=now
    )
    if policy.kind is not PolicyKind.DYNAMIC:
        return None  # the operator pinned or froze this fee
    market = build_market_view(row["peer_id"], inputs.peer_policies, now=now)
    median = market.median_ppm
    fee_ppm = int(row["fee_ppm"])
    if median is None or median <= 0:
        return None
    ratio = fee_ppm / median
    if 1 / MISPRICED_RATIO <= ratio <= MISPRICED_RATIO:
        return None
    step = inputs.fee_step_pct / 100
    lower = ratio > 1
    new_ppm = (
        max(int(median), round(fee_ppm * (1 - step)))
        if lower
        else min(int(median), max(fee_ppm + 1, round(fee_ppm * (1 + step))))
    )
    if new_ppm == fee_ppm:
        return None
    elasticity = ELASTICITY_ABOVE_MARKET if lower else ELASTICITY_BELOW_MARKET
    volume_per_s = row["out_msat"] / inputs.window_s
    raw, reason = (
        0,
        (
            f"no settled forward out of {row['scid']} in {inputs.window_s // DAY_S} days: "
            f"no observed demand to reprice, so no benefit is claimed"
        ),
    )
    if volume_per_s > 0 and fee_ppm > 0:
        new_volume = volume_per_s * (new_ppm / fee_ppm) ** -elasticity
        delta_per_s = (new_ppm * new_volume - fee_ppm * volume_per_s) / PPM
        raw = round(delta_per_s * config.fee_horizon_s)
        reason = (
            f"{fee_ppm}->{new_ppm} ppm toward the market median {median:.0f} ppm, "
            f"elasticity {elasticity} on {row['out_forwards']} forwards' volume, "
            f"over {config.fee_horizon_s // 3600} h"
        )
    elif fee_ppm == 0:
        reason = f"{row['scid']} charges 0 ppm: revenue at a new fee is unknown, no benefit claimed"
    size = abs(new_ppm - fee_ppm) / max(fee_ppm, 1) * 100
    return Opportunity(
        opportunity_type=OpportunityType.FEE,
        node_id=inputs.node_id,
        target=row["scid"],
        action="setchannel",
        action_params={"scid": row["scid"], "old_fee_ppm": fee_ppm, "new_fee_ppm": new_ppm},
        snapshot_metrics=_metrics(
            row, market_median_ppm=median, competitors=len(market.competitor_fee_ppm)
        ),
        raw_estimate_msat=raw,
        estimate_reason=reason,
        size=size,
        owner_loop=OwnerLoop.FEES,
    )


def _rebalance(
    inputs: ChannelInputs, row: dict[str, Any], config: AdvisorConfig, now: datetime
) -> Opportunity | None:
    capacity, local = int(row["capacity_msat"]), int(row["local_msat"])
    if local / capacity >= DEPLETED_SHARE:
        return None
    demand_msat = int(row["out_msat"]) + int(row["failed_out_msat"])
    if demand_msat == 0:
        return None  # depleted but nobody wants to go out this way: nothing to refill for
    amount_msat = min(
        inputs.rebalance_chunk_sat * MSAT_PER_SAT,
        int(capacity * REBALANCE_TARGET_SHARE) - local,
    )
    if amount_msat <= 0:
        return None
    routed_msat = min(amount_msat, demand_msat * config.rebalance_horizon_s / inputs.window_s)
    revenue_msat = routed_msat * int(row["fee_ppm"]) / PPM
    cost_msat = amount_msat * inputs.rebalance_max_fee_ppm / 2 / PPM
    raw = round(revenue_msat - cost_msat)
    return Opportunity(
        opportunity_type=OpportunityType.REBALANCE,
        node_id=inputs.node_id,
        target=row["scid"],
        action="rebalance_pull",
        action_params={"scid": row["scid"], "amount_msat": amount_msat},
        snapshot_metrics=_metrics(row, demand_msat=demand_msat),
        raw_estimate_msat=raw,
        estimate_reason=(
            f"refill {amount_msat // MSAT_PER_SAT} sat: {routed_msat / MSAT_PER_SAT:.0f} sat "
            f"routed at {row['fee_ppm']} ppm over {config.rebalance_horizon_s // DAY_S} days "
            f"minus a fee at half of {inputs.rebalance_max_fee_ppm} ppm"
        ),
        size=amount_msat / MSAT_PER_SAT,
        owner_loop=OwnerLoop.REBALANCE,
    )


def _close(
    inputs: ChannelInputs, row: dict[str, Any], config: AdvisorConfig, now: datetime
) -> Opportunity | None:
    first_seen = row["first_seen_at"]
    age_days = (now - first_seen.astimezone(UTC)).total_seconds() / DAY_S if first_seen else 0.0
    capital_msat = int(row["local_msat"])
    close_cost_msat = config.close_cost_sat * MSAT_PER_SAT
    horizon_days = config.open_horizon_days
    carry_msat = capital_msat * config.capital_cost_pct_per_year / 100 * horizon_days / YEAR_DAYS
    spent, earned = int(row["rebalance_fee_msat"]), int(row["out_fee_msat"])
    if age_days >= config.close_idle_days and int(row["recent_forwards"]) == 0:
        why = f"zombie: no settled forward in or out for {config.close_idle_days} days"
        raw = round(carry_msat - close_cost_msat)
    elif spent > earned and spent > 0:
        bleed_per_day = (spent - earned) / (inputs.window_s / DAY_S)
        why = f"bleeding: rebalancing cost {spent} msat vs {earned} msat earned"
        raw = round(bleed_per_day * horizon_days + carry_msat - close_cost_msat)
    else:
        return None
    if raw <= 0:
        return None  # closing costs more than the capital it frees
    return Opportunity(
        opportunity_type=OpportunityType.CHANNEL_CLOSE,
        node_id=inputs.node_id,
        target=row["scid"],
        action="close",
        action_params={"scid": row["scid"], "peer_id": row["peer_id"]},
        snapshot_metrics=_metrics(row, age_days=round(age_days, 2)),
        raw_estimate_msat=raw,
        estimate_reason=(
            f"{why}; frees {capital_msat // MSAT_PER_SAT} sat for {horizon_days} days at "
            f"{config.capital_cost_pct_per_year}%/year minus a {config.close_cost_sat} sat close"
        ),
        size=capital_msat / MSAT_PER_SAT,
        owner_loop=OwnerLoop.ADVISOR,
    )
