"""Revenue model over a fee ladder, and Thompson sampling on it (pure).

Why Gamma-Poisson on forward counts rather than a log-normal on revenue:
- forwards arrive as a point process (SimLN draws exponential inter-arrival times), so the count
  at a fee over h hours is Poisson(λ·h); the Gamma prior is conjugate, so after n forwards in h
  hours the posterior is Gamma(α + n, β + h): exact, cheap, nothing to fit;
- hours without a forward are information (β grows, α does not), so the posterior mean of a
  fee that earns nothing falls, which is what a cold channel needs; a log-normal cannot take
  a zero, and zeros are most of a small node's data (51 forwards in 3 weeks on 16 channels);
- exposure in hours makes unequal dwell times at each fee comparable.
Revenue per hour at a fee is then λ times the fee per forward (base + ppm × mean amount / 1e6);
the mean amount is shrunk toward the channel's pooled amount, so it becomes arm-specific once an
arm has data (large payments avoid dear routes).

The prior is centred on the market. Expected demand at fee f is λ₀·D(f) with D(f) = exp(1 − f/m),
m the competitors' median ppm toward the same peer, so prior revenue f·D(f) peaks exactly at m:
before any data the controller believes the market price is best. λ₀ is learnt from all of the
channel's data (a pooled Gamma-Poisson on D-weighted exposure), so a channel that never forwards
lowers every arm together but keeps their order, and keeps exploring around the market instead
of freezing (the audit's "thompson_cold_start (fwds=0)" trap). Pooling reuses an arm's data in
its own prior: a mild double count, bounded by `arm_prior_hours`, accepted for the sharing it buys.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from models.fees import FeeHistory, FeeLevelStats, FeeTuning, MarketView

_AMOUNT_PSEUDO_FORWARDS = 3.0
_MIN_SHAPE = 1e-9


@dataclass(frozen=True)
class Arm:
    """One ladder fee with its Gamma posterior on forwards per hour."""

    fee_ppm: int
    alpha: float
    beta_h: float
    amount_msat: float
    hours: float
    forwards: float

    @property
    def mean_forwards_per_h(self) -> float:
        return self.alpha / self.beta_h


def fee_ladder(floor_ppm: int, ceiling_ppm: int, anchor_ppm: float, ratio: float) -> tuple[int, ...]:
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


def demand_shape(fee_ppm: float, market_ppm: float) -> float:
    """Prior relative demand at a fee: 1 at the market median, e at 0 ppm, falling beyond."""
    return math.exp(1.0 - fee_ppm / market_ppm)


def _log_fee(fee_ppm: float) -> float:
    return math.log(max(fee_ppm, 0.5))


@dataclass(frozen=True)
class RevenueModel:
    market_ppm: float
    base_fee_msat: int
    pooled_rate_per_h: float
    pooled_amount_msat: float
    arms: tuple[Arm, ...]

    def nearest_arm(self, fee_ppm: float) -> Arm:
        target = _log_fee(fee_ppm)
        return min(self.arms, key=lambda arm: abs(_log_fee(arm.fee_ppm) - target))

    def mean_revenue_msat_per_h(self, fee_ppm: int, base_fee_msat: int | None = None) -> float:
        """Posterior-mean revenue at any fee: the nearest arm's rate, moved along the prior curve."""
        base = self.base_fee_msat if base_fee_msat is None else base_fee_msat
        arm = self.nearest_arm(fee_ppm)
        shift = math.exp(min((arm.fee_ppm - fee_ppm) / self.market_ppm, 700.0))
        rate_per_h = arm.mean_forwards_per_h * shift
        return rate_per_h * (base + fee_ppm * arm.amount_msat / 1_000_000)

    def sample_best_arm(self, rng: random.Random) -> Arm:
        """Thompson sampling: draw each arm's rate from its posterior, take the best revenue."""
        best_arm, best_revenue = self.arms[0], -1.0
        for arm in self.arms:
            rate_per_h = rng.gammavariate(arm.alpha, 1.0 / arm.beta_h)
            revenue = rate_per_h * (self.base_fee_msat + arm.fee_ppm * arm.amount_msat / 1e6)
            if revenue > best_revenue:
                best_arm, best_revenue = arm, revenue
        return best_arm

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
    """Posterior per ladder arm from our own levels plus down-weighted fleet observations."""
    market_ppm = market_anchor_ppm(market, fallback_anchor_ppm, tuning)
    ladder = fee_ladder(floor_ppm, ceiling_ppm, market_ppm, tuning.ladder_ratio)
    weighted: list[tuple[FeeLevelStats, float]] = [(level, 1.0) for level in history.levels]
    weighted += [(level, tuning.fleet_observation_weight) for level in market.fleet_levels]

    hours = dict.fromkeys(ladder, 0.0)
    forwards = dict.fromkeys(ladder, 0.0)
    volume = dict.fromkeys(ladder, 0.0)
    total_forwards = total_volume = exposure_h = 0.0
    log_ladder = [(_log_fee(fee), fee) for fee in ladder]
    for level, weight in weighted:
        if weight <= 0:
            continue
        target = _log_fee(level.fee_ppm)
        fee = min(log_ladder, key=lambda item: abs(item[0] - target))[1]
        hours[fee] += level.hours * weight
        forwards[fee] += level.forwards * weight
        volume[fee] += level.volume_msat * weight
        total_forwards += level.forwards * weight
        total_volume += level.volume_msat * weight
        exposure_h += level.hours * weight * demand_shape(level.fee_ppm, market_ppm)

    prior_forwards = tuning.prior_forwards_per_day / 24.0 * tuning.prior_hours
    pooled_rate_per_h = (prior_forwards + total_forwards) / (tuning.prior_hours + exposure_h)
    pooled_amount_msat = (
        total_volume + _AMOUNT_PSEUDO_FORWARDS * tuning.default_forward_amount_msat
    ) / (total_forwards + _AMOUNT_PSEUDO_FORWARDS)
    arms = tuple(
        Arm(
            fee_ppm=fee,
            alpha=max(
                pooled_rate_per_h * demand_shape(fee, market_ppm) * tuning.arm_prior_hours,
                _MIN_SHAPE,
            )
            + forwards[fee],
            beta_h=tuning.arm_prior_hours + hours[fee],
            amount_msat=(volume[fee] + _AMOUNT_PSEUDO_FORWARDS * pooled_amount_msat)
            / (forwards[fee] + _AMOUNT_PSEUDO_FORWARDS),
            hours=hours[fee],
            forwards=forwards[fee],
        )
        for fee in ladder
    )
    return RevenueModel(
        market_ppm=market_ppm,
        base_fee_msat=base_fee_msat,
        pooled_rate_per_h=pooled_rate_per_h,
        pooled_amount_msat=pooled_amount_msat,
        arms=arms,
    )
