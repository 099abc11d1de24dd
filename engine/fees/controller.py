"""decide_fee: one channel's fee decision from policy, market, history and balance (pure).

Precedence, each step named in the decision's `reason`:
1. fleet peer (or fleet policy): fees.fleet_fee_ppm with 0 base, at once, whatever the floor,
   bounds or rate limit say; the audit's fleet channels carried 5-25 ppm for two weeks because a
   global min_fee_ppm won over the fleet rule.
2. static: the pinned fee, at once. passive: never touched.
3. dynamic, current fee outside its bounds: bounds_clamp, at once (a bound is a hard rule).
4. dynamic proposal, first match wins: drain_defence (multiplicative increase while outbound
   drains) > cold_start_explore (no forwards yet) > Thompson arm × scarcity multiplier (reason
   `scarcity` when the multiplier changed the move) > drain_recovery (additive decrease after a
   drain defence, until the Thompson target is reached).
5. at most max_step_pct per change, inside [floor, ceiling].
6. refill_floor: not below what refilling a channel costs while demand waits for its liquidity
   (engine.fees.guards.refill_floor_ppm); a floor, so it skips the step limit but not the ceiling.
7. hold_rate_limit within min_interval_s of the last change; hold_hysteresis below
   max(min_change_ppm, min_change_pct) so small moves do not spam gossip.
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any

from engine.fees.bandit import RevenueModel, build_revenue_model
from engine.fees.decision import assemble_decision, context_inputs, json_float
from engine.fees.explore import cold_start_target, is_cold
from engine.fees.guards import (
    drain_signal,
    hysteresis_ppm,
    max_step_ppm,
    rate_limit_remaining_s,
    refill_floor_ppm,
    scarcity_multiplier,
    step_toward,
)
from engine.fees.policy import fee_bounds
from models.fees import (
    DEFAULT_POLICY,
    DEFAULT_TUNING,
    ChannelFeeState,
    FeeDecision,
    FeeHistory,
    FeePolicy,
    FeeReason,
    FeeTuning,
    MarketView,
    PolicyKind,
    RefillSignal,
)
from models.settings import FeeConfig

_AFTER_DRAIN = (FeeReason.DRAIN_DEFENCE, FeeReason.DRAIN_RECOVERY)


def decide_fee(
    channel: ChannelFeeState,
    history: FeeHistory,
    market: MarketView,
    config: FeeConfig,
    now: datetime,
    rng: random.Random,
    *,
    policy: FeePolicy | None = None,
    refill: RefillSignal | None = None,
    tuning: FeeTuning = DEFAULT_TUNING,
) -> FeeDecision:
    """The fee this channel should post now, why, and what the revenue model expects of it.

    `policy` is the resolved policy (engine.fees.policy.resolve_policy); None means dynamic
    within the global bounds. A fleet channel resolves to fleet whatever `policy` says.
    `refill` (refill cost and missed demand) only matters to a dynamic channel.
    """
    if now.tzinfo is None:
        raise ValueError("decide_fee needs a timezone-aware `now` (UTC); got a naive datetime")
    if history.scid != channel.scid:
        raise ValueError(f"history is for {history.scid}, channel is {channel.scid}")
    policy = policy or DEFAULT_POLICY
    inputs = context_inputs(channel, history, market, policy, now)
    if channel.is_fleet or policy.kind is PolicyKind.FLEET:
        inputs["note"] = "fleet channels post fees.fleet_fee_ppm with 0 base; no floor applies"
        return assemble_decision(
            channel,
            now,
            PolicyKind.FLEET,
            FeeReason.FLEET_POLICY,
            (0, config.fleet_fee_ppm),
            model=None,
            inputs=inputs,
            tuning=tuning,
        )
    floor_ppm, ceiling_ppm = fee_bounds(config, policy)
    model = build_revenue_model(
        history,
        market,
        floor_ppm=floor_ppm,
        ceiling_ppm=ceiling_ppm,
        base_fee_msat=config.base_fee_msat,
        fallback_anchor_ppm=channel.fee_ppm,
        tuning=tuning,
    )
    inputs |= {
        "floor_ppm": floor_ppm,
        "ceiling_ppm": ceiling_ppm,
        "prior_centre_ppm": round(model.market_ppm, 2),
        "curve_optimum_ppm": round(model.curve.mean_optimum_ppm, 2),
        "arms": model.summary(),
    }
    if policy.kind is PolicyKind.STATIC:
        assert policy.fee_ppm is not None  # FeePolicy guarantees it for static
        base = config.base_fee_msat if policy.base_fee_msat is None else policy.base_fee_msat
        return assemble_decision(
            channel,
            now,
            policy.kind,
            FeeReason.STATIC_POLICY,
            (base, policy.fee_ppm),
            model=model,
            inputs=inputs,
            tuning=tuning,
        )
    if policy.kind is PolicyKind.PASSIVE:
        unchanged = (channel.base_fee_msat, channel.fee_ppm)
        return assemble_decision(
            channel,
            now,
            policy.kind,
            FeeReason.PASSIVE_POLICY,
            unchanged,
            model=model,
            inputs=inputs,
            tuning=tuning,
        )
    return _decide_dynamic(
        channel,
        history,
        market,
        config,
        now,
        rng,
        model,
        (floor_ppm, ceiling_ppm),
        refill,
        inputs,
        tuning,
    )


def _decide_dynamic(
    channel: ChannelFeeState,
    history: FeeHistory,
    market: MarketView,
    config: FeeConfig,
    now: datetime,
    rng: random.Random,
    model: RevenueModel,
    bounds: tuple[int, int],
    refill: RefillSignal | None,
    inputs: dict[str, Any],
    tuning: FeeTuning,
) -> FeeDecision:
    floor_ppm, ceiling_ppm = bounds
    current = channel.fee_ppm
    base = config.base_fee_msat
    if not floor_ppm <= current <= ceiling_ppm:
        clamped = min(max(current, floor_ppm), ceiling_ppm)
        return assemble_decision(
            channel,
            now,
            PolicyKind.DYNAMIC,
            FeeReason.BOUNDS_CLAMP,
            (base, clamped),
            model=model,
            inputs=inputs,
            tuning=tuning,
        )
    target, reason = _propose(
        channel, history, market, config, model, floor_ppm, ceiling_ppm, inputs, tuning, rng
    )
    proposed = min(max(step_toward(current, target, config, tuning), floor_ppm), ceiling_ppm)
    threshold = hysteresis_ppm(current, config, tuning)
    if reason is FeeReason.COLD_START_EXPLORE and 0 < abs(proposed - current) < threshold:
        # Exploration must never be swallowed by hysteresis: widen to the threshold.
        widened = current + math.copysign(threshold, proposed - current)
        proposed = int(min(max(widened, floor_ppm), ceiling_ppm))
    refill_ppm = refill_floor_ppm(channel, refill, tuning)
    if refill is not None:
        inputs |= {
            "refill_route_ppm": refill.route_ppm,
            "refill_missed_forwards": refill.missed_forwards,
            "refill_net_outflow_msat": refill.net_outflow_msat,
            "refill_floor_ppm": refill_ppm,
        }
    if refill_ppm is not None and proposed < min(refill_ppm, ceiling_ppm):
        proposed, reason = min(refill_ppm, ceiling_ppm), FeeReason.REFILL_FLOOR
    wait_s = rate_limit_remaining_s(channel, now, config)
    inputs |= {
        "target_ppm": target,
        "proposed_ppm": proposed,
        "hysteresis_ppm": threshold,
        "rate_limit_wait_s": round(wait_s),
    }
    new_ppm, new_base = proposed, base
    if wait_s > 0:
        new_base = channel.base_fee_msat
        if proposed != current:
            new_ppm, reason = current, FeeReason.HOLD_RATE_LIMIT
    elif proposed != current and abs(proposed - current) < threshold:
        new_ppm, reason = current, FeeReason.HOLD_HYSTERESIS
    if new_ppm == current and new_base != channel.base_fee_msat:
        reason = FeeReason.BASE_FEE_SYNC
    return assemble_decision(
        channel,
        now,
        PolicyKind.DYNAMIC,
        reason,
        (new_base, new_ppm),
        model=model,
        inputs=inputs,
        tuning=tuning,
    )


def _propose(
    channel: ChannelFeeState,
    history: FeeHistory,
    market: MarketView,
    config: FeeConfig,
    model: RevenueModel,
    floor_ppm: int,
    ceiling_ppm: int,
    inputs: dict[str, Any],
    tuning: FeeTuning,
    rng: random.Random,
) -> tuple[int, FeeReason]:
    """Target fee (before step limit and gates) and the rule that chose it."""
    current = channel.fee_ppm

    def clamp(fee_ppm: float) -> int:
        return int(min(max(round(fee_ppm), floor_ppm), ceiling_ppm))

    multiplier = scarcity_multiplier(channel.local_share, tuning)
    drain = drain_signal(channel, history, tuning)
    inputs |= {
        "scarcity_multiplier": round(multiplier, 4),
        "net_outflow_msat": drain.net_outflow_msat,
        "drain_window_s": history.drain_window_s,
        "hours_to_empty": None if drain.hours_to_empty is None else round(drain.hours_to_empty, 2),
        "drain_active": drain.active,
        "last_change_reason": None
        if history.last_change_reason is None
        else str(history.last_change_reason),
    }
    if drain.active:
        # Multiplicative increase: the largest step allowed, every time the rate limit opens.
        return clamp(current + max_step_ppm(current, config, tuning)), FeeReason.DRAIN_DEFENCE
    # The posted fee is a ladder price times the scarcity multiplier; learning and exploring
    # happen on the ladder price, so a depleted channel's multiplier is applied once, not again
    # on top of an already raised fee every cycle.
    ladder_ppm = current / multiplier
    if is_cold(history):
        explore_ppm, facts = cold_start_target(
            ladder_ppm,
            multiplier,
            history,
            market,
            model,
            floor_ppm=floor_ppm,
            ceiling_ppm=ceiling_ppm,
            tuning=tuning,
            rng=rng,
        )
        inputs |= facts
        if explore_ppm is None:
            return current, FeeReason.COLD_START_EXPLORE
        return clamp(explore_ppm * multiplier), FeeReason.COLD_START_EXPLORE
    arm, gain = model.thompson_draw(rng, ladder_ppm)
    inputs |= {"thompson_arm_ppm": arm.fee_ppm, "thompson_gain": json_float(gain)}
    # A draw promising less than thompson_min_gain_pct keeps the current ladder price:
    # near-equal arms would otherwise trade places every cycle (gossip churn that teaches little).
    if gain * 100 < tuning.thompson_min_gain_pct:
        arm = model.nearest_arm(ladder_ppm)
    plain, target = clamp(arm.fee_ppm), clamp(arm.fee_ppm * multiplier)
    reason = FeeReason.THOMPSON
    if step_toward(current, target, config, tuning) != step_toward(current, plain, config, tuning):
        reason = FeeReason.SCARCITY
    if history.last_change_reason in _AFTER_DRAIN and target < current:
        # Additive decrease after a drain defence: a fixed tenth of the market per step (at least
        # the hysteresis threshold, so it is never held), until the Thompson target is reached.
        step = max(
            round(model.market_ppm * tuning.aimd_decrease_share),
            hysteresis_ppm(current, config, tuning),
        )
        return max(target, current - step), FeeReason.DRAIN_RECOVERY
    return target, reason
