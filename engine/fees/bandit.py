"""Revenue model over a fee ladder, and Thompson sampling on it (pure).

Why Gamma-Poisson on forward counts rather than a log-normal on revenue:
- forwards arrive as a point process (SimLN draws exponential inter-arrival times), so the count
  at a fee over h hours is Poisson(λ·h); the Gamma prior is conjugate, so after n forwards in h
  hours the posterior is Gamma(α + n, β + h): exact, cheap, nothing to fit;
- hours without a forward are information (β grows, α does not), so the posterior of a fee that
  earns nothing falls, which is what a cold channel needs; a log-normal cannot take a zero, and
  zeros are most of a small node's data (the audit: 51 forwards in 3 weeks on 16 channels);
- exposure in hours makes unequal dwell times at each fee comparable.

Two levels. The demand curve (engine.fees.demand) shares information across all fees and puts
the prior optimum at the competitors' median; on top, each ladder arm has its own Gamma-Poisson
posterior whose prior mean is the curve's, worth `arm_prior_hours` of observation, so data at an
arm can overrule a curve of the wrong shape. (The curve is fitted on the same data: a mild double
count, bounded by arm_prior_hours, accepted for the sharing it buys.) Revenue per hour is λ times
the fee per forward, base + ppm × mean amount / 1e6, with the arm's mean amount shrunk toward the
channel's (large payments avoid dear routes, so amounts may differ by fee).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from engine.fees.demand import DemandCurve, fit_demand_curve, relative_demand
from models.fees import FeeHistory, FeeLevelStats, FeeTuning, MarketView

_AMOUNT_PSEUDO_FORWARDS = 3.0
_MIN_SHAPE = 1e-9


def fee_ladder(
    floor_ppm: int, ceiling_ppm: int, anchor_ppm: float, ratio: float
) -> tuple[int, ...]:
    """Geometric fee levels in [max(floor, 1), ceiling] through the anchor (the market median).

    Anchoring on the market makes its median an arm exactly. Zero is never an arm: a 0 ppm
    external channel earns only its base fee, which no ladder step can learn about.
    """
    if ceiling_ppm <= 0:
        return (0,)
    low = max(floor_ppm, 1)
    anchor = min(max(anchor_ppm, low), ceiling_ppm)
    levels = {low, ceiling_ppm}
    value = anchor
    while value >= low:
        levels.add(round(value))
        value /= ratio
    value = anchor * ratio
    while value <= ceiling_ppm:
        levels.add(round(value))
        value *= ratio
    return tuple(sorted(v for v in levels if low <= v <= ceiling_ppm))


def _log_fee(fee_ppm: float) -> float:
    return math.log(max(fee_ppm, 0.5))


@dataclass(frozen=True)
class Arm:
    """One ladder fee: the curve's prior rate plus what was observed at this fee."""

    fee_ppm: int
    prior_forwards_per_h: float
    hours: float
    forwards: float
    amount_msat: float


@dataclass(frozen=True)
class RevenueModel:
    market_ppm: float
    base_fee_msat: int
    arm_prior_hours: float
    curve: DemandCurve
    arms: tuple[Arm, ...]

    def nearest_arm(self, fee_ppm: float) -> Arm:
        target = _log_fee(fee_ppm)
        return min(self.arms, key=lambda arm: abs(_log_fee(arm.fee_ppm) - target))

    def arm_forwards_per_h(self, arm: Arm) -> float:
        prior = arm.prior_forwards_per_h * self.arm_prior_hours
        return (prior + arm.forwards) / (self.arm_prior_hours + arm.hours)

    def mean_revenue_msat_per_h(self, fee_ppm: int, base_fee_msat: int | None = None) -> float:
        """Posterior-mean revenue at any fee: nearest arm's rate, moved along the curve."""
        base = self.base_fee_msat if base_fee_msat is None else base_fee_msat
        arm = self.nearest_arm(fee_ppm)
        at_arm = self.curve.mean_forwards_per_h(arm.fee_ppm)
        shift = self.curve.mean_forwards_per_h(fee_ppm) / at_arm if at_arm > 0 else 1.0
        rate_per_h = self.arm_forwards_per_h(arm) * shift
        return rate_per_h * (base + fee_ppm * arm.amount_msat / 1_000_000)

    def thompson_draw(self, rng: random.Random, current_ppm: float) -> tuple[Arm, float]:
        """One Thompson draw: a curve, then each arm's rate given it.

        Returns the arm with the best sampled revenue and its sampled gain over the arm nearest
        the current fee in the same draw (0.0 when that arm is the best), so the caller can
        ignore draws that promise too little to be worth a gossip update.
        """
        optimum_ppm, peak_rate_per_h = self.curve.sample(rng)
        current = self.nearest_arm(current_ppm)
        revenues: dict[int, float] = {}
        for arm in self.arms:
            prior = peak_rate_per_h * relative_demand(arm.fee_ppm, optimum_ppm)
            alpha = max(prior * self.arm_prior_hours, _MIN_SHAPE) + arm.forwards
            rate_per_h = rng.gammavariate(alpha, 1.0 / (self.arm_prior_hours + arm.hours))
            fee_msat = self.base_fee_msat + arm.fee_ppm * arm.amount_msat / 1_000_000
            revenues[arm.fee_ppm] = rate_per_h * fee_msat
        best = max(self.arms, key=lambda arm: revenues[arm.fee_ppm])
        held = revenues[current.fee_ppm]
        gain = revenues[best.fee_ppm] / held - 1.0 if held > 0 else math.inf
        return best, (0.0 if best is current else gain)

    def summary(self, limit: int = 8) -> list[dict[str, float | int]]:
        """The most-observed arms, for the decision's stored inputs."""
        observed = sorted((a for a in self.arms if a.hours > 0), key=lambda a: -a.hours)[:limit]
        return [
            {
                "fee_ppm": arm.fee_ppm,
                "hours": round(arm.hours, 2),
                "forwards": round(arm.forwards, 2),
                "mean_revenue_msat_per_h": round(self.mean_revenue_msat_per_h(arm.fee_ppm), 3),
            }
            for arm in sorted(observed, key=lambda a: a.fee_ppm)
        ]


def market_anchor_ppm(market: MarketView, fallback_ppm: int, tuning: FeeTuning) -> float:
    """The prior's centre: competitors' median, else our current fee, else the network median."""
    median = market.median_ppm
    if median is not None:
        return max(median, 1.0)
    return float(fallback_ppm) if fallback_ppm > 0 else float(tuning.default_market_ppm)


def build_revenue_model(
    history: FeeHistory,
    market: MarketView,
    *,
    floor_ppm: int,
    ceiling_ppm: int,
    base_fee_msat: int,
    fallback_anchor_ppm: int,
    tuning: FeeTuning,
) -> RevenueModel:
    """Curve and per-arm posteriors from our own levels plus down-weighted fleet observations."""
    market_ppm = market_anchor_ppm(market, fallback_anchor_ppm, tuning)
    ladder = fee_ladder(floor_ppm, ceiling_ppm, market_ppm, tuning.ladder_ratio)
    weighted: list[tuple[FeeLevelStats, float]] = [(level, 1.0) for level in history.levels]
    weighted += [(level, tuning.fleet_observation_weight) for level in market.fleet_levels]
    weighted = [(level, weight) for level, weight in weighted if weight > 0]

    hours = dict.fromkeys(ladder, 0.0)
    forwards = dict.fromkeys(ladder, 0.0)
    volume = dict.fromkeys(ladder, 0.0)
    log_ladder = [(_log_fee(fee), fee) for fee in ladder]
    for level, weight in weighted:
        target = _log_fee(level.fee_ppm)
        fee = min(log_ladder, key=lambda item: abs(item[0] - target))[1]
        hours[fee] += level.hours * weight
        forwards[fee] += level.forwards * weight
        volume[fee] += level.volume_msat * weight
    curve = fit_demand_curve(
        ((level.fee_ppm, level.hours * w, level.forwards * w) for level, w in weighted),
        scales_ppm=[fee for fee in ladder if fee > 0],
        centre_ppm=market_ppm,
        tuning=tuning,
    )
    total_forwards, total_volume = sum(forwards.values()), sum(volume.values())
    pooled_amount_msat = (
        total_volume + _AMOUNT_PSEUDO_FORWARDS * tuning.default_forward_amount_msat
    ) / (total_forwards + _AMOUNT_PSEUDO_FORWARDS)
    arms = tuple(
        Arm(
            fee_ppm=fee,
            prior_forwards_per_h=curve.mean_forwards_per_h(fee),
            hours=hours[fee],
            forwards=forwards[fee],
            amount_msat=(volume[fee] + _AMOUNT_PSEUDO_FORWARDS * pooled_amount_msat)
            / (forwards[fee] + _AMOUNT_PSEUDO_FORWARDS),
        )
        for fee in ladder
    )
    return RevenueModel(
        market_ppm=market_ppm,
        base_fee_msat=base_fee_msat,
        arm_prior_hours=tuning.arm_prior_hours,
        curve=curve,
        arms=arms,
    )
