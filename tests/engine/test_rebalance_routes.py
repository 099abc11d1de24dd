"""Route pricing from gossip: circular quotes, and the planner refusing what no route can do."""

from __future__ import annotations

from typing import Any

import pytest

from engine.rebalance.routes import GossipGraph, HalfChannel, RoutePricer
from models.rebalance import RebalanceProposal, SkipReason
from tests.engine.test_rebalance_planner import (
    NODE,
    busy_sink_node,
    plan,
    proposals,
    skips,
)

US, S, X, Y, D = NODE, "S" * 66, "X" * 66, "Y" * 66, "D" * 66
M = 1_000_000  # capacity unit: 1 M sat in msat is 1e9


def both_ways(
    a: str,
    b: str,
    scid: str,
    *,
    a_ppm: int,
    b_ppm: int,
    a_base: int = 0,
    b_base: int = 0,
    capacity_msat: int = 5_000 * M,
    active: bool = True,
) -> list[dict[str, Any]]:
    """One public channel as listchannels lists it: a half per direction."""

    def half(src: str, dst: str, ppm: int, base: int) -> dict[str, Any]:
        return {
            "source": src,
            "destination": dst,
            "short_channel_id": scid,
            "base_fee_millisatoshi": base,
            "fee_per_millionth": ppm,
            "amount_msat": capacity_msat,
            "htlc_maximum_msat": capacity_msat,
            "active": active,
        }

    return [half(a, b, a_ppm, a_base), half(b, a, b_ppm, b_base)]


def graph(*extra: list[dict[str, Any]]) -> GossipGraph:
    """us—S (1x1), us—D (1x2), S—X (2x1), X—D (2x2): the only way back into D is S→X→D→us."""
    rows = [
        *both_ways(US, S, "1x1x0", a_ppm=0, b_ppm=40),
        *both_ways(US, D, "1x2x0", a_ppm=0, b_ppm=100, b_base=1_000),
        *both_ways(S, X, "2x1x0", a_ppm=50, b_ppm=7),
        *both_ways(X, D, "2x2x0", a_ppm=200, b_ppm=9),
    ]
    for more in extra:
        rows.extend(more)
    return GossipGraph.from_listchannels(rows)


def quote(g: GossipGraph, amount_msat: int = 100_000_000) -> Any:
    return RoutePricer(g, US).quote(
        source_peer=S, dest_peer=D, dest_scid="1x2x0", amount_msat=amount_msat
    )


def test_a_circular_quote_charges_every_hop_after_us_on_what_it_carries() -> None:
    q = quote(graph())
    amount = 100_000_000
    last = 1_000 + amount * 100 // 1_000_000  # D's fee on its channel into us
    mid = (amount + last) * 200 // 1_000_000  # X into D carries D's fee too
    first = (amount + last + mid) * 50 // 1_000_000  # S's own first hop is not free
    assert q.fee_msat == last + mid + first
    assert q.scids == ("2x1x0", "2x2x0", "1x2x0")
    assert q.ppm == -(-q.fee_msat * 1_000_000 // amount)


def test_the_cheapest_route_wins_and_never_passes_through_us_again() -> None:
    cheap_via_us = both_ways(US, Y, "1x3x0", a_ppm=0, b_ppm=0)  # Y—us—… would be free
    cheaper = [
        *both_ways(S, Y, "3x1x0", a_ppm=1, b_ppm=1),
        *both_ways(Y, D, "3x2x0", a_ppm=1, b_ppm=1),
    ]
    q_via_us = quote(graph(cheap_via_us))
    assert US not in q_via_us.scids and q_via_us.scids == ("2x1x0", "2x2x0", "1x2x0")
    q = quote(graph(cheaper))
    assert q.scids == ("3x1x0", "3x2x0", "1x2x0") and q.fee_msat < q_via_us.fee_msat


@pytest.mark.parametrize(
    "change",
    [
        {"active": False},  # X—D disabled
        {"capacity_msat": 50 * M},  # X—D too small for 100 k sat
    ],
)
def test_no_quote_when_gossip_has_no_usable_route(change: dict[str, Any]) -> None:
    rows = [
        *both_ways(US, S, "1x1x0", a_ppm=0, b_ppm=40),
        *both_ways(US, D, "1x2x0", a_ppm=0, b_ppm=100),
        *both_ways(S, X, "2x1x0", a_ppm=50, b_ppm=7),
        *both_ways(X, D, "2x2x0", a_ppm=200, b_ppm=9, **change),
    ]
    assert quote(GossipGraph.from_listchannels(rows)) is None


def test_malformed_gossip_entries_are_skipped_not_guessed() -> None:
    rows = [*both_ways(S, X, "2x1x0", a_ppm=50, b_ppm=7), {"source": S, "destination": X}]
    assert len(GossipGraph.from_listchannels(rows)) == 2
    assert isinstance(GossipGraph([HalfChannel(S, X, "s", 0, 1, 10, 10, True)]), GossipGraph)


def sink_gossip(route_ppm: int) -> GossipGraph:
    """Gossip for busy_sink_node(): every source peer reaches the sink's peer at `route_ppm`."""
    channels, _ = busy_sink_node()
    sink, sources = channels[0], channels[1:]
    rows = [*both_ways(US, sink.peer_id, sink.scid, a_ppm=0, b_ppm=route_ppm)]
    for s in sources:
        rows += both_ways(US, s.peer_id, s.scid, a_ppm=0, b_ppm=0)
        rows += both_ways(s.peer_id, sink.peer_id, f"7x{s.scid}", a_ppm=0, b_ppm=0)
    return GossipGraph.from_listchannels(rows)


def test_the_planner_skips_a_pull_no_route_can_serve_within_its_gain() -> None:
    channels, rows = busy_sink_node()
    [without] = proposals(plan(channels, rows))
    gain_ppm = without.inputs["evaluation"]["gain_msat"] * 1_000_000 // without.amount_msat
    result = plan(channels, rows, gossip=sink_gossip(route_ppm=gain_ppm + 50))
    assert proposals(result) == []
    skip = skips(result)["900001x1x0"]
    assert skip.reason is SkipReason.ROUTE_TOO_EXPENSIVE
    assert f"costs {gain_ppm + 50} ppm" in skip.detail and "gossip" in skip.detail


def test_a_quoted_route_may_take_more_of_the_gain_and_is_kept_with_the_proposal() -> None:
    channels, rows = busy_sink_node()
    [without] = proposals(plan(channels, rows))
    route_ppm = without.maxppm + 20  # dearer than the unquoted cap, inside the quoted one
    [quoted] = proposals(plan(channels, rows, gossip=sink_gossip(route_ppm=route_ppm)))
    assert isinstance(quoted, RebalanceProposal)
    assert quoted.maxppm >= route_ppm > without.maxppm
    assert quoted.inputs["evaluation"]["route_ppm"] == route_ppm
    assert quoted.predicted_benefit_msat > 0
