"""One fee cycle for one node: a decision for every channel, holds included (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from engine.fees.controller import decide_fee
from engine.fees.inputs import build_fee_history, build_market_view, latest_change_at
from engine.fees.policy import resolve_policy
from models.fees import ChannelFeeState, FeeDecision, FeePolicy, RefillSignal
from models.settings import FeeConfig


@dataclass(frozen=True)
class FeeInputs:
    """What the fees flow reads from the warehouse for one node."""

    node_id: str
    channels: pl.DataFrame  # fees.channels
    first_seen: pl.DataFrame  # fees.first_seen
    forwards: pl.DataFrame  # fees.forwards
    changes: pl.DataFrame  # fees.changes
    peer_policies: pl.DataFrame  # fees.peer_policies
    policies: tuple[FeePolicy, ...]
    # fees.refill_quotes / fees.refill_demand; empty where the rebalance loop never priced a route
    refill_quotes: pl.DataFrame = field(default_factory=pl.DataFrame)
    demand: pl.DataFrame = field(default_factory=pl.DataFrame)


def plan_fees(
    inputs: FeeInputs, config: FeeConfig, now: datetime, rng: random.Random
) -> list[FeeDecision]:
    # DuckDB hands back zoneinfo('Etc/UTC'); polars compares time zones by name.
    first_seen = {
        scid: ts.astimezone(UTC)
        for scid, ts in inputs.first_seen.select("scid", "first_seen_at").iter_rows()
    }
    refills = refill_signals(inputs)
    decisions = []
    for channel in channel_states(inputs, now):
        policy = resolve_policy(
            scid=channel.scid,
            peer_id=channel.peer_id,
            is_fleet=channel.is_fleet,
            policies=inputs.policies,
            now=now,
        )
        history = build_fee_history(
            channel.scid,
            inputs.forwards,
            inputs.changes,
            now=now,
            current_fee_ppm=channel.fee_ppm,
            observed_since=first_seen.get(channel.scid),
        )
        market = build_market_view(channel.peer_id, inputs.peer_policies, now=now)
        decisions.append(
            decide_fee(
                channel,
                history,
                market,
                config,
                now,
                rng,
                policy=policy,
                refill=refills.get(channel.scid),
            )
        )
    return decisions


def refill_signals(inputs: FeeInputs) -> dict[str, RefillSignal]:
    """scid -> its refill quote and recent demand, for channels that have either."""
    quotes = {
        row["scid"]: row
        for row in inputs.refill_quotes.iter_rows(named=True)
        if row.get("route_ppm") is not None
    }
    demand = {row["scid"]: row for row in inputs.demand.iter_rows(named=True)}
    signals = {}
    for scid in sorted(quotes.keys() | demand.keys()):
        quote, seen = quotes.get(scid, {}), demand.get(scid, {})
        signals[scid] = RefillSignal(
            scid=scid,
            route_ppm=quote.get("route_ppm"),
            missed_forwards=int(seen.get("missed_forwards") or 0),
            net_outflow_msat=int(seen.get("net_outflow_msat") or 0),
        )
    return signals


def channel_states(inputs: FeeInputs, now: datetime) -> list[ChannelFeeState]:
    """Each channel row of `inputs` as the fee core sees it (the flow, baselines and bench)."""
    return [
        ChannelFeeState(
            node_id=inputs.node_id,
            scid=row["scid"],
            peer_id=row["peer_id"],
            is_fleet=row["is_fleet"],
            capacity_msat=row["capacity_msat"],
            local_msat=row["local_msat"],
            base_fee_msat=row["base_fee_msat"],
            fee_ppm=row["fee_ppm"],
            last_change_at=latest_change_at(inputs.changes, row["scid"], now),
        )
        for row in inputs.channels.sort("scid").iter_rows(named=True)
    ]
