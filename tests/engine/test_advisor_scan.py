"""Opportunity scans: mispriced fees, depleted channels, zombies, and open candidates."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from engine.advisor.graph import NodeEconomics, graph_summary, scan_fleet_proposals, scan_opens
from engine.advisor.scan import ChannelInputs, scan_channels
from models.advisor import AdvisorConfig, Opportunity, OpportunityType, OwnerLoop
from models.fees import FeePolicy, PolicyKind

NOW = datetime(2026, 2, 1, tzinfo=UTC)
NODE = "02" + "a" * 64
PEER = "03" + "b" * 64
CONFIG = AdvisorConfig()
DAY_S = 86_400


def channel(**overrides: Any) -> dict[str, Any]:
    row = {
        "scid": "1x1x0",
        "peer_id": PEER,
        "is_fleet": False,
        "capacity_msat": 4_000_000_000,
        "local_msat": 2_000_000_000,
        "fee_ppm": 1_000,
        "base_fee_msat": 0,
        "usable": True,
        "taken_at": NOW,
        "first_seen_at": NOW - timedelta(days=5),
        "out_forwards": 10,
        "out_msat": 500_000_000,
        "out_fee_msat": 500_000,
        "failed_out_msat": 0,
        "recent_forwards": 10,
        "rebalance_fee_msat": 0,
        # its fee history: 1000 ppm all along, the same 10 forwards
        "fee_levels": [level(1_000, 14 * 24, 10)],
        "fee_changed_at": None,
        "fee_hours": 14 * 24.0,
        "fee_forwards": 10,
        "fee_revenue_msat": 500_000,
    }
    return {**row, **overrides}


AMOUNT_MSAT = 50_000_000  # every constructed forward moves 50k sat


def level(fee_ppm: int, hours: float, forwards: int) -> dict[str, Any]:
    """One fee the channel posted, as advisor.channel_stats' `fee_levels` lists it."""
    return {
        "fee_ppm": fee_ppm,
        "hours": hours,
        "forwards": forwards,
        "revenue_msat": forwards * AMOUNT_MSAT * fee_ppm // 1_000_000,
        "volume_msat": forwards * AMOUNT_MSAT,
    }


def competitors(ppm: list[int], peer: str = PEER) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "scid": f"9x{i}x0",
                "direction": 0,
                "last_update": int(NOW.timestamp()) - 3600,
                "source_id": "03" + f"{i:064x}",
                "peer_id": peer,
                "is_ours": False,
                "base_fee_msat": 1000,
                "fee_ppm": p,
                "active": True,
            }
            for i, p in enumerate(ppm)
        ]
    )


def inputs(rows: list[dict[str, Any]], market: list[int] | None = None, **kw: Any) -> ChannelInputs:
    defaults: dict[str, Any] = {
        "node_id": NODE,
        "channels": pl.DataFrame(rows),
        "peer_policies": competitors(market or [300, 400, 500]),
        "policies": (),
        "window_s": 14 * DAY_S,
        "fee_step_pct": 25.0,
        "rebalance_chunk_sat": 100_000,
        "rebalance_max_fee_ppm": 500,
    }
    return ChannelInputs(**{**defaults, **kw})


def of_type(found: list, kind: OpportunityType) -> list:  # type: ignore[type-arg]
    return [o for o in found if o.opportunity_type is kind]


def test_overpriced_channel_with_traffic_steps_toward_the_market() -> None:
    (fee,) = of_type(scan_channels(inputs([channel()]), CONFIG, NOW), OpportunityType.FEE)
    assert fee.action_params == {"scid": "1x1x0", "old_fee_ppm": 1_000, "new_fee_ppm": 750}
    assert fee.raw_estimate_msat > 0 and fee.owner_loop is OwnerLoop.FEES
    assert fee.size == 25.0
    assert fee.snapshot_metrics["market_median_ppm"] == 400


def test_overpriced_channel_without_traffic_claims_nothing_and_says_why() -> None:
    quiet = channel(
        out_forwards=0,
        out_msat=0,
        out_fee_msat=0,
        fee_levels=[level(1_000, 14 * 24, 0)],
        fee_forwards=0,
        fee_revenue_msat=0,
    )
    (fee,) = of_type(scan_channels(inputs([quiet]), CONFIG, NOW), OpportunityType.FEE)
    assert fee.raw_estimate_msat == 0
    assert "no settled forward out of 1x1x0" in fee.estimate_reason


def fee_move(row: dict[str, Any], market: list[int] | None = None) -> Opportunity:
    (fee,) = of_type(scan_channels(inputs([row], market), CONFIG, NOW), OpportunityType.FEE)
    return fee


def posted_for(hours: float, forwards: int, fee_ppm: int = 1_000) -> dict[str, Any]:
    """The current fee's period: changed `hours` ago, `forwards` settled since."""
    return {
        "fee_changed_at": NOW - timedelta(hours=hours),
        "fee_hours": hours,
        "fee_forwards": forwards,
        "fee_revenue_msat": forwards * AMOUNT_MSAT * fee_ppm // 1_000_000,
    }


def test_fee_estimate_follows_the_channels_revenue_at_each_fee() -> None:
    # 1000 ppm toward the market's 400: the proposal is 750 ppm. The channel posted 750 before.
    busy_below = channel(fee_levels=[level(750, 96, 40), level(1_000, 96, 4)], **posted_for(48, 2))
    quiet_below = channel(
        fee_levels=[level(750, 96, 0), level(1_000, 96, 40)], **posted_for(48, 20)
    )
    up, down = fee_move(busy_below), fee_move(quiet_below)
    assert up.action_params["new_fee_ppm"] == down.action_params["new_fee_ppm"] == 750
    # what the history says over the 72 h outcome window: rate at 750 minus the current rate
    seen_up = (40 * AMOUNT_MSAT * 750 / 1e6 / 96 - 2 * AMOUNT_MSAT * 1_000 / 1e6 / 48) * 72
    seen_down = (0 - 20 * AMOUNT_MSAT * 1_000 / 1e6 / 48) * 72
    assert 0.5 * seen_up < up.raw_estimate_msat < 1.1 * seen_up
    assert 1.1 * seen_down < down.raw_estimate_msat < 0.5 * seen_down
    assert "750 ppm" in up.estimate_reason and "44 forwards" in up.estimate_reason
    assert up.snapshot_metrics["model_new_msat_per_h"] > up.snapshot_metrics["before_msat_per_h"]


def test_fee_estimate_grows_with_the_revenue_seen_at_the_new_fee() -> None:
    estimates = [
        fee_move(
            channel(fee_levels=[level(750, 96, n), level(1_000, 96, 8)], **posted_for(48, 4))
        ).raw_estimate_msat
        for n in (0, 8, 20, 60)
    ]
    assert estimates == sorted(estimates) and estimates[0] < 0 < estimates[-1]


def test_fee_estimate_counts_what_the_current_fee_already_earned_in_the_window() -> None:
    # The outcome compares the new fee with the hours just before the change: a current fee
    # that has just earned a lot leaves less to gain, whatever its long-run average says.
    levels = [level(750, 96, 20), level(1_000, 192, 16)]
    hot = fee_move(channel(fee_levels=levels, **posted_for(48, 12)))
    cold = fee_move(channel(fee_levels=levels, **posted_for(48, 0)))
    assert hot.raw_estimate_msat < cold.raw_estimate_msat
    gap = (12 * AMOUNT_MSAT * 1_000 / 1e6 / 48) * 72  # the known before-rate difference
    assert cold.raw_estimate_msat - hot.raw_estimate_msat == pytest.approx(gap, rel=0.01)


def test_fee_estimate_waits_out_the_fees_loop_rate_limit() -> None:
    # changed 1 h ago: the fees loop holds it another 23 h (fees.min_interval_s = 24 h), hours
    # at the current fee that the model has to guess; changed two days ago: all of them known
    levels = [level(750, 96, 20), level(1_000, 96, 8)]
    fresh = fee_move(channel(fee_levels=levels, **posted_for(1, 0)))
    settled = fee_move(channel(fee_levels=levels, **posted_for(48, 4)))
    assert fresh.snapshot_metrics["before_pending_h"] == 23.0
    assert fresh.snapshot_metrics["before_known_h"] == 1.0
    assert settled.snapshot_metrics["before_pending_h"] == 0.0
    assert settled.snapshot_metrics["before_known_h"] == 48.0


def _poisson(rng: random.Random, mean: float) -> int:
    count, t = 0, rng.expovariate(1.0)
    while t < mean:
        count, t = count + 1, t + rng.expovariate(1.0)
    return count


def synthetic_fee_moves(seed: int, trials: int) -> list[tuple[Opportunity, float]]:
    """Channels with a known demand curve λ(f) = λ0·e^(1 − f/s) (bandit.py's family), a random
    fee history drawn from it, the scan's proposal, and the outcome the fees loop would measure
    (before/after, trend 1): Poisson forwards at the new fee over 72 h minus the current fee's
    last 48 h rate × 72 h."""
    rng = random.Random(seed)
    moves = []
    for _ in range(trials):
        scale, peak = rng.choice([150, 300, 600, 1_200, 2_400]), rng.choice([0.1, 0.3, 1.0])
        rate = lambda fee, s=scale, p=peak: p * math.exp(1 - fee / s)  # noqa: E731
        fee = rng.choice([120, 180, 700, 1_000, 1_500])
        past = round(fee * rng.choice([0.75, 1.25]))
        n_past, n_old, n_now = (
            _poisson(rng, rate(past) * 96),
            _poisson(rng, rate(fee) * 96),
            _poisson(rng, rate(fee) * 48),
        )
        row = channel(
            fee_ppm=fee,
            fee_levels=sorted(
                [level(past, 96, n_past), level(fee, 144, n_old + n_now)],
                key=lambda lv: lv["fee_ppm"],
            ),
            **posted_for(48, n_now, fee),
        )
        found = of_type(scan_channels(inputs([row]), CONFIG, NOW), OpportunityType.FEE)
        if not found:
            continue
        new = found[0].action_params["new_fee_ppm"]
        after_msat = _poisson(rng, rate(new) * 72) * AMOUNT_MSAT * new / 1e6
        before_msat = n_now * AMOUNT_MSAT * fee / 1e6 * 72 / 48
        moves.append((found[0], after_msat - before_msat))
    return moves


def rank_correlation(x: list[float], y: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def test_fee_estimate_ranks_outcomes_on_channels_with_known_demand() -> None:
    # The elasticity formula this replaced ranks these outcomes at −0.04 (it claims a gain for
    # nearly every move toward the market); the revenue model at 0.67 (0.54-0.67 over seeds).
    moves = synthetic_fee_moves(seed=11, trials=150)
    assert len(moves) > 100
    raw = [float(o.raw_estimate_msat) for o, _ in moves]
    actual = [a for _, a in moves]
    assert rank_correlation(raw, actual) > 0.35
    assert any(r < 0 for r in raw) and any(r > 0 for r in raw)


def test_fairly_priced_fleet_and_pinned_channels_have_no_fee_opportunity() -> None:
    fair = channel(fee_ppm=450)
    assert of_type(scan_channels(inputs([fair]), CONFIG, NOW), OpportunityType.FEE) == []
    fleet = channel(is_fleet=True)
    assert scan_channels(inputs([fleet]), CONFIG, NOW) == []
    pinned = (FeePolicy(kind=PolicyKind.STATIC, peer_id=PEER, fee_ppm=1_000),)
    found = scan_channels(inputs([channel()], policies=pinned), CONFIG, NOW)
    assert of_type(found, OpportunityType.FEE) == []


def test_depleted_channel_with_demand_is_a_rebalance_and_without_demand_is_not() -> None:
    depleted = channel(local_msat=100_000_000, failed_out_msat=900_000_000)
    (pull,) = of_type(scan_channels(inputs([depleted]), CONFIG, NOW), OpportunityType.REBALANCE)
    assert pull.action_params["amount_msat"] == 100_000_000  # one chunk
    assert pull.size == 100_000 and pull.owner_loop is OwnerLoop.REBALANCE
    idle = channel(local_msat=100_000_000, out_forwards=0, out_msat=0)
    assert of_type(scan_channels(inputs([idle]), CONFIG, NOW), OpportunityType.REBALANCE) == []


def zombie(**overrides: Any) -> dict[str, Any]:
    return channel(
        scid="2x2x0",
        first_seen_at=NOW - timedelta(days=30),
        recent_forwards=0,
        out_forwards=0,
        out_msat=0,
        out_fee_msat=0,
        fee_revenue_msat=0,
        **overrides,
    )


def earner(out_fee_msat: int) -> dict[str, Any]:
    """A channel that earned `out_fee_msat` in the 14-day window: the node's yield."""
    return channel(scid="3x3x0", capacity_msat=10_000_000_000, out_fee_msat=out_fee_msat)


def test_a_zombie_is_worth_closing_only_if_its_capital_earns_more_elsewhere() -> None:
    # The node's channels earn nothing: freeing 2M sat earns nothing either, so the close only
    # costs its fee. The old estimate valued the capital at 5 %/year and proposed it (24.7k sat).
    idle_node = [zombie(), earner(0)]
    assert (
        of_type(scan_channels(inputs(idle_node), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE) == []
    )
    # The node earns 14,000 sat in 14 days on 14M sat of capacity: 2M sat reopened for 90 days
    # earns 12,857 sat; minus a 2,500 sat open and a 1,500 sat close.
    busy_node = [zombie(), earner(14_000_000)]
    (close,) = of_type(scan_channels(inputs(busy_node), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE)
    capacity_msat = 4_000_000_000 + 10_000_000_000
    yield_per_msat_day = (0 + 14_000_000) / capacity_msat / 14
    expected = round(
        2_000_000_000 * yield_per_msat_day * 90
        - CONFIG.open_cost_sat * 1_000
        - CONFIG.close_cost_sat * 1_000
    )
    assert close.raw_estimate_msat == expected == 8_857_143
    assert "zombie" in close.estimate_reason and "reopened" in close.estimate_reason
    young = channel(first_seen_at=NOW - timedelta(days=3), recent_forwards=0)
    assert of_type(scan_channels(inputs([young]), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE) == []


def test_a_bleeding_channel_is_priced_by_what_it_costs_and_what_it_earns() -> None:
    # 14 days: 28,000 sat of rebalancing into it, 7,000 sat earned out of it -> over 90 days
    # closing avoids 180,000 sat and loses 45,000 sat; the node earns nothing else to redeploy.
    bleeder = channel(rebalance_fee_msat=28_000_000, out_fee_msat=7_000_000)
    (close,) = of_type(scan_channels(inputs([bleeder]), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE)
    yield_per_msat_day = 7_000_000 / 4_000_000_000 / 14
    redeploy = max(0.0, 2_000_000_000 * yield_per_msat_day * 90 - CONFIG.open_cost_sat * 1_000)
    expected = round(180_000_000 - 45_000_000 + redeploy - CONFIG.close_cost_sat * 1_000)
    assert close.raw_estimate_msat == expected
    assert close.snapshot_metrics["lost_revenue_msat"] == 45_000_000
    assert close.snapshot_metrics["avoided_rebalance_msat"] == 180_000_000
    # a channel that earns more than it costs is never proposed, however much it is rebalanced
    paying = channel(rebalance_fee_msat=7_000_000, out_fee_msat=28_000_000)
    assert (
        of_type(scan_channels(inputs([paying]), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE) == []
    )


def test_graph_summary_counts_channels_per_source() -> None:
    rows = [
        {"source": "A", "short_channel_id": "1x1x0", "amount_msat": 10, "fee_per_millionth": 100},
        {"source": "A", "short_channel_id": "2x2x0", "amount_msat": 20, "fee_per_millionth": 300},
        {"source": "B", "short_channel_id": "1x1x0", "amount_msat": 10, "fee_per_millionth": 50},
    ]
    summary = graph_summary(rows)
    assert summary.to_dicts() == [
        {"node_id": "A", "channels": 2, "capacity_msat": 30, "median_fee_ppm": 200.0},
        {"node_id": "B", "channels": 1, "capacity_msat": 10, "median_fee_ppm": 50.0},
    ]


def graph(degrees: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"node_id": n, "channels": d, "capacity_msat": d * 10**9, "median_fee_ppm": 100.0}
            for n, d in degrees.items()
        ]
    )


def economics(revenue_msat: int = 60_000_000, peers: frozenset[str] = frozenset()) -> NodeEconomics:
    return NodeEconomics(
        node_id=NODE,
        capacity_msat=10_000_000_000,
        onchain_msat=5_000_000_000,
        revenue_30d_msat=revenue_msat,
        peers=peers,
    )


def test_open_candidates_are_best_hubs_that_pay_for_themselves() -> None:
    config = AdvisorConfig(max_open_candidates=2)
    g = graph({"hub": 30, "mid": 10, "leaf": 1, PEER: 40, "x": 10})
    found = scan_opens(economics(peers=frozenset({PEER})), g, frozenset(), {}, 1.0, config)
    assert [o.target for o in found] == ["hub", "mid"]  # PEER is already ours
    assert all(o.raw_estimate_msat > 0 and o.action == "fundchannel" for o in found)
    assert found[0].raw_estimate_msat > found[1].raw_estimate_msat


def test_no_open_when_the_node_earns_too_little_to_cover_costs() -> None:
    g = graph({"hub": 30, "mid": 10})
    assert scan_opens(economics(revenue_msat=10_000), g, frozenset(), {}, 1.0, CONFIG) == []


def test_rejected_peer_scores_lower_after_its_cooldown() -> None:
    g = graph({"hub": 30, "mid": 29})
    config = AdvisorConfig(max_open_candidates=1)
    assert scan_opens(economics(), g, frozenset(), {}, 1.0, config)[0].target == "hub"
    penalised = scan_opens(economics(), g, frozenset(), {"hub": 0.5}, 1.0, config)
    assert penalised[0].target == "mid"


def test_fleet_open_proposals_become_fleet_assistance_awaiting_approval() -> None:
    proposals = pl.DataFrame(
        [{"assistance_id": "a1", "node_id": NODE, "peer_id": PEER, "amount_sat": 1_000_000}]
    )
    (o,) = scan_fleet_proposals(proposals, {NODE: economics()}, CONFIG)
    assert o.opportunity_type is OpportunityType.FLEET_ASSISTANCE
    assert o.action_params == {"peer_id": PEER, "amount_sat": 1_000_000}
    assert o.snapshot_metrics["assistance_id"] == "a1"
