"""Baseline fee strategies for the benchmark, behind one protocol with the controller (pure).

A strategy takes the controller's inputs plus an explicit `state` (None on the first call) and
returns the decision and the state for the next call; only price theory keeps any. Under every
strategy fleet channels keep the fleet fee, so the bench compares external pricing only, and
predictions come from the controller's revenue model, so prediction error is comparable as well.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from engine.fees.bandit import build_revenue_model
from engine.fees.controller import decide_fee
from engine.fees.decision import assemble_decision
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
)
from models.settings import FeeConfig


class StrategyResult(NamedTuple):
    decision: FeeDecision
    state: Any


class FeeStrategy(Protocol):
    name: str

    def decide(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any = None,
    ) -> StrategyResult: ...


def _baseline(
    name: str,
    channel: ChannelFeeState,
    history: FeeHistory,
    market: MarketView,
    config: FeeConfig,
    now: datetime,
    base_fee_msat: int,
    fee_ppm: int,
    facts: dict[str, Any],
    tuning: FeeTuning = DEFAULT_TUNING,
) -> FeeDecision:
    floor_ppm, ceiling_ppm = fee_bounds(config, DEFAULT_POLICY)
    model = build_revenue_model(
        history,
        market,
        floor_ppm=floor_ppm,
        ceiling_ppm=ceiling_ppm,
        base_fee_msat=base_fee_msat,
        fallback_anchor_ppm=channel.fee_ppm,
        tuning=tuning,
    )
    inputs = {"strategy": name, "local_share": round(channel.local_share, 4), **facts}
    return assemble_decision(
        channel,
        now,
        PolicyKind.DYNAMIC,
        FeeReason.BASELINE,
        (base_fee_msat, fee_ppm),
        model=model,
        inputs=inputs,
        tuning=tuning,
    )


def _clamp(fee_ppm: float, config: FeeConfig) -> int:
    return int(min(max(round(fee_ppm), config.min_fee_ppm), config.max_fee_ppm))


class _Baseline:
    """A baseline picks a target fee; fleet channels and the prediction are handled here."""

    name: str

    def target(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any,
    ) -> tuple[int, dict[str, Any], Any]:
        """(fee_ppm, facts for the decision's inputs, state for the next call)."""
        raise NotImplementedError

    def decide(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any = None,
    ) -> StrategyResult:
        if channel.is_fleet:
            return StrategyResult(decide_fee(channel, history, market, config, now, rng), state)
        fee_ppm, facts, state = self.target(channel, history, market, config, now, rng, state)
        decision = _baseline(
            self.name,
            channel,
            history,
            market,
            config,
            now,
            self.base_fee(config),
            fee_ppm,
            facts,
        )
        return StrategyResult(decision, state)

    def base_fee(self, config: FeeConfig) -> int:
        return config.base_fee_msat


@dataclass(frozen=True)
class ThompsonController:
    """hiveops' own controller (engine.fees.controller.decide_fee) as a strategy."""

    name: str = "thompson"
    policy: FeePolicy | None = None
    tuning: FeeTuning = DEFAULT_TUNING

    def decide(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any = None,
    ) -> StrategyResult:
        decision = decide_fee(
            channel, history, market, config, now, rng, policy=self.policy, tuning=self.tuning
        )
        return StrategyResult(decision, None)


@dataclass(frozen=True)
class ClnDefault(_Baseline):
    """What an unmanaged CLN node posts: 1 sat base + 10 ppm, bounds and market ignored."""

    name: str = "cln_default"
    base_fee_msat: int = 1_000
    fee_ppm: int = 10

    def target(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any,
    ) -> tuple[int, dict[str, Any], Any]:
        return self.fee_ppm, {}, None

    def base_fee(self, config: FeeConfig) -> int:
        return self.base_fee_msat


@dataclass(frozen=True)
class StaticMarketMedian(_Baseline):
    """Competitors' median toward the peer, clamped to the global bounds; else the current fee."""

    name: str = "static_median"

    def target(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any,
    ) -> tuple[int, dict[str, Any], Any]:
        median = market.median_ppm
        fee_ppm = channel.fee_ppm if median is None else _clamp(median, config)
        return fee_ppm, {"market_median_ppm": median}, None


@dataclass(frozen=True)
class BalanceProportional(_Baseline):
    """charge-lnd's `proportional`: ppm = min + (1 − local share)·(max − min), with its
    `min_fee_ppm_delta` hysteresis (10 ppm by default for this strategy)."""

    name: str = "balance_proportional"
    min_fee_ppm: int | None = None
    max_fee_ppm: int | None = None
    min_delta_ppm: int = 10

    def target(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any,
    ) -> tuple[int, dict[str, Any], Any]:
        low = config.min_fee_ppm if self.min_fee_ppm is None else self.min_fee_ppm
        high = config.max_fee_ppm if self.max_fee_ppm is None else self.max_fee_ppm
        fee_ppm = round(low + (1 - channel.local_share) * (high - low))
        if abs(fee_ppm - channel.fee_ppm) < self.min_delta_ppm:
            fee_ppm = channel.fee_ppm
        return fee_ppm, {"min_ppm": low, "max_ppm": high}, None


@dataclass(frozen=True)
class PriceTheoryState:
    centre: int
    deck: tuple[int, ...]
    card: int
    card_started_at: datetime
    card_fee_ppm: int
    earnings: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class PriceTheory(_Baseline):
    """CLBOSS-style price theory: competitors' median × 1.2^p (p > 0) or 0.8^−p (p < 0).

    A shuffled deck holds the levels centre−2 … centre+2; each card is played for `card_s`
    (48 h, CLBOSS's 288 ten-minute ticks) and its revenue per hour recorded; when the deck is
    empty the best card becomes the new centre and the earnings are forgotten.
    """

    name: str = "clboss_price_theory"
    card_s: int = 48 * 3600
    step_up: float = 1.2
    step_down: float = 0.8
    radius: int = 2
    max_level: int = 10

    def level_fee_ppm(self, median_ppm: float, level: int, config: FeeConfig) -> int:
        factor = self.step_up**level if level >= 0 else self.step_down ** (-level)
        return _clamp(median_ppm * factor, config)

    def _deck(self, centre: int, rng: random.Random) -> list[int]:
        cards = [
            level
            for level in range(centre - self.radius, centre + self.radius + 1)
            if abs(level) <= self.max_level
        ]
        rng.shuffle(cards)
        return cards

    def target(
        self,
        channel: ChannelFeeState,
        history: FeeHistory,
        market: MarketView,
        config: FeeConfig,
        now: datetime,
        rng: random.Random,
        state: Any,
    ) -> tuple[int, dict[str, Any], Any]:
        median = market.median_ppm or channel.fee_ppm or DEFAULT_TUNING.default_market_ppm
        if not isinstance(state, PriceTheoryState):
            first, *rest = self._deck(0, rng)
            fee_ppm = self.level_fee_ppm(median, first, config)
            state = PriceTheoryState(0, tuple(rest), first, now, fee_ppm)
        elif (now - state.card_started_at).total_seconds() >= self.card_s:
            since = history.since_change
            earned = since.revenue_msat / since.hours if since and since.hours > 0 else 0.0
            earnings = (*state.earnings, (state.card, earned))
            centre, deck = state.centre, list(state.deck)
            if not deck:
                centre = max(earnings, key=lambda e: (e[1], -abs(e[0] - state.centre)))[0]
                deck, earnings = self._deck(centre, rng), ()
            card, *rest = deck
            state = PriceTheoryState(
                centre, tuple(rest), card, now, self.level_fee_ppm(median, card, config), earnings
            )
        return state.card_fee_ppm, {"centre": state.centre, "card": state.card}, state
