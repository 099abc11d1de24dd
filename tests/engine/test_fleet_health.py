"""Member health: scores, tiers and the audit's three members (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from engine.fleet import score_fleet, tier_for
from models.fleet import FleetConfig, MemberChannel, MemberState, Tier

NOW = datetime(2026, 2, 10, tzinfo=UTC)
SAT = 1_000


def node_id(n: int) -> str:
    return "02" + f"{n:02x}" * 32


def chan(scid: str, peer: int, cap_sat: int, local_share: float, **kw: object) -> MemberChannel:
    cap = cap_sat * SAT
    return MemberChannel(
        scid=scid, peer_id=node_id(peer), capacity_msat=cap, local_msat=int(cap * local_share), **kw
    )


def member(n: int, channels: list[MemberChannel], revenue_sat: int = 0, onchain_sat: int = 0):
    return MemberState(
        node_id=node_id(n),
        name=f"nexus-0{n}",
        taken_at=NOW,
        channels=tuple(channels),
        revenue_msat=revenue_sat * SAT,
        onchain_msat=onchain_sat * SAT,
    )


def audit_fleet() -> list[MemberState]:
    """nexus-01..03 as the audit scenario builds them (fleet channels 01-02 and 02-03)."""
    n1 = member(
        1,
        [
            chan("1x1x0", 2, 5_000_000, 0.5),
            chan("2x1x0", 10, 3_000_000, 0.7),
            chan("3x1x0", 11, 2_000_000, 0.5),
        ],
        revenue_sat=100,
        onchain_sat=3_000_000,
    )
    n2_external = [chan(f"{i}x1x0", 20 + i, 3_500_000, 0.8) for i in range(5, 19)]
    n2 = member(
        2,
        [chan("1x1x0", 1, 5_000_000, 0.5), chan("4x1x0", 3, 3_000_000, 0.6), *n2_external],
        revenue_sat=900,
    )
    n3 = member(3, [chan("4x1x0", 2, 3_000_000, 0.4), chan("19x1x0", 30, 500_000, 0.02)])
    return [n1, n2, n3]


def test_tier_thresholds_come_from_config() -> None:
    config = FleetConfig(critical_below=10, struggling_below=20, thriving_from=90)
    assert [tier_for(s, config) for s in (5, 15, 50, 95)] == [
        Tier.CRITICAL,
        Tier.STRUGGLING,
        Tier.HEALTHY,
        Tier.THRIVING,
    ]
    # a score equal to a threshold belongs to the tier above it
    assert tier_for(25.0, FleetConfig()) is Tier.STRUGGLING
    assert tier_for(75.0, FleetConfig()) is Tier.THRIVING


def test_misordered_tier_thresholds_are_refused_with_the_keys() -> None:
    with pytest.raises(ValidationError, match="critical_below"):
        FleetConfig(critical_below=50, struggling_below=40)


def test_audit_nexus03_is_critical_and_nexus02_is_not() -> None:
    healths = {h.name: h for h in score_fleet(audit_fleet(), FleetConfig(), NOW)}
    assert healths["nexus-03"].tier is Tier.CRITICAL
    assert healths["nexus-03"].needs_help
    assert healths["nexus-03"].liquidity_out_score < 10  # 10 k of 500 k sat to the network
    assert healths["nexus-02"].tier in (Tier.HEALTHY, Tier.THRIVING)
    assert not healths["nexus-01"].needs_help


def test_fleet_channel_balance_does_not_count_as_liquidity_to_the_network() -> None:
    """nexus-03's 1.2 M sat on its fleet channel cannot route to the network."""
    h = {h.name: h for h in score_fleet(audit_fleet(), FleetConfig(), NOW)}["nexus-03"]
    assert h.inputs["fleet_channels"] == 1
    assert h.inputs["external_capacity_msat"] == 500_000 * SAT
    assert h.inputs["external_outbound_msat"] == 10_000 * SAT


def test_a_one_sided_member_scores_its_weaker_side() -> None:
    full = member(1, [chan(f"{i}x1x0", 10 + i, 1_000_000, 1.0) for i in range(8)])
    h = score_fleet([full], FleetConfig(), NOW)[0]
    assert h.liquidity_out_score == 100 and h.liquidity_in_score == 0
    assert h.liquidity_score == 0


def test_disconnected_peers_lower_connectivity() -> None:
    chans = [chan(f"{i}x1x0", 10 + i, 1_000_000, 0.5) for i in range(8)]
    up = score_fleet([member(1, chans)], FleetConfig(), NOW)[0]
    half_down = [
        c if i % 2 else c.model_copy(update={"peer_connected": False}) for i, c in enumerate(chans)
    ]
    down = score_fleet([member(1, half_down)], FleetConfig(), NOW)[0]
    assert up.connectivity_score == 100
    assert down.connectivity_score < up.connectivity_score / 2 + 1


def test_idle_fleet_gets_neutral_revenue_not_zero() -> None:
    states = [m.model_copy(update={"revenue_msat": 0}) for m in audit_fleet()]
    assert {h.revenue_score for h in score_fleet(states, FleetConfig(), NOW)} == {50.0}


def test_member_without_snapshot_is_not_scored() -> None:
    states = audit_fleet()
    states[0] = states[0].model_copy(update={"taken_at": None})
    assert {h.name for h in score_fleet(states, FleetConfig(), NOW)} == {"nexus-02", "nexus-03"}
