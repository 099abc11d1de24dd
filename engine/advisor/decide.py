"""From opportunities to decisions: mode, state, expiry, and the memory of rejections.

The audit's expansion planner proposed 26 opens that operators rejected and then sat in
"25 consecutive rejections, 24h cooldown". Here a rejection blocks its (type, target) for a
cooldown that doubles with each rejection, its reason lowers the score of the same target (and
of the whole type when it was about cost), and a rejection rate above a threshold is an alert
for a person to look at the scoring, not a loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from engine.advisor.predict import predict
from models.advisor import (
    AdvisorConfig,
    AdvisorDecision,
    DecisionMode,
    DecisionState,
    Opportunity,
    OpportunityType,
    RejectionMemory,
    Skipped,
    TypeCalibration,
)

Key = tuple[OpportunityType, str]
COST_WORDS = ("cost", "capital", "budget", "onchain", "on-chain", "fee", "expensive", "funds")
ALWAYS_APPROVAL = frozenset(
    {OpportunityType.CHANNEL_OPEN, OpportunityType.CHANNEL_CLOSE, OpportunityType.FLEET_ASSISTANCE}
)


def cooldown_s(rejections: int, config: AdvisorConfig) -> int:
    """base × growth^(n−1), capped: 24 h, 48 h, 96 h, ... for the defaults."""
    if rejections <= 0:
        return 0
    grown = config.cooldown_base_s * config.cooldown_growth ** (rejections - 1)
    return int(min(grown, config.cooldown_max_s))


def build_memory(rejections: pl.DataFrame, config: AdvisorConfig) -> dict[Key, RejectionMemory]:
    """Rejected decisions (opportunity_type, target, answered_at, answer_reason) by key."""
    grouped: dict[Key, list[tuple[datetime, str]]] = {}
    for row in rejections.iter_rows(named=True):
        key = (OpportunityType(row["opportunity_type"]), row["target"])
        grouped.setdefault(key, []).append(
            (row["answered_at"].astimezone(UTC), row["answer_reason"] or "")
        )
    memory = {}
    for (kind, target), answers in grouped.items():
        answers.sort()
        last = answers[-1][0]
        memory[(kind, target)] = RejectionMemory(
            opportunity_type=kind,
            target=target,
            rejections=len(answers),
            last_rejected_at=last,
            cooldown_until=last + timedelta(seconds=cooldown_s(len(answers), config)),
            reasons=tuple(r for _, r in answers),
        )
    return memory


def score_penalties(
    memory: dict[Key, RejectionMemory], kind: OpportunityType, config: AdvisorConfig
) -> tuple[dict[str, float], float]:
    """Per-target multipliers (penalty^rejections) and one for the whole type when operators
    rejected it for cost: reasons feed the next scoring."""
    mine = [m for (k, _), m in memory.items() if k is kind]
    per_target = {m.target: config.rejection_penalty**m.rejections for m in mine}
    about_cost = any(any(w in r.lower() for w in COST_WORDS) for m in mine for r in m.reasons)
    return per_target, config.rejection_penalty if about_cost else 1.0


def rejection_rates(answers: pl.DataFrame) -> dict[OpportunityType, float]:
    """Share rejected among answered decisions (opportunity_type, state) per type."""
    rates = {}
    for kind in OpportunityType:
        typed = (
            answers.filter(pl.col("opportunity_type") == str(kind)) if answers.height else answers
        )
        if typed.height:
            rates[kind] = typed.filter(pl.col("state") == "rejected").height / typed.height
    return rates


def mode_for(opportunity: Opportunity, config: AdvisorConfig) -> DecisionMode:
    kind = opportunity.opportunity_type
    if kind in ALWAYS_APPROVAL:
        return DecisionMode.APPROVAL  # on-chain money: always a person
    limit = (
        config.auto_max_fee_step_pct
        if kind is OpportunityType.FEE
        else config.auto_max_rebalance_sat
    )
    return DecisionMode.AUTO if opportunity.size <= limit else DecisionMode.APPROVAL


def decision_id(run_id: str, opportunity: Opportunity) -> str:
    """Stable per run and opportunity, so a retried record task inserts nothing twice."""
    text = f"{run_id}:{opportunity.opportunity_type}:{opportunity.node_id}:{opportunity.target}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DecideContext:
    calibrations: dict[OpportunityType, TypeCalibration]
    memory: dict[Key, RejectionMemory] = field(default_factory=dict)
    open_keys: frozenset[Key] = frozenset()
    rates: dict[OpportunityType, float] = field(default_factory=dict)


def decide(
    opportunities: list[Opportunity],
    ctx: DecideContext,
    config: AdvisorConfig,
    now: datetime,
    run_id: str,
) -> tuple[list[AdvisorDecision], list[Skipped]]:
    decisions: list[AdvisorDecision] = []
    skipped: list[Skipped] = []
    taken: set[Key] = set(ctx.open_keys)
    for opp in opportunities:
        key = (opp.opportunity_type, opp.target)
        remembered = ctx.memory.get(key)
        if remembered is not None and remembered.cooldown_until > now:
            skipped.append(
                _skip(
                    opp,
                    f"rejected {remembered.rejections}× (last: "
                    f"{remembered.reasons[-1] or 'no reason'}); cooldown until "
                    f"{remembered.cooldown_until.isoformat()}",
                )
            )
            continue
        if key in taken:
            skipped.append(_skip(opp, "an open decision for this target already exists"))
            continue
        taken.add(key)
        prediction = predict(
            opp, ctx.calibrations[opp.opportunity_type], ctx.rates.get(opp.opportunity_type, 0.0)
        )
        mode = mode_for(opp, config)
        worth_it = prediction.predicted_benefit_msat >= max(config.min_benefit_msat, 1)
        if not worth_it:
            state, ttl = DecisionState.PROPOSED, config.auto_link_window_s
        elif mode is DecisionMode.AUTO:
            state, ttl = DecisionState.AUTO_APPLIED, config.auto_link_window_s
        else:
            state, ttl = DecisionState.PENDING_APPROVAL, config.approval_expiry_s
        decisions.append(
            AdvisorDecision(
                decision_id=decision_id(run_id, opp),
                run_id=run_id,
                decided_at=now,
                node_id=opp.node_id,
                opportunity_type=opp.opportunity_type,
                target=opp.target,
                action=opp.action,
                action_params=opp.action_params,
                owner_loop=opp.owner_loop,
                snapshot_metrics=opp.snapshot_metrics,
                raw_estimate_msat=opp.raw_estimate_msat,
                predicted_benefit_msat=prediction.predicted_benefit_msat,
                confidence=prediction.confidence,
                calibration_factor=prediction.calibration_factor,
                benefit_reason=prediction.benefit_reason,
                mode=mode,
                state=state,
                expires_at=now + timedelta(seconds=ttl),
                prior_rejections=remembered.rejections if remembered else 0,
            )
        )
    return decisions, skipped


def _skip(opp: Opportunity, reason: str) -> Skipped:
    return Skipped(opportunity_type=opp.opportunity_type, target=opp.target, reason=reason)


@dataclass(frozen=True)
class AlertSpec:
    key: str  # stored in the alert's details: the same condition is raised once
    kind: str
    message: str
    details: dict[str, Any]


def rejection_alerts(
    memory: dict[Key, RejectionMemory],
    answers: pl.DataFrame,
    alerted: frozenset[str],
    config: AdvisorConfig,
) -> list[AlertSpec]:
    """Repeated rejections of one target, and a type whose proposals are mostly rejected."""
    alerts = []
    for (kind, target), m in sorted(memory.items()):
        if m.rejections < config.rejection_alert_count:
            continue
        key = f"repeat:{kind}:{target}:{m.rejections}"
        if key not in alerted:
            alerts.append(
                AlertSpec(
                    key=key,
                    kind="advisor_repeated_rejections",
                    message=(
                        f"{kind} for {target} was rejected {m.rejections} times (last "
                        f"reason: {m.reasons[-1] or 'none'}); it is held until "
                        f"{m.cooldown_until.isoformat()} — review the advisor's {kind} "
                        f"scoring or its [advisor] limits"
                    ),
                    details={"key": key, "reasons": list(m.reasons)},
                )
            )
    for kind, rate in sorted(rejection_rates(answers).items()):
        typed = answers.filter(pl.col("opportunity_type") == str(kind))
        rejected = typed.filter(pl.col("state") == "rejected").height
        if typed.height < config.rejection_rate_min_answers or rate < config.rejection_alert_rate:
            continue
        key = f"rate:{kind}:{rejected}"
        if key not in alerted:
            alerts.append(
                AlertSpec(
                    key=key,
                    kind="advisor_rejection_rate",
                    message=(
                        f"operators rejected {rejected} of {typed.height} answered {kind} "
                        f"proposals ({rate:.0%} ≥ {config.rejection_alert_rate:.0%}); the "
                        f"advisor is proposing what they do not want: review its {kind} scoring"
                    ),
                    details={"key": key, "rate": rate, "answered": typed.height},
                )
            )
    return alerts
