"""Contribution (uptime, routing for members, assistance) and merged fee intelligence (pure)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from engine.fleet import AssistMove, FleetForward, measure_contribution, merge_fee_intelligence
from models.fleet import FleetConfig, FleetMember
from tests.engine.test_fleet_health import NOW, SAT, node_id

CONFIG = FleetConfig()
CYCLES = [NOW - timedelta(hours=8 * i) for i in range(9)][::-1]  # 3 days at 8 h
START = CYCLES[0]
MEMBERS = [
    FleetMember(node_id=node_id(n), name=f"nexus-0{n}", first_seen_at=START) for n in (1, 2, 3)
]


def measure(snapshots, sightings=(), forwards=(), moves=(), members=MEMBERS):  # type: ignore[no-untyped-def]
    rows = measure_contribution(members, CYCLES, snapshots, sightings, forwards, moves, CONFIG, NOW)
    return {r.name: r for r in rows}


def all_up(*, except_: int | None = None, after: int = 99):  # type: ignore[no-untyped-def]
    return [
        (node_id(n), c)
        for n in (1, 2, 3)
        for i, c in enumerate(CYCLES)
        if not (n == except_ and i >= after)
    ]


def test_live_members_have_full_uptime_and_a_ratio_of_one() -> None:
    rows = measure(all_up())
    assert {r.uptime_pct for r in rows.values()} == {100.0}
    assert {r.contribution_ratio for r in rows.values()} == {1.0}


def test_stopped_member_loses_uptime_and_ratio() -> None:
    rows = measure(all_up(except_=1, after=6))  # down for the last 3 of 9 cycles
    assert rows["nexus-01"].cycles_up == 6 and rows["nexus-01"].cycles_expected == 9
    assert rows["nexus-01"].uptime_pct == round(100 * 6 / 9, 2)
    assert rows["nexus-01"].contribution_ratio < rows["nexus-02"].contribution_ratio


def test_member_seen_connected_by_a_peer_is_up_even_without_its_snapshot() -> None:
    snaps = all_up(except_=3, after=0)
    sightings = [(node_id(3), c) for c in CYCLES]
    assert measure(snaps, sightings)["nexus-03"].uptime_pct == 100.0


def test_cycles_before_a_member_joined_do_not_count_against_it() -> None:
    late = FleetMember(node_id=node_id(3), name="nexus-03", first_seen_at=CYCLES[6])
    rows = measure(all_up(), members=[*MEMBERS[:2], late])
    assert rows["nexus-03"].cycles_expected == 3 and rows["nexus-03"].uptime_pct == 100.0


def test_routing_for_members_and_assistance_move_the_ratio() -> None:
    forwards = [
        FleetForward(node_id=node_id(2), in_peer=node_id(1), out_peer=None, out_msat=500_000 * SAT),
        FleetForward(node_id=node_id(2), in_peer=None, out_peer=node_id(2), out_msat=SAT),  # self
    ]
    moves = [AssistMove(member_id=node_id(3), helper_id=node_id(2), moved_msat=240_000 * SAT)]
    rows = measure(all_up(), forwards=forwards, moves=moves)
    assert rows["nexus-02"].forwarded_for_members_msat == 500_000 * SAT
    assert rows["nexus-01"].forwarded_by_members_msat == 500_000 * SAT
    assert rows["nexus-02"].assist_given_msat == 240_000 * SAT
    assert rows["nexus-03"].assist_received_msat == 240_000 * SAT
    assert rows["nexus-02"].contribution_ratio > 1 > rows["nexus-01"].contribution_ratio
    assert rows["nexus-03"].contribution_ratio < 1


def test_no_collect_cycle_yet_means_unknown_not_zero() -> None:
    rows = measure_contribution(MEMBERS, [], [], [], [], [], CONFIG, NOW)
    assert {(r.uptime_pct, r.contribution_ratio) for r in rows} == {(None, None)}


def policy(scid: str, peer: str, source: str, observer: str, ppm: int, update: int = 1, **kw):  # type: ignore[no-untyped-def]
    return {
        "scid": scid,
        "direction": 0,
        "last_update": update,
        "source_id": source,
        "peer_id": peer,
        "observer_id": observer,
        "is_ours": False,
        "fee_ppm": ppm,
        "active": True,
        **kw,
    }


def test_fee_intelligence_merges_every_members_view_of_a_peer() -> None:
    peer = node_id(50)
    rows = [
        policy("1x1x0", peer, node_id(60), node_id(1), 100),
        policy("2x1x0", peer, node_id(61), node_id(2), 200),
        policy("3x1x0", peer, node_id(62), node_id(2), 300),
        policy("3x1x0", peer, node_id(62), node_id(2), 900, update=0),  # superseded
        policy("4x1x0", peer, node_id(63), node_id(1), 5000, active=False),  # disabled
        policy("5x1x0", peer, node_id(2), node_id(2), 0, is_ours=True),  # our own channel
    ]
    [intel] = merge_fee_intelligence(pl.DataFrame(rows), [node_id(1), node_id(2)], NOW).to_dicts()
    assert intel["peer_id"] == peer
    assert (intel["channels"], intel["sources"], intel["observers"]) == (3, 3, 2)
    assert (intel["p25_ppm"], intel["median_ppm"], intel["p75_ppm"]) == (150.0, 200.0, 250.0)
