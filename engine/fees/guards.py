"""Guards around every dynamic fee move: scarcity, drain, step size, hysteresis, rate limit (pure).

Each guard is small and separately testable; `controller.decide_fee` composes them in one
visible order so the stored reason says which one decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from models.fees import ChannelFeeState, FeeHistory, FeeTuning, RefillSignal
from models.settings import FeeConfig


def scarcity_multiplier(local_share: float, tuning: FeeTuning) -> float:
    """Price multiplier from our outbound share: ×1 in the balanced band, up to ×cap when empty.

    Bounded on purpose: CLBOSS's exp(ln50·(0.5 − r)) reaches ×7 and LiT only bumps "mildly" at
    7/8 depletion. A depleted side is scarce (raise it: ration the liquidity left, invite
    inbound flow); an overfull side is idle (lower it, down to 1/cap when full). Inside
    [scarcity_low_share, scarcity_high_share] balance moves never touch the fee, which keeps
    ordinary traffic from causing gossip churn.
    """
    cap = tuning.scarcity_max_mult
    low, high = tuning.scarcity_low_share, tuning.scarcity_high_share
    if low > 0 and local_share < low:
        return cap ** ((low - local_share) / low)
    if high < 1 and local_share > high:
        return cap ** (-(local_share - high) / (1 - high))
    return 1.0


@dataclass(frozen=True)
class DrainSignal:
    active: bool
    net_outflow_msat: int
    hours_to_empty: float | None


def drain_signal(channel: ChannelFeeState, history: FeeHistory, tuning: FeeTuning) -> DrainSignal:
    """Outbound draining fast enough to empty the channel within the horizon.

    Two conditions, so noise does not trigger it: the net outflow over the window is at least
    `drain_min_share` of capacity, and at that rate the local side empties within
    `drain_horizon_s`. Net (out minus in) rather than gross, because flow that comes back is not
    drain.
    """
    net_msat = history.net_outflow_msat
    if net_msat <= 0:
        return DrainSignal(active=False, net_outflow_msat=net_msat, hours_to_empty=None)
    rate_msat_per_h = net_msat / (history.drain_window_s / 3600)
    hours_to_empty = channel.local_msat / rate_msat_per_h
    active = (
        net_msat >= tuning.drain_min_share * channel.capacity_msat
        and hours_to_empty * 3600 < tuning.drain_horizon_s
    )
    return DrainSignal(active=active, net_outflow_msat=net_msat, hours_to_empty=hours_to_empty)


def refill_floor_ppm(
    channel: ChannelFeeState, refill: RefillSignal | None, tuning: FeeTuning
) -> int | None:
    """The least fee at which refilling this channel pays, while it sells more than it holds.

    Replacement cost: a sink's outbound is only replaced by paying a circular route, so selling
    it below that route's price guarantees no refill ever pays (the busy scenario's best sink
    missed thousands of forwards at 30-300 ppm while its refill cost 480-570 ppm). Demand is
    "more than it holds" when forwards failed for want of liquidity, or when its net outflow
    over the window is at least what it has left. At route_ppm / refill_cost_share the
    rebalance loop's EV gate clears; if demand does not hold at that price, the failures and
    the outflow stop, the floor lapses and the ordinary rules take over. None when it does not
    apply.
    """
    if refill is None or refill.route_ppm is None:
        return None
    if channel.local_share >= tuning.refill_max_share:
        return None
    selling = refill.net_outflow_msat > 0 and refill.net_outflow_msat >= channel.local_msat
    if refill.missed_forwards < tuning.refill_min_missed and not selling:
        return None
    return math.ceil(refill.route_ppm / tuning.refill_cost_share)


def hysteresis_ppm(current_ppm: int, config: FeeConfig, tuning: FeeTuning) -> int:
    """Smallest change worth a gossip update: min_change_ppm and min_change_pct of the fee."""
    return max(config.min_change_ppm, math.ceil(current_ppm * tuning.min_change_pct / 100))


def max_step_ppm(current_ppm: int, config: FeeConfig, tuning: FeeTuning) -> int:
    """Largest change per update: max_step_pct of the fee, never below the hysteresis threshold.

    The lower limit matters twice: 25 % of 0 ppm is 0 (a channel at 0 could never leave it), and
    a step smaller than the hysteresis threshold would always be held (a controller that never
    moves, again).
    """
    step = round(current_ppm * config.max_step_pct / 100)
    return max(step, hysteresis_ppm(current_ppm, config, tuning), 1)


def step_toward(current_ppm: int, target_ppm: int, config: FeeConfig, tuning: FeeTuning) -> int:
    limit = max_step_ppm(current_ppm, config, tuning)
    return current_ppm + max(-limit, min(limit, target_ppm - current_ppm))


def rate_limit_remaining_s(channel: ChannelFeeState, now: datetime, config: FeeConfig) -> float:
    """Seconds until this channel may change again (0 when it may change now)."""
    if channel.last_change_at is None:
        return 0.0
    since_s = (now - channel.last_change_at).total_seconds()
    return max(0.0, config.min_interval_s - since_s)
