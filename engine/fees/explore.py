"""Cold-start exploration: a channel without forwards keeps moving through the market range (pure).

The audit found most channels parked in "thompson_cold_start (fwds=0)" for weeks: without a
forward the learner had nothing to learn from, so it did nothing, so it never got a forward. Here
a channel with no settled forward in the lookback is walked through the competitors' range
[p25 / ratio, p75 × ratio]: first into the range at the rate limit's pace, then to the least
observed ladder fee in it after each `cold_start_dwell_s`. It never waits for data to move.
"""

from __future__ import annotations

import math
import random

from engine.fees.bandit import Arm, RevenueModel
from models.fees import FeeHistory, FeeTuning, MarketView


def is_cold(history: FeeHistory) -> bool:
    """No settled forward out of this channel in the lookback window."""
    return history.total_forwards == 0


def explore_range_ppm(
    market: MarketView, anchor_ppm: float, floor_ppm: int, ceiling_ppm: int, tuning: FeeTuning
) -> tuple[float, float]:
    """The competitors' interquartile range widened by one ladder step, inside our bounds.

    Without competitors the range is [anchor / 2, anchor × 2] around our prior's centre.
    """
    low_q, high_q = market.quantile_ppm(0.25), market.quantile_ppm(0.75)
    if low_q is None or high_q is None:
        low, high = anchor_ppm / 2, anchor_ppm * 2
    else:
        low, high = low_q / tuning.ladder_ratio, high_q * tuning.ladder_ratio
    low, high = max(low, floor_ppm, 1), min(high, ceiling_ppm)
    if low > high:
        pinned = min(max(anchor_ppm, floor_ppm), ceiling_ppm)
        return pinned, pinned
    return low, high


def cold_start_target(
    ladder_ppm: float,
    multiplier: float,
    history: FeeHistory,
    market: MarketView,
    model: RevenueModel,
    *,
    floor_ppm: int,
    ceiling_ppm: int,
    tuning: FeeTuning,
    rng: random.Random,
) -> tuple[int | None, dict[str, float]]:
    """The next ladder fee to try, or None while the current one is still dwelling; plus facts.

    `ladder_ppm` is the current fee without the scarcity `multiplier` (the controller applies the
    multiplier to whatever this returns); observed hours are looked up at the fee that would
    actually be posted, since that is where the history records them.
    """
    low, high = explore_range_ppm(market, model.market_ppm, floor_ppm, ceiling_ppm, tuning)
    in_range = [arm for arm in model.arms if low <= arm.fee_ppm <= high]
    if not in_range:
        in_range = [model.nearest_arm((low + high) / 2)]
    dwell_s = history.since_change.hours * 3600 if history.since_change else 0.0
    facts = {"explore_low_ppm": round(low, 1), "explore_high_ppm": round(high, 1)}
    facts["dwell_s"] = round(dwell_s)
    if ladder_ppm < low:
        return in_range[0].fee_ppm, facts
    if ladder_ppm > high:
        return in_range[-1].fee_ppm, facts
    if dwell_s < tuning.cold_start_dwell_s:
        return None, facts
    current_arm = model.nearest_arm(ladder_ppm)
    candidates = [arm for arm in in_range if arm.fee_ppm != current_arm.fee_ppm]
    if not candidates:
        candidates = _neighbours(model.arms, current_arm)
    if not candidates:
        return None, facts
    anchor = math.log(model.market_ppm)

    def preference(arm: Arm) -> tuple[float, float, float]:
        # Least observed (as posted) first, then closest to the market, then a seeded coin.
        observed_h = model.nearest_arm(arm.fee_ppm * multiplier).hours
        return (observed_h, abs(math.log(max(arm.fee_ppm, 1)) - anchor), rng.random())

    return min(candidates, key=preference).fee_ppm, facts


def _neighbours(arms: tuple[Arm, ...], current: Arm) -> list[Arm]:
    index = arms.index(current)
    return [arms[i] for i in (index - 1, index + 1) if 0 <= i < len(arms)]
