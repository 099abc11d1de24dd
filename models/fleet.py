"""Fleet membership, member health, assistance, contribution and fee intelligence.

The 2026-02 audit's fleet layer failed as a contract: nexus-03 was scored "critical" and flagged
`needs_help=1`, and then nothing happened and nothing said so; contribution and uptime read 0 for
every member. These models make each of those states explicit: a health row carries the inputs
that produced its tier, an assistance action is open, decided or closed and every closed one has
an outcome that says what moved or why nothing could, and contribution is computed from facts
(snapshots, peer connections, forwards) rather than accumulated counters.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from models.balance import ChannelBalance
from models.frozen import Frozen as _Frozen

DAY_S = 86_400
MSAT_PER_SAT = 1_000
PPM = 1_000_000


class FleetConfig(_Frozen):
    """`[fleet]` in the config: health thresholds and the bounds of assistance.

    Scores are 0-100. Liquidity is judged on channels to non-members only (fleet channels carry
    liquidity between members, not to the network): a share of `liquidity_target_share` of that
    capacity on each side scores 100. Assistance is bounded three ways: an amount per member per
    day, a worst-case fee per pull (`assist_max_fee_ppm`) and a fleet-wide daily fee budget that
    counts every pull requested that day at its worst case.
    """

    critical_below: float = Field(default=25.0, ge=0, le=100)
    struggling_below: float = Field(default=45.0, ge=0, le=100)
    thriving_from: float = Field(default=75.0, ge=0, le=100)
    weight_capacity: float = Field(default=0.2, ge=0)
    weight_liquidity: float = Field(default=0.35, ge=0)
    weight_revenue: float = Field(default=0.2, ge=0)
    weight_connectivity: float = Field(default=0.25, ge=0)
    capacity_target_sat: int | None = Field(default=None, gt=0)  # None: the fleet's median
    liquidity_target_share: float = Field(default=0.3, gt=0, le=0.5)
    connectivity_target_peers: int = Field(default=8, ge=1)
    revenue_window_s: int = Field(default=7 * DAY_S, gt=0)
    snapshot_max_age_s: int = Field(default=6 * 3600, gt=0)
    assist_dest_target_share: float = Field(default=0.5, gt=0, lt=1)
    assist_source_keep_share: float = Field(default=0.3, ge=0, lt=1)
    assist_min_amount_sat: int = Field(default=50_000, gt=0)
    assist_max_amount_sat: int = Field(default=1_000_000, gt=0)
    assist_max_fee_ppm: int = Field(default=500, ge=0, le=10_000)
    assist_daily_fee_budget_sat: int = Field(default=2_000, ge=0)
    assist_timeout_s: int = Field(default=DAY_S, gt=0)
    open_channel_sat: int = Field(default=2_000_000, gt=0)
    open_min_channel_sat: int = Field(default=500_000, gt=0)
    open_onchain_reserve_sat: int = Field(default=100_000, ge=0)
    proposal_ttl_s: int = Field(default=3 * DAY_S, gt=0)
    contribution_window_s: int = Field(default=7 * DAY_S, gt=0)
    contribution_prior_msat: int = Field(default=100_000_000, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> FleetConfig:
        if not self.critical_below <= self.struggling_below <= self.thriving_from:
            raise ValueError(
                f"fleet tiers must satisfy critical_below ({self.critical_below}) <= "
                f"struggling_below ({self.struggling_below}) <= thriving_from "
                f"({self.thriving_from})"
            )
        weights = (
            self.weight_capacity,
            self.weight_liquidity,
            self.weight_revenue,
            self.weight_connectivity,
        )
        if sum(weights) <= 0:
            raise ValueError("fleet weights are all 0; give at least one score a weight")
        if self.open_min_channel_sat > self.open_channel_sat:
            raise ValueError(
                f"fleet.open_min_channel_sat={self.open_min_channel_sat} exceeds "
                f"open_channel_sat={self.open_channel_sat}"
            )
        return self


class Tier(StrEnum):
    CRITICAL = "critical"
    STRUGGLING = "struggling"
    HEALTHY = "healthy"
    THRIVING = "thriving"

    @property
    def needs_help(self) -> bool:
        return self in (Tier.CRITICAL, Tier.STRUGGLING)


class FleetMember(_Frozen):
    node_id: str = Field(pattern=r"^0[23][0-9a-f]{64}$")
    name: str
    first_seen_at: datetime


class MemberChannel(_Frozen, ChannelBalance):
    """One channel of a member as its latest snapshot saw it."""

    scid: str
    peer_id: str
    capacity_msat: int = Field(gt=0)
    local_msat: int = Field(ge=0)
    spendable_msat: int | None = None
    receivable_msat: int | None = None
    peer_connected: bool = True
    active: bool = True  # CHANNELD_NORMAL
    first_seen_at: datetime | None = None

    @property
    def outbound_msat(self) -> int:
        return self.spendable_msat if self.spendable_msat is not None else self.local_msat

    @property
    def inbound_msat(self) -> int:
        if self.receivable_msat is not None:
            return self.receivable_msat
        return self.capacity_msat - self.local_msat


class MemberState(_Frozen):
    """What the warehouse knows of a member now: its latest snapshot and recent revenue."""

    node_id: str
    name: str
    taken_at: datetime | None = None  # None: never snapshotted
    onchain_msat: int = Field(default=0, ge=0)
    channels: tuple[MemberChannel, ...] = ()
    revenue_msat: int = Field(default=0, ge=0)
    forwards_settled: int = Field(default=0, ge=0)


class MemberHealth(_Frozen):
    node_id: str
    name: str
    measured_at: datetime
    tier: Tier
    health_score: float = Field(ge=0, le=100)
    capacity_score: float = Field(ge=0, le=100)
    liquidity_out_score: float = Field(ge=0, le=100)
    liquidity_in_score: float = Field(ge=0, le=100)
    liquidity_score: float = Field(ge=0, le=100)
    revenue_score: float = Field(ge=0, le=100)
    connectivity_score: float = Field(ge=0, le=100)
    inputs: dict[str, Any]

    @property
    def needs_help(self) -> bool:
        return self.tier.needs_help


class AssistanceKind(StrEnum):
    LIQUIDITY_PULL = "liquidity_pull"
    CHANNEL_OPEN_PROPOSAL = "channel_open_proposal"


class AssistanceState(StrEnum):
    OPEN = "open"  # waiting for the rebalance loop (pull) or the advisor (proposal)
    ACCEPTED = "accepted"  # proposal approved by the advisor, channel not seen yet
    REJECTED = "rejected"  # proposal refused by the advisor: closed on the next fleet run
    NOT_POSSIBLE = "not_possible"  # planned but nothing could be done; outcome written with it
    CLOSED = "closed"  # its outcome row exists


class AssistanceResult(StrEnum):
    HELPED = "helped"
    PARTIAL = "partial"
    COULD_NOT_HELP = "could_not_help"
    NO_LONGER_NEEDED = "no_longer_needed"


class Assistance(_Frozen):
    """One assistance action toward a member: a row of `fleet_assistance`."""

    assistance_id: str
    node_id: str  # the member helped (for a pull, also the node that runs sling)
    member_name: str
    helper_node_id: str | None  # the member whose liquidity or funds help; None if none could
    kind: AssistanceKind
    dest_scid: str | None = None
    source_scid: str | None = None
    amount_msat: int = Field(ge=0)
    max_fee_ppm: int = Field(default=0, ge=0)
    reason: str
    requested_at: datetime
    state: AssistanceState
    health_before: float | None = None
    tier_before: Tier | None = None
    rebalance_skip: str | None = None  # the rebalance loop's latest reason for not acting


class AssistanceAttempt(_Frozen):
    """A rebalance attempt made for an assistance row (`rebalance_attempts.assistance_id`)."""

    assistance_id: str
    state: str
    moved_msat: int = 0
    fee_msat: int | None = None
    failure_reason: str | None = None


class AssistanceOutcome(_Frozen):
    assistance_id: str
    node_id: str
    helper_node_id: str | None
    kind: AssistanceKind
    closed_at: datetime
    result: AssistanceResult
    detail: str = Field(min_length=1)
    attempts: int = 0
    attempts_succeeded: int = 0
    moved_msat: int = 0
    fee_msat: int = 0
    health_before: float | None = None
    health_after: float | None = None
    tier_before: Tier | None = None
    tier_after: Tier | None = None


class Contribution(_Frozen):
    node_id: str
    name: str
    measured_at: datetime
    window_start: datetime
    cycles_expected: int = Field(ge=0)
    cycles_up: int = Field(ge=0)
    uptime_pct: float | None = Field(ge=0, le=100)
    forwarded_for_members_msat: int = Field(ge=0)
    forwarded_by_members_msat: int = Field(ge=0)
    assist_given_msat: int = Field(ge=0)
    assist_received_msat: int = Field(ge=0)
    contribution_ratio: float | None = Field(ge=0)
