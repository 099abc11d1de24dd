"""The dynamic fee controller: learning, cold start, guards, inputs from frames, baselines."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.fees import (
    BalanceProportional,
    ClnDefault,
    PriceTheory,
    PriceTheoryState,
    StaticMarketMedian,
    build_fee_history,
    build_market_view,
    decide_fee,
)
from models.fees import (
    ChannelFeeState,
    FeeDecision,
    FeeHistory,
    FeeLevelStats,
    FeeReason,
    MarketView,
    RefillSignal,
)
from models.settings import FeeConfig

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCID = "900000x10x1"
PEER = "03" + "c" * 64
CAPACITY_MSAT = 10_000_000_000
AMOUNT_MSAT = 100_000_000  # 100 k sat per forward
MARKET = MarketView(peer_id=PEER, competitor_fee_ppm=(50, 100, 150))


def channel(**overrides: object) -> ChannelFeeState:
    fields: dict[str, object] = {
        "node_id": "02" + "a" * 64,
        "scid": SCID,
        "peer_id": PEER,
        "is_fleet": False,
        "capacity_msat": CAPACITY_MSAT,
        "local_msat": CAPACITY_MSAT // 2,
        "base_fee_msat": 0,
        "fee_ppm": 100,
        "last_change_at": None,
    }
    fields.update(overrides)
    return ChannelFeeState.model_validate(fields)


def level(fee_ppm: int, hours: float, forwards: int) -> FeeLevelStats:
    return FeeLevelStats(
        fee_ppm=fee_ppm,
        hours=hours,
        forwards=forwards,
        revenue_msat=forwards * fee_ppm * AMOUNT_MSAT // 1_000_000,
        volume_msat=forwards * AMOUNT_MSAT,
    )


def proven_history(optimum_ppm: int = 100, **overrides: object) -> FeeHistory:
    """500 h at each ladder fee around the optimum, forwards following exp(1 − f/optimum)."""
    levels = tuple(
        level(fee, 500, round(500 * 2.0 * math.exp(1 - fee / optimum_ppm)))
        for fee in (48, 58, 69, 83, 100, 120, 144, 173, 207, 249)
    )
    return FeeHistory.model_validate({"scid": SCID, "levels": levels, **overrides})


def poisson(rng: random.Random, mean: float) -> int:
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def run_channel(
    demand_per_h: Callable[[int], float],
    *,
    fee_ppm: int,
    cycles: int,
    seed: int,
    config: FeeConfig,
    market: MarketView = MARKET,
) -> list[FeeDecision]:
    """Drive decide_fee every min_interval_s, feeding back Poisson forwards at the posted fee."""
    rng, traffic = random.Random(seed), random.Random(seed + 10_000)
    cycle_h = config.min_interval_s / 3600
    totals: dict[int, FeeLevelStats] = {}
    since: FeeLevelStats | None = None
    last_change_at, now, decisions = None, NOW, []
    for _ in range(cycles):
        history = FeeHistory(
            scid=SCID, levels=tuple(totals[f] for f in sorted(totals)), since_change=since
        )
        state = channel(fee_ppm=fee_ppm, last_change_at=last_change_at)
        decision = decide_fee(state, history, market, config, now, rng)
        decisions.append(decision)
        if decision.apply:
            fee_ppm, last_change_at, since = decision.new_fee_ppm, now, None
        observed = level(fee_ppm, cycle_h, poisson(traffic, demand_per_h(fee_ppm) * cycle_h))
        totals[fee_ppm] = _add(totals.get(fee_ppm), observed)
        since = _add(since, observed)
        now += timedelta(hours=cycle_h)
    return decisions


def _add(total: FeeLevelStats | None, more: FeeLevelStats) -> FeeLevelStats:
    if total is None:
        return more
    return FeeLevelStats(
        fee_ppm=more.fee_ppm,
        hours=total.hours + more.hours,
        forwards=total.forwards + more.forwards,
        revenue_msat=total.revenue_msat + more.revenue_msat,
        volume_msat=total.volume_msat + more.volume_msat,
    )


@pytest.mark.parametrize("start_ppm", [0, 100, 1_550])
def test_cold_start_channel_changes_fee_within_bounded_cycles(start_ppm: int) -> None:
    """No forwards ever: the fee still moves into the market range and keeps exploring it."""
    config = FeeConfig()  # 6 h rate limit; cold-start dwell is 24 h = 4 cycles
    decisions = run_channel(lambda fee: 0.0, fee_ppm=start_ppm, cycles=40, seed=3, config=config)
    changed = [i for i, d in enumerate(decisions) if d.apply]
    assert changed and changed[0] <= 4
    gaps = [b - a for a, b in itertools.pairwise(changed)]
    assert max(gaps) <= 5, f"stalled for {max(gaps)} cycles"
    assert {d.reason for d in decisions} <= {FeeReason.COLD_START_EXPLORE}
    tail = [d.new_fee_ppm for d in decisions[-12:]]
    assert all(50 / 1.2 <= fee <= 150 * 1.2 for fee in tail)  # market p25/1.2 … p75·1.2


def test_bandit_converges_to_the_best_fee_on_elastic_demand() -> None:
    """Revenue f·exp(−(f/200)²) peaks at 141 ppm; competitors sit at 40-80 ppm.

    After 100 cycles (25 days at the 6 h rate limit) the posted fee earns ≥ 90 % of the best
    revenue most of the time, on each of three seeds.
    """
    demand = lambda fee: math.exp(-((fee / 200) ** 2))  # noqa: E731
    revenue = lambda fee: fee * demand(fee)  # noqa: E731
    best = max(revenue(fee) for fee in range(1, 2_501))
    market = MarketView(peer_id=PEER, competitor_fee_ppm=(40, 60, 80))
    assert revenue(60) < 0.7 * best  # the market's price is clearly worse than the optimum
    shares = []
    for seed in (0, 1, 2):
        decisions = run_channel(
            demand, fee_ppm=60, cycles=160, seed=seed, config=FeeConfig(), market=market
        )
        posted = [d.new_fee_ppm for d in decisions[-60:]]
        shares.append(sum(revenue(fee) >= 0.9 * best for fee in posted) / len(posted))
        assert 110 <= sorted(posted)[len(posted) // 2] <= 180
    assert min(shares) >= 0.6 and sum(shares) / len(shares) >= 0.75, shares


def test_rate_limit_holds_a_change_inside_min_interval() -> None:
    config = FeeConfig(min_interval_s=6 * 3600)
    recent = channel(fee_ppm=300, last_change_at=NOW - timedelta(hours=1))
    held = decide_fee(recent, proven_history(), MARKET, config, NOW, random.Random(5))
    assert (held.reason, held.apply, held.new_fee_ppm) == (FeeReason.HOLD_RATE_LIMIT, False, 300)
    assert held.inputs["proposed_ppm"] < 300
    assert held.inputs["rate_limit_wait_s"] == 5 * 3600

    later = channel(fee_ppm=300, last_change_at=NOW - timedelta(hours=7))
    moved = decide_fee(later, proven_history(), MARKET, config, NOW, random.Random(5))
    assert moved.apply and moved.new_fee_ppm == 225  # one max_step_pct=25 % step down
    assert moved.reason is FeeReason.THOMPSON


def test_hysteresis_holds_a_small_change() -> None:
    """104 ppm snaps to the 100 ppm ladder fee only if 4 ppm were worth a gossip update."""
    decision = decide_fee(
        channel(fee_ppm=104), proven_history(), MARKET, FeeConfig(), NOW, random.Random(5)
    )
    assert decision.inputs["proposed_ppm"] == 100
    assert (decision.reason, decision.apply, decision.new_fee_ppm) == (
        FeeReason.HOLD_HYSTERESIS,
        False,
        104,
    )


def test_scarcity_raises_the_fee_on_a_depleted_channel() -> None:
    depleted = channel(local_msat=CAPACITY_MSAT // 20)  # 5 % outbound left
    balanced = channel()
    raised = decide_fee(depleted, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5))
    kept = decide_fee(balanced, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5))
    assert kept.new_fee_ppm == 100 and not kept.apply
    assert raised.apply and raised.new_fee_ppm == 125  # target 174, one 25 % step
    assert raised.reason is FeeReason.SCARCITY
    assert raised.inputs["scarcity_multiplier"] > 1.5


def test_scarcity_lowers_the_fee_on_an_overfull_channel() -> None:
    overfull = channel(local_msat=CAPACITY_MSAT * 95 // 100)
    decision = decide_fee(overfull, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5))
    assert decision.apply and decision.new_fee_ppm == 75
    assert decision.reason is FeeReason.SCARCITY


def test_drain_defence_raises_multiplicatively_then_recovers_additively() -> None:
    """20 % of capacity left net in 24 h with 30 % local: empty in 36 h, inside the horizon."""
    draining = proven_history(net_outflow_msat=CAPACITY_MSAT // 5)
    state = channel(local_msat=CAPACITY_MSAT * 3 // 10)
    up = decide_fee(state, draining, MARKET, FeeConfig(), NOW, random.Random(5))
    assert (up.reason, up.new_fee_ppm) == (FeeReason.DRAIN_DEFENCE, 125)
    assert up.inputs["drain_active"] is True

    calm = proven_history(last_change_reason=FeeReason.DRAIN_DEFENCE)
    after = channel(local_msat=CAPACITY_MSAT * 3 // 10, fee_ppm=195)  # three defences later
    down = decide_fee(after, calm, MARKET, FeeConfig(), NOW, random.Random(5))
    assert down.inputs["target_ppm"] == 185  # not the 25 % step to 146: −10 % of the market
    assert (down.reason, down.new_fee_ppm) == (FeeReason.DRAIN_RECOVERY, 185)


def test_refill_floor_prices_a_depleted_channel_with_waiting_demand_above_its_refill_cost() -> None:
    """5 % local, 12 forwards failed for want of liquidity, refill route quoted at 300 ppm: the
    fee goes straight to 300 / 0.6 = 500 ppm (a floor skips the 25 % step), and no further."""
    depleted = channel(local_msat=CAPACITY_MSAT // 20)
    waiting = RefillSignal(scid=SCID, route_ppm=300, missed_forwards=12)
    floor = decide_fee(
        depleted, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5), refill=waiting
    )
    assert (floor.reason, floor.new_fee_ppm) == (FeeReason.REFILL_FLOOR, 500)
    assert floor.inputs["refill_floor_ppm"] == 500 and floor.inputs["refill_route_ppm"] == 300

    # No failure yet, but it sold more in 3 days than it has left: the same floor.
    selling = RefillSignal(scid=SCID, route_ppm=300, net_outflow_msat=CAPACITY_MSAT // 10)
    sold = decide_fee(
        depleted, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5), refill=selling
    )
    assert (sold.reason, sold.new_fee_ppm) == (FeeReason.REFILL_FLOOR, 500)

    capped = decide_fee(
        depleted,
        proven_history(),
        MARKET,
        FeeConfig(max_fee_ppm=400),
        NOW,
        random.Random(5),
        refill=waiting,
    )
    assert capped.new_fee_ppm == 400  # the ceiling is a hard rule, the floor is not above it

    rate_limited = decide_fee(
        depleted.model_copy(update={"last_change_at": NOW - timedelta(hours=1)}),
        proven_history(),
        MARKET,
        FeeConfig(),
        NOW,
        random.Random(5),
        refill=waiting,
    )
    assert (rate_limited.reason, rate_limited.new_fee_ppm) == (FeeReason.HOLD_RATE_LIMIT, 100)


@pytest.mark.parametrize(
    ("local_share", "missed", "outflow_share", "route_ppm"),
    [(0.6, 12, 0.7, 300), (0.05, 2, 0.04, 300), (0.05, 12, 0.1, None)],
    ids=["outbound-heavy", "no-waiting-demand", "no-quote"],
)
def test_refill_floor_needs_scarce_liquidity_waiting_demand_and_a_quote(
    local_share: float, missed: int, outflow_share: float, route_ppm: int | None
) -> None:
    state = channel(local_msat=int(CAPACITY_MSAT * local_share))
    refill = RefillSignal(
        scid=SCID,
        route_ppm=route_ppm,
        missed_forwards=missed,
        net_outflow_msat=int(CAPACITY_MSAT * outflow_share),
    )
    with_signal = decide_fee(
        state, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5), refill=refill
    )
    without = decide_fee(state, proven_history(), MARKET, FeeConfig(), NOW, random.Random(5))
    assert with_signal.reason is not FeeReason.REFILL_FLOOR
    assert with_signal.new_fee_ppm == without.new_fee_ppm
    assert with_signal.inputs["refill_floor_ppm"] is None


def test_decision_carries_predictions_and_json_inputs() -> None:
    decision = decide_fee(
        channel(fee_ppm=300), proven_history(), MARKET, FeeConfig(), NOW, random.Random(5)
    )
    before = decision.predicted_revenue_msat_per_day_before
    after = decision.predicted_revenue_msat_per_day_after
    assert before > 0 and after > before  # moving from 300 toward the 100 ppm optimum pays
    expected = (after - before) / 24 * decision.evaluation_window_s / 3600
    assert decision.predicted_benefit_msat == pytest.approx(expected, rel=0.01)
    stored = json.loads(json.dumps(decision.inputs))
    assert stored["market_median_ppm"] == 100 and stored["arms"]


def test_fee_history_from_forwards_and_change_log() -> None:
    forwards = pl.DataFrame(
        {
            "in_channel": ["1x1x1", "1x1x1", SCID, "1x1x1", "1x1x1"],
            "out_channel": [SCID, SCID, "1x1x1", SCID, SCID],
            "in_msat": [0, 0, 3_000_000_000, 0, 0],
            "out_msat": [1_000_000_000] * 4 + [7],
            "fee_msat": [100_000, 100_000, 0, 200_000, 0],
            "status": ["settled", "settled", "settled", "settled", "failed"],
            "resolved_at": [NOW - timedelta(hours=h) for h in (40, 30, 5, 10, 1)],
        }
    )
    changes = pl.DataFrame(
        {
            "scid": [SCID, SCID],
            "changed_at": [NOW - timedelta(days=40), NOW - timedelta(hours=20)],
            "new_ppm": [100, 200],
            "reason": ["thompson", "drain_defence"],
        }
    )
    history = build_fee_history(SCID, forwards, changes, now=NOW, current_fee_ppm=200)
    by_fee = {lvl.fee_ppm: lvl for lvl in history.levels}
    assert by_fee[100].forwards == 2 and by_fee[100].revenue_msat == 200_000
    assert by_fee[100].hours == pytest.approx(30 * 24 - 20)
    assert by_fee[200].forwards == 1 and by_fee[200].hours == pytest.approx(20)
    assert history.since_change == by_fee[200]
    assert history.net_outflow_msat == 1_000_000_000 - 3_000_000_000  # 24 h window
    assert history.last_change_reason is FeeReason.DRAIN_DEFENCE


def test_market_view_keeps_latest_active_competitor_updates_only() -> None:
    ts = int(NOW.timestamp())
    rows = [  # scid, direction, last_update, is_ours, active, fee_ppm
        ("a", 0, ts - 900, False, True, 80),
        ("a", 0, ts - 100, False, True, 120),  # newer update of the same channel wins
        ("b", 1, ts - 100, True, True, 5),  # ours
        ("c", 0, ts - 100, False, False, 9),  # disabled
        ("d", 1, ts - 30 * 86400, False, True, 7),  # stale
        ("e", 0, ts - 100, False, True, 300),
    ]
    policies = pl.DataFrame(
        [
            {
                "scid": s,
                "direction": d,
                "last_update": t,
                "source_id": f"src-{s}",
                "peer_id": PEER,
                "is_ours": o,
                "base_fee_msat": 1000,
                "fee_ppm": f,
                "active": a,
            }
            for s, d, t, o, a, f in rows
        ]
    )
    view = build_market_view(PEER, policies, now=NOW)
    assert view.competitor_fee_ppm == (120, 300)
    assert view.median_ppm == 210


def test_cln_default_static_median_and_proportional_baselines() -> None:
    config, rng, history = FeeConfig(), random.Random(1), proven_history()
    cln = ClnDefault().decide(channel(), history, MARKET, config, NOW, rng).decision
    assert (cln.new_base_fee_msat, cln.new_fee_ppm, cln.reason) == (1_000, 10, FeeReason.BASELINE)
    median = StaticMarketMedian().decide(channel(), history, MARKET, config, NOW, rng).decision
    assert median.new_fee_ppm == 100 and not median.apply
    depleted = channel(local_msat=CAPACITY_MSAT // 10)
    prop = BalanceProportional(min_fee_ppm=10, max_fee_ppm=1_010)
    assert prop.decide(depleted, history, MARKET, config, NOW, rng).decision.new_fee_ppm == 910


def test_price_theory_plays_each_card_for_48h_and_recentres_on_the_best() -> None:
    """Five cards ×1.2/×0.8 around the median; card +1 (120 ppm) earns most."""
    strategy, config, rng = PriceTheory(), FeeConfig(), random.Random(2)
    earnings_per_h = {64: 10, 80: 30, 100: 50, 120: 90, 144: 40}
    state, now, played = None, NOW, []
    fee_ppm = 100
    for _ in range(6):
        hours = 48.0
        since = FeeLevelStats(
            fee_ppm=fee_ppm,
            hours=hours,
            forwards=1,
            revenue_msat=round(earnings_per_h.get(fee_ppm, 0) * hours),
            volume_msat=1,
        )
        history = FeeHistory(scid=SCID, levels=(since,), since_change=since)
        result = strategy.decide(channel(fee_ppm=fee_ppm), history, MARKET, config, now, rng, state)
        state, fee_ppm = result.state, result.decision.new_fee_ppm
        played.append(fee_ppm)
        now += timedelta(hours=48)
    assert sorted(played[:5]) == [64, 80, 100, 120, 144]
    assert isinstance(state, PriceTheoryState) and state.centre == 1
