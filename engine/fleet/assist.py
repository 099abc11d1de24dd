"""Assistance planning: what the fleet can do for a critical or struggling member (pure).

Liquidity pulls: the member itself runs sling (the rebalance loop executes open rows of kind
`liquidity_pull`) toward its most one-sided channel to the network, sourcing from a fleet
channel where it holds spare balance. The liquidity it gains comes from the member on the other
end of that fleet channel (the helper), whose own channels to the network carry the circular
payment; the fleet hop itself is 0 fee. Outbound shortage pulls into the depleted external
channel from a fleet channel; inbound shortage pulls into the fleet channel from the fullest
external channel, the helper then holding the member's excess outbound.

Channel-open proposals: a critical member that lacks capacity or peers gets a proposal that the
best-funded healthy member opens a channel to it; the advisor approves or rejects it.

Bounds: one open pull and one open proposal per member at a time, an amount cap per member per
day, a worst-case fee cap per pull and a fleet-wide daily fee budget. When a member needs help
and nothing can be done, a `not_possible` row says why, at most once per member, kind and day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine.fleet.health import fleet_channel_scids
from models.fleet import (
    MSAT_PER_SAT,
    PPM,
    Assistance,
    AssistanceKind,
    AssistanceState,
    FleetConfig,
    MemberChannel,
    MemberHealth,
    MemberState,
    Tier,
)

LOW_STRUCTURE_SCORE = 50.0  # capacity or connectivity below this: more liquidity will not do


@dataclass(frozen=True)
class AssistanceLedger:
    """What is already asked for: open rows and today's requests (for the daily bounds)."""

    open_pulls: frozenset[str] = frozenset()  # member node ids with an open pull
    open_proposals: frozenset[str] = frozenset()  # member node ids with an open/accepted proposal
    requested_today_msat: Mapping[str, int] = field(default_factory=dict)  # per member, pulls
    fee_reserved_today_msat: int = 0  # worst-case fee of every pull requested today


def ledger_from_rows(rows: Sequence[Assistance], now: datetime) -> AssistanceLedger:
    """The daily bounds' state from the stored rows (open ones and today's)."""
    today = now.date()
    pulls = [r for r in rows if r.kind is AssistanceKind.LIQUIDITY_PULL]
    todays = [
        r
        for r in pulls
        if r.requested_at.date() == today and r.state is not AssistanceState.NOT_POSSIBLE
    ]
    requested: dict[str, int] = {}
    for r in todays:
        requested[r.node_id] = requested.get(r.node_id, 0) + r.amount_msat
    return AssistanceLedger(
        open_pulls=frozenset(r.node_id for r in pulls if r.state is AssistanceState.OPEN),
        open_proposals=frozenset(
            r.node_id
            for r in rows
            if r.kind is AssistanceKind.CHANNEL_OPEN_PROPOSAL
            and r.state in (AssistanceState.OPEN, AssistanceState.ACCEPTED)
        ),
        requested_today_msat=requested,
        fee_reserved_today_msat=sum(r.amount_msat * r.max_fee_ppm // PPM for r in todays),
    )


def assistance_id(kind: AssistanceKind, node_id: str, detail: str, now: datetime) -> str:
    """Stable per member, kind, target and UTC day: re-running a cycle plans nothing new."""
    key = f"{kind}:{node_id}:{detail}:{now.date().isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _sat_floor(msat: float) -> int:
    return int(msat) // MSAT_PER_SAT * MSAT_PER_SAT


def _pull_candidates(
    state: MemberState, member_ids: set[str], config: FleetConfig
) -> tuple[list[tuple[MemberChannel, int]], list[tuple[MemberChannel, int]], str]:
    """(dest channels with their deficit, source channels with their spare, which side)."""
    fleet = fleet_channel_scids(state, member_ids)
    usable = [c for c in state.channels if c.active and c.peer_connected]
    external = [c for c in usable if c.scid not in fleet]
    fleet_chans = [c for c in usable if c.scid in fleet]
    target = config.assist_dest_target_share
    keep = config.assist_source_keep_share
    out_short = [
        (c, int(target * c.capacity_msat) - c.local_msat)
        for c in external
        if c.local_share < config.liquidity_target_share
    ]
    if out_short:
        sources = [(c, c.local_msat - int(keep * c.capacity_msat)) for c in fleet_chans]
        return sorted(out_short, key=lambda x: -x[1]), sorted(sources, key=lambda x: -x[1]), "out"
    in_short = [
        (c, c.local_msat - int(target * c.capacity_msat))
        for c in external
        if 1 - c.local_share < config.liquidity_target_share
    ]
    if in_short:
        dests = [(c, int(target * c.capacity_msat) - c.local_msat) for c in fleet_chans]
        src = sorted(in_short, key=lambda x: -x[1])
        return sorted(dests, key=lambda x: -x[1]), src, "in"
    return [], [], ""


def plan_pull(
    state: MemberState,
    health: MemberHealth,
    member_ids: set[str],
    tiers: Mapping[str, Tier],
    ledger: AssistanceLedger,
    config: FleetConfig,
    now: datetime,
) -> Assistance | None:
    """One pull for this member, a `not_possible` row saying why none, or None when the member's
    trouble is not liquidity at all (or a pull is already open)."""
    if state.node_id in ledger.open_pulls:
        return None
    dests, sources, side = _pull_candidates(state, member_ids, config)
    kind = AssistanceKind.LIQUIDITY_PULL
    base = {
        "node_id": state.node_id,
        "member_name": state.name,
        "kind": kind,
        "requested_at": now,
        "health_before": health.health_score,
        "tier_before": health.tier,
        "max_fee_ppm": config.assist_max_fee_ppm,
    }

    def refuse(why: str) -> Assistance:
        return Assistance(
            assistance_id=assistance_id(kind, state.node_id, "not_possible", now),
            helper_node_id=None,
            amount_msat=0,
            reason=f"could not help: {why}",
            state=AssistanceState.NOT_POSSIBLE,
            **base,
        )

    if not side:
        fleet = fleet_channel_scids(state, member_ids)
        if not any(c.scid not in fleet for c in state.channels):
            return refuse(f"{state.name} has no channel to the network to rebalance")
        return None
    if side == "out":
        live = [(c, s) for c, s in sources if tiers.get(c.peer_id) != Tier.CRITICAL]
        if not sources:
            return refuse(f"{state.name} has no connected channel with another fleet member")
        if not live or live[0][1] <= 0:
            return refuse(
                f"no fleet channel of {state.name} has local balance above "
                f"{config.assist_source_keep_share:.0%} to spare (a channel to it would)"
            )
        (dest, deficit), (source, spare) = dests[0], live[0]
        helper = source.peer_id
    else:
        live = [(c, d) for c, d in dests if tiers.get(c.peer_id) != Tier.CRITICAL]
        if not live or live[0][1] <= 0:
            return refuse(
                f"{state.name} lacks inbound but no fleet channel has room for its outbound"
            )
        (dest, deficit), (source, spare) = live[0], sources[0]
        helper = dest.peer_id
    left_today = config.assist_max_amount_sat * MSAT_PER_SAT - ledger.requested_today_msat.get(
        state.node_id, 0
    )
    budget_left = config.assist_daily_fee_budget_sat * MSAT_PER_SAT - ledger.fee_reserved_today_msat
    by_budget = budget_left * PPM / config.assist_max_fee_ppm if config.assist_max_fee_ppm else None
    amount = min(deficit, spare, left_today)
    if by_budget is not None:
        amount = min(amount, by_budget)
    amount = _sat_floor(amount)
    if amount < config.assist_min_amount_sat * MSAT_PER_SAT:
        if left_today < config.assist_min_amount_sat * MSAT_PER_SAT:
            why = f"daily assistance for {state.name} used up ({config.assist_max_amount_sat} sat)"
        elif by_budget is not None and by_budget < config.assist_min_amount_sat * MSAT_PER_SAT:
            why = (
                f"fleet assistance fee budget exhausted ({ledger.fee_reserved_today_msat // 1000}"
                f" of {config.assist_daily_fee_budget_sat} sat reserved today)"
            )
        else:
            why = (
                f"largest possible move {amount // 1000} sat is below "
                f"fleet.assist_min_amount_sat={config.assist_min_amount_sat}"
            )
        return refuse(why)
    need = "outbound" if side == "out" else "inbound"
    return Assistance(
        assistance_id=assistance_id(kind, state.node_id, dest.scid, now),
        helper_node_id=helper,
        dest_scid=dest.scid,
        source_scid=source.scid,
        amount_msat=amount,
        reason=(
            f"{state.name} {health.tier} (health {health.health_score:.0f}): {need} on "
            f"{dest.scid} at {dest.local_share:.0%} local; pull {amount // 1000} sat via fleet "
            f"channel {source.scid}"
        ),
        state=AssistanceState.OPEN,
        **base,
    )


def plan_proposal(
    state: MemberState,
    health: MemberHealth,
    states: Sequence[MemberState],
    tiers: Mapping[str, Tier],
    ledger: AssistanceLedger,
    config: FleetConfig,
    now: datetime,
) -> Assistance | None:
    """A channel-open proposal toward a critical member short of capacity or peers."""
    if health.tier is not Tier.CRITICAL or state.node_id in ledger.open_proposals:
        return None
    if min(health.capacity_score, health.connectivity_score) >= LOW_STRUCTURE_SCORE:
        return None
    kind = AssistanceKind.CHANNEL_OPEN_PROPOSAL
    reserve = config.open_onchain_reserve_sat * MSAT_PER_SAT
    peers_of_member = {c.peer_id for c in state.channels}
    helpers = [
        s
        for s in states
        if s.node_id != state.node_id
        and s.taken_at is not None
        and tiers.get(s.node_id) not in (None, Tier.CRITICAL)
        and s.onchain_msat - reserve >= config.open_min_channel_sat * MSAT_PER_SAT
    ]
    base = {
        "node_id": state.node_id,
        "member_name": state.name,
        "kind": kind,
        "requested_at": now,
        "health_before": health.health_score,
        "tier_before": health.tier,
    }
    if not helpers:
        return Assistance(
            assistance_id=assistance_id(kind, state.node_id, "not_possible", now),
            helper_node_id=None,
            amount_msat=0,
            reason=(
                f"could not help: no healthy member has {config.open_min_channel_sat} sat "
                f"on-chain above the {config.open_onchain_reserve_sat} sat reserve to open a "
                f"channel to {state.name}"
            ),
            state=AssistanceState.NOT_POSSIBLE,
            **base,
        )
    helper = max(helpers, key=lambda s: (s.node_id not in peers_of_member, s.onchain_msat))
    amount = _sat_floor(min(config.open_channel_sat * MSAT_PER_SAT, helper.onchain_msat - reserve))
    return Assistance(
        assistance_id=assistance_id(kind, state.node_id, helper.node_id, now),
        helper_node_id=helper.node_id,
        amount_msat=amount,
        reason=(
            f"{state.name} critical (health {health.health_score:.0f}; capacity "
            f"{health.capacity_score:.0f}, connectivity {health.connectivity_score:.0f}): "
            f"{helper.name} to open {amount // 1000} sat to it"
        ),
        state=AssistanceState.OPEN,
        **base,
    )


def plan_assistance(
    states: Sequence[MemberState],
    healths: Sequence[MemberHealth],
    ledger: AssistanceLedger,
    config: FleetConfig,
    now: datetime,
    member_ids: Iterable[str] | None = None,
) -> list[Assistance]:
    """Every assistance action for this cycle, worst member first (it gets the budget first).

    `states` are the members able to act now (fresh snapshots); `member_ids` (default: theirs)
    are every member, which decides which channels are fleet channels."""
    by_id = {s.node_id: s for s in states}
    member_ids = set(member_ids) if member_ids is not None else set(by_id)
    tiers = {h.node_id: h.tier for h in healths}
    plans: list[Assistance] = []
    requested = dict(ledger.requested_today_msat)
    reserved = ledger.fee_reserved_today_msat
    for health in sorted(healths, key=lambda h: h.health_score):
        if not health.needs_help or health.node_id not in by_id:
            continue
        state = by_id[health.node_id]
        current = AssistanceLedger(ledger.open_pulls, ledger.open_proposals, requested, reserved)
        pull = plan_pull(state, health, member_ids, tiers, current, config, now)
        if pull is not None:
            plans.append(pull)
            if pull.state is AssistanceState.OPEN:
                requested[state.node_id] = requested.get(state.node_id, 0) + pull.amount_msat
                reserved += pull.amount_msat * pull.max_fee_ppm // PPM
        proposal = plan_proposal(state, health, states, tiers, current, config, now)
        if proposal is not None:
            plans.append(proposal)
    return plans
