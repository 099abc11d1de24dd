"""The demand curve: forwards per hour λ(f) = λ₀ · exp(1 − f/s), learnt on a grid of s (pure).

Why this family: revenue f·λ(f) is unimodal with its peak exactly at f = s, the single-optimum
assumption CLBOSS's price theory also makes (ZmnSCPxj, lightning-dev 2021). So s *is* the
revenue-optimal fee, and its prior can be centred on the market: log-normal around the
competitors' median toward the same peer, σ = ln(optimum_prior_spread), wide enough that five
times the market stays plausible when the data say so.

λ₀ (demand at the optimum) has a Gamma(a₀, b₀) prior, conjugate for Poisson counts given s, so
each grid point's marginal likelihood is closed-form:
    log p(data | s) = Σ nᵢ·(1 − fᵢ/s) − (a₀ + N)·log(b₀ + Σ hᵢ·e^(1 − fᵢ/s)) + const
with nᵢ forwards in hᵢ hours at fee fᵢ and N = Σ nᵢ. Hours without a forward are information:
they push s below the fees that earned nothing, which is how a cold channel learns to go cheaper.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from models.fees import FeeTuning

_NEGLIGIBLE_LOG_WEIGHT = math.log(1e-9)


def relative_demand(fee_ppm: float, scale_ppm: float) -> float:
    """Demand at `fee_ppm` relative to demand at the optimum `scale_ppm` (e at 0 ppm)."""
    return math.exp(1.0 - fee_ppm / scale_ppm)


@dataclass(frozen=True)
class DemandCurve:
    """Posterior over the optimum s (grid weights) and, per s, the Gamma posterior of λ₀."""

    scales_ppm: tuple[float, ...]
    weights: tuple[float, ...]
    shape: float
    rates_h: tuple[float, ...]

    def mean_forwards_per_h(self, fee_ppm: float) -> float:
        return sum(
            weight * self.shape / rate_h * relative_demand(fee_ppm, scale)
            for scale, weight, rate_h in zip(
                self.scales_ppm, self.weights, self.rates_h, strict=True
            )
        )

    def sample(self, rng: random.Random) -> tuple[float, float]:
        """One posterior draw of (optimum s in ppm, λ₀ in forwards per hour)."""
        index = rng.choices(range(len(self.scales_ppm)), weights=self.weights)[0]
        return self.scales_ppm[index], rng.gammavariate(self.shape, 1.0 / self.rates_h[index])

    @property
    def mean_optimum_ppm(self) -> float:
        return math.exp(
            sum(w * math.log(s) for s, w in zip(self.scales_ppm, self.weights, strict=True))
        )


def fit_demand_curve(
    observations: Iterable[tuple[float, float, float]],
    scales_ppm: Iterable[float],
    centre_ppm: float,
    tuning: FeeTuning,
) -> DemandCurve:
    """Grid posterior from (fee_ppm, hours, forwards) observations; weights sum to 1."""
    observed = [(fee, hours, forwards) for fee, hours, forwards in observations if hours > 0]
    scales = tuple(float(s) for s in scales_ppm if s > 0) or (centre_ppm,)
    prior_shape = tuning.prior_forwards_per_day / 24.0 * tuning.prior_hours
    prior_rate_h = tuning.prior_hours
    total_forwards = sum(forwards for _, _, forwards in observed)
    sigma = math.log(tuning.optimum_prior_spread)
    log_weights: list[float] = []
    rates_h: list[float] = []
    for scale in scales:
        exposure_h = sum(h * relative_demand(f, scale) for f, h, _ in observed)
        rate_h = prior_rate_h + exposure_h
        log_prior = -0.5 * (math.log(scale / centre_ppm) / sigma) ** 2
        log_likelihood = sum(n * (1.0 - f / scale) for f, _, n in observed) - (
            prior_shape + total_forwards
        ) * math.log(rate_h)
        log_weights.append(log_prior + log_likelihood)
        rates_h.append(rate_h)
    top = max(log_weights)
    # Grid points below 1e-9 of the best carry no mass worth the arithmetic; drop them.
    kept = [
        (scale, math.exp(value - top), rate_h)
        for scale, value, rate_h in zip(scales, log_weights, rates_h, strict=True)
        if value - top > _NEGLIGIBLE_LOG_WEIGHT
    ]
    total = sum(weight for _, weight, _ in kept)
    return DemandCurve(
        scales_ppm=tuple(scale for scale, _, _ in kept),
        weights=tuple(weight / total for _, weight, _ in kept),
        shape=prior_shape + total_forwards,
        rates_h=tuple(rate_h for _, _, rate_h in kept),
    )
