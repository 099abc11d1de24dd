"""Opportunity scans: mispriced fees, depleted channels, zombies, and open candidates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from engine.advisor.graph import NodeEconomics, graph_summary, scan_fleet_proposals, scan_opens
from engine.advisor.scan import ChannelInputs, scan_channels
from models.advisor import AdvisorConfig, OpportunityType, OwnerLoop
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
    }
    return {**row, **overrides}


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
    quiet = channel(out_forwards=0, out_msat=0, out_fee_msat=0)
    (fee,) = of_type(scan_channels(inputs([quiet]), CONFIG, NOW), OpportunityType.FEE)
    assert fee.raw_estimate_msat == 0
    assert "no settled forward out of 1x1x0" in fee.estimate_reason


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


def test_old_idle_channel_is_a_close_candidate_and_a_young_one_is_not() -> None:
    zombie = channel(
        first_seen_at=NOW - timedelta(days=30), recent_forwards=0, out_forwards=0, out_msat=0
    )
    (close,) = of_type(scan_channels(inputs([zombie]), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE)
    assert close.raw_estimate_msat > 0 and "zombie" in close.estimate_reason
    young = channel(first_seen_at=NOW - timedelta(days=3), recent_forwards=0)
    assert of_type(scan_channels(inputs([young]), CONFIG, NOW), OpportunityType.CHANNEL_CLOSE) == []


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
