"""Rebalance decisions, the futility breaker and measured outcomes (the budget: models.budget).

The 2026-02 audit's rebalancing failed as a contract: 200 k sat chunks went out with no
expected-value gate, fees were never recorded (`actual_fee_sats = NULL`), 23 reservations were
released without a trace and the daily budget table read 0 on every row. These models make
each of those states explicit: a proposal carries the prediction that justified it and its
worst-case cost, a skip carries a closed-enum reason, a reservation is either settled with a
fee, released with a reason or still open, and an outcome is `measured` with a number or says
why not. All money is integer msat; `sling` takes sats, so amounts are whole sats.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from models.balance import ChannelBalance
from models.fees import OutcomeStatus
from models.frozen import Frozen as _Frozen

MSAT_PER_SAT = 1_000
PPM = 1_000_000


class FlowRole(StrEnum):
    SOURCE = "source"  # accumulates outbound (net inflow) or sits full: liquidity to spare
    SINK = "sink"  # drains outbound (net outflow) or sits empty: a pull target
    BALANCED = "balanced"


class SkipReason(StrEnum):
    """Why a channel got no rebalance this run: stored verbatim, so keep the values stable."""

    BALANCED = "balanced"
    IS_SOURCE = "is_source"
    AT_TARGET = "at_target"
    CHANNEL_INACTIVE = "channel_inactive"
    FLEET_CHANNEL = "fleet_channel"
    SUSPENDED = "suspended"
    BREAKER_BACKOFF = "breaker_backoff"
    JOB_RUNNING = "job_running"
    PING_PONG = "ping_pong"
    MULTI_CHANNEL_PEER = "multi_channel_peer"
    NO_SOURCE = "no_source"
    NO_CHEAP_ROUTE = "no_cheap_route"
    ROUTE_TOO_EXPENSIVE = "route_too_expensive"
    AMOUNT_TOO_SMALL = "amount_too_small"
    EV_BELOW_COST = "ev_below_cost"
    BUDGET_EXHAUSTED = "budget_exhausted"
    ATTEMPT_LIMIT = "attempt_limit"
    # an operator's rebalance policy keeps the channel from being a destination
    POLICY_NEVER = "policy_never"
    POLICY_SOURCE_ONLY = "policy_source_only"


class RebalanceTuning(_Frozen):
    """Constants that are not (yet) operator settings; each default has a reason.

    Shares: 25 % / 75 % local are CLBOSS's and LNDg's sink/source thresholds; 0.5 target and
    0.2 / 2 M sat deplete floor are sling's own defaults, so the floor we size against is the one
    sling enforces. Demand: a 14-day window (the audit saw 51 forwards in 21 days, so a week holds
    too few) is projected over a 7-day horizon, the window the outcome is measured on, and shrunk
    by n / (n + 3) so three forwards are not treated as a trend. The price of that demand is what
    the last 3 days' forwards paid when at least 5 did (the fee loop moves fees daily), else the
    whole window's. Cost: we pay at most half the
    expected gain (LNDg caps at 65 % of the target's fee, CLBOSS's JIT at 25 % of earnings), and
    a maxppm under 10 is not worth a job (such routes fail NoCheapRoute and feed the breaker).
    When gossip quotes the route (engine.rebalance.routes) the price is known rather than feared,
    so up to 65 % of the gain may go to it (LNDg's default share of the target's fee): the rest
    is the margin for the gain's own error.
    Breaker: 1 h doubling to 48 h; 8 straight failures suspend a channel for 7 days.
    Chunks: after a pull into a channel moved liquidity, the next may run up to 4 chunks in one
    job while each added chunk's own EV pays for it (LNDg repeats a rebalance that just
    worked); after a liquidity failure the next chunk is half the failed one, down to the
    10 k sat minimum.
    """

    flow_window_s: int = Field(default=14 * 86_400, gt=0)
    price_window_s: int = Field(default=3 * 86_400, gt=0)
    price_min_forwards: int = Field(default=5, ge=1)
    flow_min_share: float = Field(default=0.05, ge=0, le=1)
    sink_max_local_share: float = Field(default=0.25, ge=0, le=1)
    source_min_local_share: float = Field(default=0.75, ge=0, le=1)
    target_local_share: float = Field(default=0.5, gt=0, lt=1)
    horizon_s: int = Field(default=7 * 86_400, gt=0)
    demand_prior_forwards: float = Field(default=3.0, ge=0)
    cost_share_of_gain: float = Field(default=0.5, gt=0, le=1)
    quoted_cost_share_of_gain: float = Field(default=0.65, gt=0, le=1)
    min_maxppm: int = Field(default=10, ge=1)
    min_benefit_msat: int = Field(default=1_000, ge=0)
    max_capacity_share: float = Field(default=0.10, gt=0, le=1)
    min_amount_sat: int = Field(default=10_000, gt=0)
    amount_step_sat: int = Field(default=1_000, gt=0)
    deplete_share: float = Field(default=0.2, ge=0, lt=1)
    deplete_max_sat: int = Field(default=2_000_000, ge=0)
    max_candidates: int = Field(default=3, ge=1)
    max_repeat_chunks: int = Field(default=4, ge=1)
    fleet_as_source: bool = False
    ping_pong_window_s: int = Field(default=7 * 86_400, gt=0)
    backoff_base_s: int = Field(default=3_600, gt=0)
    backoff_cap_s: int = Field(default=48 * 3_600, gt=0)
    suspend_after_failures: int = Field(default=8, ge=1)
    suspend_s: int = Field(default=7 * 86_400, gt=0)
    keep_failure_reasons: int = Field(default=10, ge=1)
    reservation_ttl_s: int = Field(default=3_600, gt=0)
    route_memory_s: int = Field(default=7 * 86_400, gt=0)
    seed_budget_msat: int = Field(default=10_000, ge=0)


DEFAULT_REBALANCE_TUNING = RebalanceTuning()


class RebalanceChannel(_Frozen, ChannelBalance):
    """One of our channels as the planner sees it (from channel_latest).

    `usable` is false unless the channel is CHANNELD_NORMAL with the peer connected: sling
    answers ChanNotNormal / PeerNotReady for anything else, which would only feed the breaker.
    """

    scid: str
    peer_id: str
    is_fleet: bool
    capacity_msat: int = Field(gt=0)
    local_msat: int = Field(ge=0)
    fee_ppm: int = Field(ge=0)
    base_fee_msat: int = Field(default=0, ge=0)
    usable: bool = True
    # the fees loop's last applied change (fee_changes): when, and the fee before it
    fee_changed_at: datetime | None = None
    fee_before_change_ppm: int | None = Field(default=None, ge=0)

    @property
    def fee_raised(self) -> bool:
        before = self.fee_before_change_ppm
        return self.fee_changed_at is not None and before is not None and self.fee_ppm > before


class DemandSample(_Frozen):
    """Outbound demand (served plus failed for want of liquidity) seen over `window_s`."""

    asked_forwards: int = Field(ge=0)
    asked_msat: int = Field(ge=0)
    window_s: int = Field(gt=0)


class ChannelClass(_Frozen):
    """A channel's role from its recent settled flow and current balance, with the numbers."""

    scid: str
    peer_id: str
    is_fleet: bool
    role: FlowRole
    local_share: float
    window_s: int
    out_forwards: int = Field(ge=0)
    out_msat: int = Field(ge=0)
    in_msat: int = Field(ge=0)
    out_fee_msat: int = Field(ge=0)
    # settled forwards that arrived through this channel, and the fees they earned on the
    # channel they left by: what inbound room here is worth
    in_forwards: int = Field(default=0, ge=0)
    in_fee_msat: int = Field(default=0, ge=0)
    # that inbound by the channel it left through, out scid → (forwards, in msat, fee msat),
    # only for exits that hold outbound now (above the sink share): inbound room is worth
    # nothing where the way out is as empty; a pull's other end is left out when valuing it
    in_by_out: dict[str, tuple[int, int, int]] = Field(default_factory=dict)
    # local_failed forwards that asked for this channel: demand it could not serve (depleted)
    missed_forwards: int = Field(default=0, ge=0)
    missed_msat: int = Field(default=0, ge=0)
    # what the last few days' forwards paid, when there were enough of them to say
    recent_fee_ppm: int | None = Field(default=None, ge=0)
    # the posted fee changed inside the price window: older forwards do not price it
    repriced: bool = False
    # the fee was raised inside the flow window: demand seen since the rise (what is left of
    # the window's demand at the price now posted); None when it was not
    demand_since_rise: DemandSample | None = None
    detail: str

    @property
    def net_outflow_msat(self) -> int:
        return self.out_msat - self.in_msat

    @property
    def earned_fee_ppm(self) -> int | None:
        """What outbound demand actually paid (base fees included): recently if enough forwards
        say so (a fee the controller moved last week is not priced at last month's level), else
        over the whole window; None without volume, or when the fee changed too recently for
        enough forwards to have paid it (the posted fee is then the only price there is)."""
        if self.recent_fee_ppm is not None:
            return self.recent_fee_ppm
        if self.repriced:
            return None
        return None if self.out_msat == 0 else self.out_fee_msat * PPM // self.out_msat

    def inbound_except(self, other_scid: str | None) -> tuple[int, int, int]:
        """(forwards, in msat, fee msat) that arrived here and left through a channel holding
        outbound other than `other_scid`: a forward from a pull's source into its destination
        needs both the source's inbound and the destination's outbound, and is valued once, as
        the destination's demand."""
        legs = [leg for scid, leg in self.in_by_out.items() if scid != other_scid]
        return (
            sum(leg[0] for leg in legs),
            sum(leg[1] for leg in legs),
            sum(leg[2] for leg in legs),
        )

    def inbound_fee_ppm(self, except_scid: str | None = None) -> int:
        """Fee earned per msat that arrived through this channel (on whichever channel the
        forward left by, `except_scid` left out); 0 without inbound volume."""
        _, msat, fee = self.inbound_except(except_scid)
        return 0 if msat <= 0 else max(0, fee) * PPM // msat


class PullEvaluation(_Frozen):
    """The EV gate's arithmetic for one (destination, source, amount): every input kept.

    gain = expected_revenue + inbound_value − opportunity_cost − dest_inbound_cost;
    max_cost = amount × maxppm;
    predicted_benefit = gain − max_cost (the worst case net, what the gate bets on).
    """

    dest_scid: str
    source_scid: str
    amount_msat: int = Field(ge=0)
    horizon_s: int = Field(gt=0)
    dest_demand_msat: int = Field(ge=0)
    dest_extra_volume_msat: int = Field(ge=0)
    dest_fee_ppm: int = Field(ge=0)
    expected_revenue_msat: int = Field(ge=0)
    source_demand_msat: int = Field(ge=0)
    source_lost_volume_msat: int = Field(ge=0)
    source_fee_ppm: int = Field(ge=0)
    opportunity_cost_msat: int = Field(ge=0)
    # the other side of the move: inbound room freed on the source (its peer can send again)
    # and inbound room the destination gives up, each priced at what its inbound earned
    source_inbound_demand_msat: int = Field(default=0, ge=0)
    source_inbound_freed_msat: int = Field(default=0, ge=0)
    source_inbound_fee_ppm: int = Field(default=0, ge=0)
    inbound_value_msat: int = Field(default=0, ge=0)
    dest_inbound_lost_msat: int = Field(default=0, ge=0)
    dest_inbound_fee_ppm: int = Field(default=0, ge=0)
    dest_inbound_cost_msat: int = Field(default=0, ge=0)
    gain_msat: int
    maxppm: int = Field(ge=0)
    max_cost_msat: int = Field(ge=0)
    passes: bool
    exempt_from_ev: bool = False
    detail: str
    route_ppm: int | None = None  # gossip's cheapest circular route, when quoted
    route_refused: bool = False  # the gain passed but no route in gossip fits under it
    chunk_msat: int | None = None  # several chunks of this in one job (engine.rebalance.chunks)

    @property
    def predicted_benefit_msat(self) -> int:
        return self.gain_msat - self.max_cost_msat


class RebalanceProposal(_Frozen):
    """One sling pull for `dest_scid`, sized and priced; the flow reserves `max_cost_msat`.

    Run it as `sling-once` with onceamount = amount (one chunk), so the reservation bounds the
    spend; a persistent `sling-job` with `target` would keep paying up to maxppm per chunk.
    """

    attempt_id: str
    node_id: str
    dest_scid: str
    direction: str = "pull"
    amount_msat: int = Field(gt=0)
    maxppm: int = Field(ge=0)
    candidates: tuple[str, ...] = Field(min_length=1)
    outppm: int = Field(ge=0)
    target: float = Field(gt=0, lt=1)
    depleteuptopercent: float = Field(ge=0, lt=1)
    depleteuptoamount_sat: int = Field(ge=0)
    expected_revenue_msat: int = Field(ge=0)
    opportunity_cost_msat: int = Field(ge=0)
    predicted_benefit_msat: int
    max_cost_msat: int = Field(ge=0)
    horizon_s: int = Field(gt=0)
    exempt_from_ev: bool = False
    proposed_at: datetime
    inputs: dict[str, Any] = Field(default_factory=dict)
    # per-attempt amount when the pull runs several chunks (amount_msat a multiple of it)
    chunk_msat: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _whole_sats(self) -> RebalanceProposal:
        if self.amount_msat % MSAT_PER_SAT:
            raise ValueError(f"{self.dest_scid}: sling takes whole sats, got {self.amount_msat}")
        chunk = self.chunk_msat
        if chunk is not None and (chunk % MSAT_PER_SAT or self.amount_msat % chunk):
            raise ValueError(
                f"{self.dest_scid}: amount {self.amount_msat} msat is not whole chunks of "
                f"{chunk} msat (sling's onceamount must be a multiple of amount)"
            )
        return self

    @property
    def amount_sat(self) -> int:
        return self.amount_msat // MSAT_PER_SAT

    @property
    def chunk_sat(self) -> int:
        return (self.chunk_msat or self.amount_msat) // MSAT_PER_SAT

    @property
    def chunks(self) -> int:
        return self.amount_msat // (self.chunk_msat or self.amount_msat)


class Skip(_Frozen):
    """A channel the planner looked at and left alone, and why (never a silent nothing)."""

    scid: str
    reason: SkipReason
    detail: str
    inputs: dict[str, Any] = Field(default_factory=dict)


class JobStatus(StrEnum):
    """What the flow observed in sling for a reservation's job (mapped from sling states)."""

    RUNNING = "running"  # Starting, Rebalancing (a task still works on it)
    SUCCEEDED = "succeeded"  # onceamount reached / Balanced, fee in the successes log
    FAILED = "failed"  # stopped in NoRoutes, NoCheapRoute, NoCandidates, HTLCcapped, Error, …
    GONE = "gone"  # no job and no record for the scid (plugin restart forgets sling-once)


class JobObservation(_Frozen):
    attempt_id: str
    status: JobStatus
    fee_msat: int | None = Field(default=None, ge=0)
    moved_msat: int = Field(default=0, ge=0)
    failure_reason: str | None = None


class ReconcileKind(StrEnum):
    SETTLE = "settle"
    RELEASE = "release"
    KEEP = "keep"
    STOP_AND_RELEASE = "stop_and_release"
    STOP_AND_SETTLE = "stop_and_settle"


class ReconcileAction(_Frozen):
    attempt_id: str
    kind: ReconcileKind
    scid: str | None = None
    fee_msat: int | None = Field(default=None, ge=0)
    fee_is_estimate: bool = False
    reason: str


# --- breaker ---------------------------------------------------------------------------------


class AttemptRecord(_Frozen):
    """A finished rebalance attempt (a rebalance_attempts row): the breaker's and ping-pong's input.

    `source_scid` is the candidate sling actually used (last_channel_partner), when known.
    """

    attempt_id: str
    dest_scid: str
    finished_at: datetime
    succeeded: bool
    source_scid: str | None = None
    moved_msat: int = Field(default=0, ge=0)
    fee_msat: int = Field(default=0, ge=0)
    failure_reason: str | None = None
    maxppm: int | None = Field(default=None, ge=0)
    amount_msat: int | None = Field(default=None, ge=0)  # what the job was sized to move
    chunk_msat: int | None = Field(default=None, gt=0)  # per attempt; None: amount_msat

    @property
    def chunk_or_amount_msat(self) -> int | None:
        return self.chunk_msat or self.amount_msat


class ChannelBreaker(_Frozen):
    scid: str
    consecutive_failures: int = Field(default=0, ge=0)
    last_failure_at: datetime | None = None
    retry_at: datetime | None = None
    recent_reasons: tuple[str, ...] = ()
    suspended_until: datetime | None = None
    suspended_reason: str | None = None


class BreakerState(_Frozen):
    channels: dict[str, ChannelBreaker] = Field(default_factory=dict)

    def get(self, scid: str) -> ChannelBreaker:
        return self.channels.get(scid) or ChannelBreaker(scid=scid)


# --- outcome ---------------------------------------------------------------------------------


class RebalanceOutcome(_Frozen):
    """What a finished rebalance earned back: `measured` with a number or the reason not.

    revenue = outbound fees on the destination, counting only volume beyond the liquidity it
    already had, up to the moved amount, within `window_s`; actual = revenue − fee paid.
    The source's lost earnings are not observable (the counterfactual), so they are not booked.
    """

    attempt_id: str
    dest_scid: str
    finished_at: datetime
    window_s: int = Field(gt=0)
    status: OutcomeStatus
    detail: str
    moved_msat: int = Field(ge=0)
    fee_paid_msat: int = Field(ge=0)
    revenue_msat: int | None = None
    routed_msat: int | None = None
    actual_benefit_msat: int | None = None
    predicted_benefit_msat: int | None = None
    prediction_error_msat: int | None = None

    @model_validator(mode="after")
    def _measured_has_number(self) -> RebalanceOutcome:
        measured = self.status is OutcomeStatus.MEASURED
        if measured != (self.actual_benefit_msat is not None):
            raise ValueError(
                f"outcome {self.attempt_id}: status={self.status} with "
                f"actual_benefit_msat={self.actual_benefit_msat}"
            )
        return self
