"""Fee policies: fleet first and unbounded, then channel > peer > default, expiry honoured."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from engine.fees import (
    BalanceProportional,
    ClnDefault,
    FeeStrategy,
    PriceTheory,
    StaticMarketMedian,
    ThompsonController,
    decide_fee,
    fee_bounds,
    resolve_policy,
)
from models.fees import (
    ChannelFeeState,
    FeeHistory,
    FeeLevelStats,
    FeePolicy,
    FeeReason,
    MarketView,
    PolicyKind,
)
from models.settings import FeeConfig

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PEER = "03" + "b" * 64
SCID = "933128x1345x0"


def channel(**overrides: object) -> ChannelFeeState:
    fields: dict[str, object] = {
        "node_id": "02" + "a" * 64,
        "scid": SCID,
        "peer_id": PEER,
        "is_fleet": False,
        "capacity_msat": 5_000_000_000,
        "local_msat": 2_500_000_000,
        "base_fee_msat": 0,
        "fee_ppm": 100,
        "last_change_at": None,
    }
    fields.update(overrides)
    return ChannelFeeState.model_validate(fields)


def busy_history(fee_ppm: int = 0) -> FeeHistory:
    """300 h at `fee_ppm` with 200 forwards of 100 k sat each."""
    forwards, amount_msat = 200, 100_000_000
    level = FeeLevelStats(
        fee_ppm=fee_ppm,
        hours=300,
        forwards=forwards,
        revenue_msat=forwards * fee_ppm * amount_msat // 1_000_000,
        volume_msat=forwards * amount_msat,
    )
    return FeeHistory(scid=SCID, levels=(level,))


MARKET = MarketView(peer_id=PEER, competitor_fee_ppm=(50, 100, 400))


def test_fleet_channel_stays_zero_fee_under_min_floor() -> None:
    config = FeeConfig(min_fee_ppm=25, base_fee_msat=1_000)
    fleet = channel(is_fleet=True, fee_ppm=0, base_fee_msat=0)
    decision = decide_fee(fleet, busy_history(), MARKET, config, NOW, random.Random(1))
    assert (decision.new_base_fee_msat, decision.new_fee_ppm) == (0, 0)
    assert decision.reason is FeeReason.FLEET_POLICY
    assert decision.policy_kind is PolicyKind.FLEET
    assert decision.apply is False


def test_fleet_channel_at_floor_returns_to_zero_at_once_despite_rate_limit() -> None:
    """The audit's state: a fleet channel carrying 25 ppm because the floor won."""
    config = FeeConfig(min_fee_ppm=25, min_interval_s=86_400)
    fleet = channel(is_fleet=True, fee_ppm=25, base_fee_msat=1_000, last_change_at=NOW)
    decision = decide_fee(fleet, busy_history(25), MARKET, config, NOW, random.Random(1))
    assert (decision.new_base_fee_msat, decision.new_fee_ppm) == (0, 0)
    assert decision.apply is True
    assert decision.reason is FeeReason.FLEET_POLICY


@pytest.mark.parametrize(
    "strategy",
    [
        ThompsonController(),
        ClnDefault(),
        StaticMarketMedian(),
        BalanceProportional(),
        PriceTheory(),
    ],
    ids=lambda s: s.name,
)
def test_every_strategy_keeps_fleet_channels_at_fleet_fee(strategy: FeeStrategy) -> None:
    config = FeeConfig(min_fee_ppm=25)
    fleet = channel(is_fleet=True, fee_ppm=0)
    result = strategy.decide(fleet, busy_history(), MARKET, config, NOW, random.Random(1))
    assert result.decision.new_fee_ppm == 0
    assert result.decision.reason is FeeReason.FLEET_POLICY


def test_fleet_peer_resolves_to_fleet_even_with_a_static_override() -> None:
    static = FeePolicy(kind=PolicyKind.STATIC, peer_id=PEER, fee_ppm=500)
    policy = resolve_policy(scid=SCID, peer_id=PEER, is_fleet=True, policies=[static], now=NOW)
    assert policy.kind is PolicyKind.FLEET


def test_channel_policy_beats_peer_policy_beats_default() -> None:
    default = FeePolicy(kind=PolicyKind.DYNAMIC, max_fee_ppm=900)
    peer = FeePolicy(kind=PolicyKind.PASSIVE, peer_id=PEER)
    chan = FeePolicy(kind=PolicyKind.STATIC, scid=SCID, fee_ppm=42)
    other = FeePolicy(kind=PolicyKind.STATIC, scid="1x1x1", fee_ppm=7)
    resolve = lambda policies: resolve_policy(  # noqa: E731
        scid=SCID, peer_id=PEER, is_fleet=False, policies=policies, now=NOW
    )
    assert resolve([default, peer, chan, other]) == chan
    assert resolve([default, peer, other]) == peer
    assert resolve([default, other]) == default
    assert resolve([other]).kind is PolicyKind.DYNAMIC  # built-in default


def test_expired_policy_is_ignored() -> None:
    expired = FeePolicy(
        kind=PolicyKind.STATIC, scid=SCID, fee_ppm=1, expires_at=NOW - timedelta(seconds=1)
    )
    live = FeePolicy(kind=PolicyKind.PASSIVE, peer_id=PEER, expires_at=NOW + timedelta(days=1))
    policy = resolve_policy(
        scid=SCID, peer_id=PEER, is_fleet=False, policies=[expired, live], now=NOW
    )
    assert policy == live


def test_newest_policy_wins_within_a_scope() -> None:
    older = FeePolicy(kind=PolicyKind.STATIC, peer_id=PEER, fee_ppm=10, created_at=NOW)
    newer = FeePolicy(
        kind=PolicyKind.STATIC, peer_id=PEER, fee_ppm=20, created_at=NOW + timedelta(hours=1)
    )
    policy = resolve_policy(
        scid=SCID, peer_id=PEER, is_fleet=False, policies=[newer, older], now=NOW
    )
    assert policy == newer


def test_policy_bounds_replace_the_global_bounds() -> None:
    config = FeeConfig(min_fee_ppm=25, max_fee_ppm=2_500)
    assert fee_bounds(config, FeePolicy(kind=PolicyKind.DYNAMIC, min_fee_ppm=0)) == (0, 2_500)
    assert fee_bounds(config, FeePolicy(kind=PolicyKind.DYNAMIC, max_fee_ppm=10)) == (10, 10)
    assert fee_bounds(config, FeePolicy(kind=PolicyKind.DYNAMIC)) == (25, 2_500)


def test_fleet_policy_cannot_carry_bounds() -> None:
    with pytest.raises(ValidationError, match="bounds apply to dynamic"):
        FeePolicy(kind=PolicyKind.FLEET, peer_id=PEER, min_fee_ppm=25)


def test_static_policy_pins_the_fee_at_once() -> None:
    config = FeeConfig(min_interval_s=86_400)
    pinned = FeePolicy(kind=PolicyKind.STATIC, scid=SCID, fee_ppm=777, base_fee_msat=0)
    decision = decide_fee(
        channel(last_change_at=NOW),
        busy_history(100),
        MARKET,
        config,
        NOW,
        random.Random(1),
        policy=pinned,
    )
    assert (decision.new_fee_ppm, decision.reason, decision.apply) == (
        777,
        FeeReason.STATIC_POLICY,
        True,
    )


def test_passive_policy_never_changes_the_fee() -> None:
    config = FeeConfig(min_fee_ppm=25)
    passive = FeePolicy(kind=PolicyKind.PASSIVE, peer_id=PEER)
    decision = decide_fee(
        channel(fee_ppm=3, base_fee_msat=5),
        busy_history(3),
        MARKET,
        config,
        NOW,
        random.Random(1),
        policy=passive,
    )
    assert (decision.new_base_fee_msat, decision.new_fee_ppm) == (5, 3)
    assert decision.reason is FeeReason.PASSIVE_POLICY and decision.apply is False


def test_dynamic_fee_below_the_floor_is_clamped_at_once() -> None:
    config = FeeConfig(min_fee_ppm=25, min_interval_s=86_400)
    decision = decide_fee(
        channel(fee_ppm=5, last_change_at=NOW),
        busy_history(5),
        MARKET,
        config,
        NOW,
        random.Random(1),
    )
    assert (decision.new_fee_ppm, decision.reason, decision.apply) == (
        25,
        FeeReason.BOUNDS_CLAMP,
        True,
    )
