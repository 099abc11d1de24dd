"""Member health: four 0-100 scores from a member's latest state, combined into a tier (pure).

Why these four: a member helps the fleet route only if it has capacity (capacity), balance on
both sides of its channels to the network (liquidity), demand that pays (revenue) and enough
connected peers to be on routes at all (connectivity). Each score is relative to a target so
that a small node is not "critical" for being small alone: capacity against the fleet's median
(or `fleet.capacity_target_sat`), revenue against the fleet's mean (neutral 50 while the fleet
earns nothing, so no member is blamed for an idle network). Liquidity is the weaker of the two
sides: a node with all of its balance on one side routes in one direction only, which is how the
audit found nexus-03 (52 k of 3.5 M sat available).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from statistics import median

from models.fleet import FleetConfig, MemberHealth, MemberState, Tier

NEUTRAL_SCORE = 50.0


def _score(value: float, target: float) -> float:
    """0 at nothing, 100 at or above the target."""
    if target <= 0:
        return 100.0
    return round(max(0.0, min(100.0, 100.0 * value / target)), 2)


def tier_for(score: float, config: FleetConfig) -> Tier:
    if score < config.critical_below:
        return Tier.CRITICAL
    if score < config.struggling_below:
        return Tier.STRUGGLING
    if score >= config.thriving_from:
        return Tier.THRIVING
    return Tier.HEALTHY


def fleet_channel_scids(state: MemberState, member_ids: Iterable[str]) -> set[str]:
    """Channels whose peer is another fleet member: the single definition of a fleet channel."""
    ids = set(member_ids) - {state.node_id}
    return {c.scid for c in state.channels if c.peer_id in ids}


def health_inputs(state: MemberState, member_ids: Iterable[str]) -> dict[str, int | float]:
    """The numbers the scores are computed from; stored with the health row."""
    fleet_scids = fleet_channel_scids(state, member_ids)
    usable = [c for c in state.channels if c.active]
    external = [c for c in usable if c.scid not in fleet_scids]
    connected = [c for c in usable if c.peer_connected]
    return {
        "channels": len(state.channels),
        "active_channels": len(usable),
        "fleet_channels": len(fleet_scids),
        "capacity_msat": sum(c.capacity_msat for c in usable),
        "local_msat": sum(c.local_msat for c in usable),
        "external_capacity_msat": sum(c.capacity_msat for c in external),
        "external_outbound_msat": sum(c.outbound_msat for c in external if c.peer_connected),
        "external_inbound_msat": sum(c.inbound_msat for c in external if c.peer_connected),
        "external_peers": len({c.peer_id for c in external if c.peer_connected}),
        "connected_share": round(len(connected) / len(usable), 4) if usable else 0.0,
        "onchain_msat": state.onchain_msat,
        "revenue_msat": state.revenue_msat,
        "forwards_settled": state.forwards_settled,
    }


def score_member(
    state: MemberState,
    inputs: dict[str, int | float],
    capacity_target_msat: float,
    revenue_reference_msat: float,
    config: FleetConfig,
    now: datetime,
) -> MemberHealth:
    capacity_score = _score(inputs["capacity_msat"], capacity_target_msat)
    external_msat = inputs["external_capacity_msat"]
    target_msat = config.liquidity_target_share * external_msat
    out_score = _score(inputs["external_outbound_msat"], target_msat) if external_msat else 0.0
    in_score = _score(inputs["external_inbound_msat"], target_msat) if external_msat else 0.0
    liquidity_score = min(out_score, in_score)
    if revenue_reference_msat > 0:
        revenue_score = _score(inputs["revenue_msat"], revenue_reference_msat)
    else:
        revenue_score = NEUTRAL_SCORE
    connectivity_score = round(
        _score(inputs["external_peers"], config.connectivity_target_peers)
        * float(inputs["connected_share"]),
        2,
    )
    weighted = (
        (config.weight_capacity, capacity_score),
        (config.weight_liquidity, liquidity_score),
        (config.weight_revenue, revenue_score),
        (config.weight_connectivity, connectivity_score),
    )
    total_weight = sum(w for w, _ in weighted)
    health = round(sum(w * s for w, s in weighted) / total_weight, 2)
    return MemberHealth(
        node_id=state.node_id,
        name=state.name,
        measured_at=now,
        tier=tier_for(health, config),
        health_score=health,
        capacity_score=capacity_score,
        liquidity_out_score=out_score,
        liquidity_in_score=in_score,
        liquidity_score=liquidity_score,
        revenue_score=revenue_score,
        connectivity_score=connectivity_score,
        inputs={
            **inputs,
            "capacity_target_msat": int(capacity_target_msat),
            "revenue_reference_msat": int(revenue_reference_msat),
            "snapshot_taken_at": state.taken_at.isoformat() if state.taken_at else None,
        },
    )


def score_fleet(
    states: Sequence[MemberState],
    config: FleetConfig,
    now: datetime,
    member_ids: Iterable[str] | None = None,
) -> list[MemberHealth]:
    """Health of every member with a snapshot; references (median capacity, mean revenue) are
    taken over those members, so one member's score depends on the fleet it is in.
    `member_ids` (default: the states' ids) decides which channels are fleet channels."""
    member_ids = set(member_ids) if member_ids is not None else {s.node_id for s in states}
    scored = [s for s in states if s.taken_at is not None]
    inputs = {s.node_id: health_inputs(s, member_ids) for s in scored}
    if not scored:
        return []
    if config.capacity_target_sat is not None:
        capacity_target = float(config.capacity_target_sat * 1_000)
    else:
        capacity_target = float(median(i["capacity_msat"] for i in inputs.values()))
    revenue_reference = sum(i["revenue_msat"] for i in inputs.values()) / len(inputs)
    return [
        score_member(s, inputs[s.node_id], capacity_target, revenue_reference, config, now)
        for s in scored
    ]
