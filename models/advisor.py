"""The advisor's contracts: opportunity types, decisions, approvals, calibration.

The 2026-02 audit found 1,079 advisor decisions with snapshot_metrics NULL, predicted benefit 0
and type "unknown", so nothing could be learned from them. Here the type is a closed enum, every
decision carries the inputs it saw and a prediction with the reason behind it, and the mode says
who acts: the owning loop inside configured limits (auto), or an operator (approval).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpportunityType(StrEnum):
    FEE = "fee"  # a mispriced channel: our fee far from what the market charges to that peer
    REBALANCE = "rebalance"  # a depleted channel whose outbound demand it cannot serve
    CHANNEL_OPEN = "channel_open"  # a graph node worth a channel, revenue above cost
    CHANNEL_CLOSE = "channel_close"  # a zombie channel whose capital earns nothing
    FLEET_ASSISTANCE = "fleet_assistance"  # a fleet member's open proposal (fleet loop)


class OwnerLoop(StrEnum):
    """Who carries a decision out: fee and rebalance moves belong to their loops."""

    FEES = "fees"
    REBALANCE = "rebalance"
    ADVISOR = "advisor"  # opens and closes, after approval, by the advisor-execute flow


class DecisionMode(StrEnum):
    AUTO = "auto"
    APPROVAL = "approval"


class DecisionState(StrEnum):
    PROPOSED = "proposed"  # recorded, not pursued (predicted benefit below the bar)
    AUTO_APPLIED = "auto_applied"  # inside limits, handed to the owning loop
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXECUTED = "executed"  # the action happened (or the owning loop's action was linked)


OPEN_STATES = frozenset({DecisionState.AUTO_APPLIED, DecisionState.PENDING_APPROVAL})


class AdvisorConfig(_Frozen):
    """Limits of the advisor; `[advisor]` in hiveops.toml.

    Auto mode covers only small moves the owning loops would make anyway; anything that commits
    on-chain money (opens, closes) always waits for an operator.
    """

    auto_max_fee_step_pct: float = Field(default=25.0, gt=0, le=100)
    auto_max_rebalance_sat: int = Field(default=200_000, ge=0)
    min_benefit_msat: int = Field(default=1_000, ge=0)
    approval_expiry_s: int = Field(default=48 * 3600, gt=0)
    auto_link_window_s: int = Field(default=48 * 3600, gt=0)
    fee_horizon_s: int = Field(default=72 * 3600, gt=0)
    rebalance_horizon_s: int = Field(default=7 * 86400, gt=0)
    open_horizon_days: int = Field(default=90, ge=1)
    open_amount_sat: int = Field(default=2_000_000, gt=0)
    open_cost_sat: int = Field(default=2_500, ge=0)
    close_cost_sat: int = Field(default=1_500, ge=0)
    capital_cost_pct_per_year: float = Field(default=5.0, ge=0, le=100)
    close_idle_days: int = Field(default=14, ge=1)
    max_open_candidates: int = Field(default=3, ge=0, le=50)
    cooldown_base_s: int = Field(default=24 * 3600, ge=0)
    cooldown_growth: float = Field(default=2.0, ge=1.0, le=10.0)
    cooldown_max_s: int = Field(default=30 * 86400, ge=0)
    rejection_penalty: float = Field(default=0.5, gt=0, le=1)
    rejection_alert_count: int = Field(default=3, ge=1)
    rejection_alert_rate: float = Field(default=0.8, gt=0, le=1)
    rejection_rate_min_answers: int = Field(default=5, ge=1)
    prior_strength: float = Field(default=4.0, gt=0)
    prior_confidence: float = Field(default=0.2, ge=0, le=1)
    approval_poll_s: float = Field(default=5.0, gt=0, le=600)
    launch_approval_runs: bool = False  # start an advisor-execute run (deployment) per approval

    @model_validator(mode="after")
    def _cooldown_bounds(self) -> AdvisorConfig:
        if self.cooldown_max_s < self.cooldown_base_s:
            raise ValueError(
                f"cooldown_max_s={self.cooldown_max_s} is below cooldown_base_s="
                f"{self.cooldown_base_s}; raise cooldown_max_s"
            )
        return self


DEFAULT_ADVISOR_CONFIG = AdvisorConfig()


def advisor_config(settings: object) -> AdvisorConfig:
    """`settings.advisor` once Settings has it; the defaults until then."""
    found = getattr(settings, "advisor", None)
    return found if isinstance(found, AdvisorConfig) else DEFAULT_ADVISOR_CONFIG


class Opportunity(_Frozen):
    """Something worth doing, with the uncalibrated estimate of what it would earn.

    `raw_estimate_msat` is the scan's own economics over the type's horizon; the predictor
    scales it by what outcomes of this type really earned. `size` is what auto limits compare:
    fee step in percent, rebalance amount in sat, channel amount in sat.
    """

    opportunity_type: OpportunityType
    node_id: str
    target: str  # scid for fee/rebalance/close, peer node id for opens and fleet assistance
    action: str
    action_params: dict[str, Any]
    snapshot_metrics: dict[str, Any]
    raw_estimate_msat: int
    estimate_reason: str = Field(min_length=1)
    size: float = Field(ge=0)
    owner_loop: OwnerLoop


class Prediction(_Frozen):
    predicted_benefit_msat: int
    confidence: float = Field(ge=0, le=1)
    calibration_factor: float
    benefit_reason: str = Field(min_length=1)


class TypeCalibration(_Frozen):
    """Per-type shrinkage: actual ≈ factor × raw estimate, fitted on measured outcomes."""

    opportunity_type: OpportunityType
    samples: int = Field(ge=0)
    factor: float
    confidence: float = Field(ge=0, le=1)
    mean_abs_error_msat: float | None = None


class RejectionMemory(_Frozen):
    """What operators said about one (type, target): the cooldown grows with each rejection."""

    opportunity_type: OpportunityType
    target: str
    rejections: int = Field(ge=0)
    last_rejected_at: datetime
    cooldown_until: datetime
    reasons: tuple[str, ...] = ()


class AdvisorDecision(_Frozen):
    decision_id: str
    run_id: str
    decided_at: datetime
    node_id: str
    opportunity_type: OpportunityType
    target: str
    action: str
    action_params: dict[str, Any]
    owner_loop: OwnerLoop
    snapshot_metrics: dict[str, Any]
    raw_estimate_msat: int
    predicted_benefit_msat: int
    confidence: float = Field(ge=0, le=1)
    calibration_factor: float
    benefit_reason: str = Field(min_length=1)
    mode: DecisionMode
    state: DecisionState
    expires_at: datetime | None
    prior_rejections: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _mode_matches_state(self) -> AdvisorDecision:
        approval_only = {DecisionState.PENDING_APPROVAL, DecisionState.APPROVED}
        if self.mode is DecisionMode.AUTO and self.state in approval_only:
            raise ValueError(f"decision {self.decision_id}: auto mode cannot be {self.state}")
        if self.state in OPEN_STATES and self.expires_at is None:
            raise ValueError(f"decision {self.decision_id}: an open decision needs expires_at")
        return self


class Skipped(_Frozen):
    """An opportunity the advisor did not turn into a decision, and why."""

    opportunity_type: OpportunityType
    target: str
    reason: str


class CalibrationHalf(_Frozen):
    """Error of the predictions made in one half, and what the uncalibrated prior would have
    scored on the same outcomes (so a lower error from easier outcomes is not taken for
    learning).

    `relative_error` is the error per msat of outcome (Σ|predicted − actual| / Σ|actual|): 1.0
    is what predicting 0 scores. Halves of a run differ in scale (a busy node's fee outcomes
    grew 4× over three weeks), so the halves are compared on it, not on the msat error.
    """

    samples: int
    mean_abs_error_msat: float | None
    prior_mean_abs_error_msat: float | None = None
    mean_abs_actual_msat: float | None = None

    @property
    def relative_error(self) -> float | None:
        return _ratio(self.mean_abs_error_msat, self.mean_abs_actual_msat)

    @property
    def prior_relative_error(self) -> float | None:
        return _ratio(self.prior_mean_abs_error_msat, self.mean_abs_actual_msat)


def _ratio(error: float | None, scale: float | None) -> float | None:
    return None if error is None or not scale else error / scale


class CalibrationRow(_Frozen):
    """Prediction error of one type in the first vs the second half of a period: of the
    advisor's own decisions as made, or (`evidence` = "fee changes") of the fees loop's changes
    as the fee prior's centre in force at each would have predicted them (walk-forward)."""

    opportunity_type: OpportunityType
    first: CalibrationHalf
    second: CalibrationHalf
    evidence: Literal["decisions", "fee changes"] = "decisions"

    @property
    def improved(self) -> bool | None:
        """Lower relative error in the second half (see CalibrationHalf)."""
        a, b = self.first.relative_error, self.second.relative_error
        return None if a is None or b is None else b < a

    @property
    def beat_prior(self) -> bool | None:
        """Second-half predictions closer than the prior alone would have been."""
        b, p = self.second.mean_abs_error_msat, self.second.prior_mean_abs_error_msat
        return None if b is None or p is None else b < p
