"""Fee policies, controller inputs, decisions and measured outcomes.

The 2026-02 audit's fee failures were contract failures: a global floor that silently applied to
fleet channels, 1,079 decisions stored with predicted_benefit = 0, and 557 outcomes that "measured"
0 because nothing was measured. These models make each of those states explicit: the fleet kind
carries no bounds at all, every decision names its reason and its prediction, and an outcome is
either `measured` with a number or says why it is not.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from models.balance import ChannelBalance
from models.frozen import Frozen as _Frozen


class PolicyKind(StrEnum):
    FLEET = "fleet"  # fees.fleet_fee_ppm and 0 base; no floor, bound or controller touches it
    STATIC = "static"  # a pinned base/ppm the operator chose
    PASSIVE = "passive"  # hiveops never touches this channel's fee
    DYNAMIC = "dynamic"  # the bandit controller, inside optional per-peer bounds


class FeePolicy(_Frozen):
    """An operator's fee rule for one channel (`scid`), one peer (`peer_id`) or everyone (neither).

    Bounds (`min_fee_ppm`/`max_fee_ppm`) belong to dynamic policies only and *replace* the global
    fees.min_fee_ppm / fees.max_fee_ppm for that scope, so a per-peer override can go below the
    global floor (the operator's explicit ask in clboss#67 and lndg#180).
    """

    kind: PolicyKind
    peer_id: str | None = None
    scid: str | None = None
    # The same hard bounds as [fees]: a policy can move the fee, never to an absurd one.
    base_fee_msat: int | None = Field(default=None, ge=0, le=100_000)
    fee_ppm: int | None = Field(default=None, ge=0, le=50_000)
    min_fee_ppm: int | None = Field(default=None, ge=0, le=50_000)
    max_fee_ppm: int | None = Field(default=None, ge=1, le=50_000)
    expires_at: datetime | None = None
    created_at: datetime | None = None
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> FeePolicy:
        where = self.scid or self.peer_id or "default"
        if self.kind is PolicyKind.STATIC and self.fee_ppm is None:
            raise ValueError(f"static fee policy for {where} needs fee_ppm (and optionally base)")
        if self.kind is not PolicyKind.STATIC and (
            self.fee_ppm is not None or self.base_fee_msat is not None
        ):
            raise ValueError(
                f"{self.kind} fee policy for {where} sets fee_ppm/base_fee_msat; only static "
                f"policies pin a fee (fleet channels use fees.fleet_fee_ppm)"
            )
        has_bounds = self.min_fee_ppm is not None or self.max_fee_ppm is not None
        if has_bounds and self.kind is not PolicyKind.DYNAMIC:
            raise ValueError(
                f"{self.kind} fee policy for {where} sets min/max_fee_ppm; bounds apply to "
                f"dynamic policies only (a fleet channel is never bounded)"
            )
        if (
            self.min_fee_ppm is not None
            and self.max_fee_ppm is not None
            and self.min_fee_ppm > self.max_fee_ppm
        ):
            raise ValueError(
                f"fee policy for {where}: min_fee_ppm={self.min_fee_ppm} is above "
                f"max_fee_ppm={self.max_fee_ppm}"
            )
        return self

    @property
    def scope(self) -> str:
        return "channel" if self.scid else "peer" if self.peer_id else "default"

    def is_active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


DEFAULT_POLICY = FeePolicy(kind=PolicyKind.DYNAMIC, note="built-in default")


class FeeTuning(_Frozen):
    """Controller constants that are not (yet) operator settings; the bench may vary them.

    Each default has a source or a reason: the ladder ratio comes from CLBOSS price theory, the
    mild scarcity bump from LiT Autofees, the 50 k sat forward from the Diamond Hands routing
    report, 100 ppm from the 2026-02 gossip snapshot's median. `optimum_prior_spread` = 8 puts
    one standard deviation of the revenue-optimal fee's log-normal prior at ×8 / ÷8 the market
    median: the competitor median is a weak anchor (bench/fees.py: the best fixed fees sat 10×
    above it on busy and 30× below it on elastic), and widening the prior from ×3 lifted every
    scenario's ratio to the oracle (pooled 0.52 → 0.63). `prior_forwards_per_day` = 2 is
    optimistic on purpose (the audited node saw 0.15 per channel per day), so an unproven fee
    is worth trying rather than written off.
    """

    ladder_ratio: float = Field(default=1.2, gt=1.01, le=4.0)
    default_market_ppm: int = Field(default=100, ge=1)
    optimum_prior_spread: float = Field(default=8.0, gt=1.0)
    prior_forwards_per_day: float = Field(default=2.0, gt=0)
    prior_hours: float = Field(default=48.0, gt=0)
    arm_prior_hours: float = Field(default=24.0, gt=0)
    default_forward_amount_msat: int = Field(default=50_000_000, gt=0)
    fleet_observation_weight: float = Field(default=0.5, ge=0, le=1)
    min_change_pct: float = Field(default=5.0, ge=0, le=100)
    thompson_min_gain_pct: float = Field(default=10.0, ge=0)
    cold_start_dwell_s: int = Field(default=24 * 3600, ge=0)
    scarcity_low_share: float = Field(default=0.25, ge=0, le=0.5)
    scarcity_high_share: float = Field(default=0.75, ge=0.5, le=1)
    scarcity_max_mult: float = Field(default=2.0, ge=1, le=10)
    drain_window_s: int = Field(default=24 * 3600, gt=0)
    drain_horizon_s: int = Field(default=48 * 3600, gt=0)
    drain_min_share: float = Field(default=0.10, gt=0, le=1)
    aimd_decrease_share: float = Field(default=0.10, gt=0, le=1)
    # Refill floor (engine.fees.guards.refill_floor_ppm): below the rebalancer's
    # quoted_cost_share_of_gain (0.65), so a refill at the quoted price clears its gate.
    refill_cost_share: float = Field(default=0.6, gt=0, le=1)
    refill_window_s: int = Field(default=3 * 86400, gt=0)
    refill_min_missed: int = Field(default=3, ge=1)
    refill_max_share: float = Field(default=0.5, gt=0, le=1)
    evaluation_window_s: int = Field(default=72 * 3600, gt=0)
    lookback_s: int = Field(default=30 * 86400, gt=0)


DEFAULT_TUNING = FeeTuning()


class FeeReason(StrEnum):
    FLEET_POLICY = "fleet_policy"
    STATIC_POLICY = "static_policy"
    PASSIVE_POLICY = "passive_policy"
    BOUNDS_CLAMP = "bounds_clamp"
    COLD_START_EXPLORE = "cold_start_explore"
    THOMPSON = "thompson"
    SCARCITY = "scarcity"
    DRAIN_DEFENCE = "drain_defence"
    DRAIN_RECOVERY = "drain_recovery"
    REFILL_FLOOR = "refill_floor"
    BASE_FEE_SYNC = "base_fee_sync"
    HOLD_HYSTERESIS = "hold_hysteresis"
    HOLD_RATE_LIMIT = "hold_rate_limit"
    BASELINE = "baseline"


class ChannelFeeState(_Frozen, ChannelBalance):
    """What the controller knows about one channel right now."""

    node_id: str
    scid: str
    peer_id: str
    is_fleet: bool
    capacity_msat: int = Field(gt=0)
    local_msat: int = Field(ge=0)
    base_fee_msat: int = Field(ge=0)
    fee_ppm: int = Field(ge=0)
    last_change_at: datetime | None = None


class FeeLevelStats(_Frozen):
    """Settled outbound traffic while the channel posted `fee_ppm`, over `hours` of exposure."""

    fee_ppm: int = Field(ge=0)
    hours: float = Field(ge=0)
    forwards: int = Field(ge=0)
    revenue_msat: int = Field(ge=0)
    volume_msat: int = Field(ge=0)


class FeeHistory(_Frozen):
    """A channel's observed response to its own fees (see engine.fees.inputs.build_fee_history).

    `levels` aggregates every period at a fee; `since_change` is the current period alone (the
    dwell the cold-start schedule and price-theory baseline need); `net_outflow_msat` is settled
    outbound minus inbound volume over the last `drain_window_s` (the drain defence's signal).
    """

    scid: str
    levels: tuple[FeeLevelStats, ...] = ()
    since_change: FeeLevelStats | None = None
    net_outflow_msat: int = 0
    drain_window_s: int = Field(default=24 * 3600, gt=0)
    last_change_reason: FeeReason | None = None

    @model_validator(mode="after")
    def _unique_levels(self) -> FeeHistory:
        fees = [level.fee_ppm for level in self.levels]
        if len(fees) != len(set(fees)):
            raise ValueError(f"FeeHistory for {self.scid}: fee levels repeat ({sorted(fees)})")
        return self

    @property
    def total_forwards(self) -> int:
        return sum(level.forwards for level in self.levels)

    @property
    def total_hours(self) -> float:
        return sum(level.hours for level in self.levels)


class RefillSignal(_Frozen):
    """What refilling this channel costs and whether demand is waiting for it.

    `route_ppm` is the rebalance loop's latest gossip quote for the cheapest circular route back
    into the channel; over `FeeTuning.refill_window_s`, `missed_forwards` counts forwards CLN
    failed locally for want of its liquidity and `net_outflow_msat` is settled out minus in.
    """

    scid: str
    route_ppm: int | None = Field(default=None, ge=0)
    missed_forwards: int = Field(default=0, ge=0)
    net_outflow_msat: int = 0


class MarketView(_Frozen):
    """What competitors charge to reach the same peer (ours excluded), plus fleet observations.

    `fleet_levels` are other fleet members' FeeLevelStats toward the same peer; the controller
    counts them at `FeeTuning.fleet_observation_weight` of our own.
    """

    peer_id: str
    competitor_fee_ppm: tuple[int, ...] = ()
    competitor_base_fee_msat: tuple[int, ...] = ()
    fleet_levels: tuple[FeeLevelStats, ...] = ()

    def quantile_ppm(self, q: float) -> float | None:
        """Linear-interpolated quantile of competitor ppm; None when there is no competitor."""
        values = sorted(self.competitor_fee_ppm)
        if not values:
            return None
        position = q * (len(values) - 1)
        low = int(position)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (position - low)

    @property
    def median_ppm(self) -> float | None:
        return self.quantile_ppm(0.5)


class FeeDecision(_Frozen):
    """One channel's fee decision, stored whether or not it is applied.

    `apply` is true exactly when the new fee differs from the old one. Predictions come from the
    controller's revenue model (posterior mean); `predicted_benefit_msat` is the expected revenue
    gain over `evaluation_window_s`, the window the outcome estimator measures.
    """

    node_id: str
    scid: str
    peer_id: str
    decided_at: datetime
    policy_kind: PolicyKind
    reason: FeeReason
    old_base_fee_msat: int = Field(ge=0)
    old_fee_ppm: int = Field(ge=0)
    new_base_fee_msat: int = Field(ge=0)
    new_fee_ppm: int = Field(ge=0)
    apply: bool
    predicted_revenue_msat_per_day_before: int = Field(ge=0)
    predicted_revenue_msat_per_day_after: int = Field(ge=0)
    predicted_benefit_msat: int
    evaluation_window_s: int = Field(gt=0)
    inputs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _apply_means_change(self) -> FeeDecision:
        changed = (self.old_base_fee_msat, self.old_fee_ppm) != (
            self.new_base_fee_msat,
            self.new_fee_ppm,
        )
        if changed != self.apply:
            raise ValueError(
                f"decision for {self.scid}: apply={self.apply} but fee "
                f"{self.old_base_fee_msat}/{self.old_fee_ppm} -> "
                f"{self.new_base_fee_msat}/{self.new_fee_ppm}"
            )
        return self


class OutcomeStatus(StrEnum):
    MEASURED = "measured"
    INSUFFICIENT_DATA = "insufficient_data"
    PENDING = "pending"  # the evaluation window has not closed yet


class OutcomeMethod(StrEnum):
    """How a fee change's counterfactual was built, most trustworthy first.

    `did_unchanged`: the trend of the node's channels whose fee did not change during the
    compared windows (classic difference in differences). `did_node_trend`: the trend of all the
    node's other channels, changed ones included; biased toward zero when the node moved most
    fees the same way (their own fee effects land in the trend), used when nothing stayed still.
    `before_after`: the channel's own before-rate with a trend of 1; no correction for
    node-wide demand swings, the least trustworthy, used when no group has a usable baseline.
    """

    DID_UNCHANGED = "did_unchanged"
    DID_NODE_TREND = "did_node_trend"
    BEFORE_AFTER = "before_after"


class WindowTotals(_Frozen):
    """Settled outbound traffic of one channel (or a control group) over one window."""

    hours: float = Field(ge=0)
    forwards: int = Field(ge=0)
    revenue_msat: int = Field(ge=0)
    volume_msat: int = Field(ge=0)

    def per_hour(self, field: str) -> float:
        return getattr(self, field) / self.hours if self.hours > 0 else 0.0


class FeeOutcome(_Frozen):
    """A fee change's measured effect, or the reason it could not be measured (never a silent 0).

    `actual_benefit_msat` is the revenue delta per hour against the counterfactual (own
    before-rate × `trend`, see `method`) times the window's hours; `prediction_error_msat` is
    actual minus predicted. `window_start`/`window_end` bound the compared traffic (the change
    is in between); a measured outcome always names its method and trend.
    """

    scid: str
    changed_at: datetime
    window_s: int = Field(gt=0)
    status: OutcomeStatus
    detail: str
    change_id: str | None = None
    method: OutcomeMethod | None = None
    trend: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    control_scids: tuple[str, ...] = ()
    treated_before: WindowTotals | None = None
    treated_after: WindowTotals | None = None
    control_before: WindowTotals | None = None
    control_after: WindowTotals | None = None
    did_revenue_msat_per_h: float | None = None
    did_volume_msat_per_h: float | None = None
    did_forwards_per_h: float | None = None
    actual_benefit_msat: int | None = None
    predicted_benefit_msat: int | None = None
    prediction_error_msat: int | None = None

    @model_validator(mode="after")
    def _measured_has_number(self) -> FeeOutcome:
        measured = self.status is OutcomeStatus.MEASURED
        if measured != (self.actual_benefit_msat is not None):
            raise ValueError(
                f"outcome for {self.scid}: status={self.status} with "
                f"actual_benefit_msat={self.actual_benefit_msat}"
            )
        if measured != (self.method is not None and self.trend is not None):
            raise ValueError(
                f"outcome for {self.scid}: status={self.status} with method={self.method} "
                f"trend={self.trend} (a measured outcome names both, no other does)"
            )
        return self
