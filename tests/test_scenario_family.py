"""The scenario family: deterministic, valid, spanning the documented ranges, and routable."""

from __future__ import annotations

from lnsim import scenario_family as fam
from lnsim.scenario_model import Scenario, load_scenario
from lnsim.simmarket import Market
from lnsim.topology import build_network


def test_draws_are_deterministic_unique_and_prefix_stable() -> None:
    first = fam.draw_scenarios(12, seed=5)
    assert [s.model_dump() for s in first] == [s.model_dump() for s in fam.draw_scenarios(12, 5)]
    assert [s.name for s in first] == [f"random-5-{i}" for i in range(12)]
    assert [s.model_dump() for s in fam.draw_scenarios(4, 5)] == [s.model_dump() for s in first[:4]]
    other = fam.draw_scenarios(12, seed=6)
    assert [s.demand for s in other] != [s.demand for s in first]
    assert load_scenario("random-5-3") == first[3]  # a name is enough to rebuild one


def test_draws_stay_inside_the_documented_ranges_and_span_them() -> None:
    drawn = fam.draw_scenarios(200, seed=1)
    for s in drawn:
        assert isinstance(Scenario.model_validate(s.model_dump()), Scenario)
        node = next(m for m in s.members if m.name == fam.BENCH_NODE)
        assert fam.CHANNELS[0] <= len(node.channels) <= fam.CHANNELS[1]
        assert 3 <= s.demand.payments_per_hour <= 600
        assert 10_000 <= s.demand.amount_median_sat <= 200_000
        assert 0 <= s.demand.risk_ppm <= 1_000 and 0 <= s.demand.hop_ppm <= 30
        assert 0 <= s.competitors.undercut_share <= 0.8
    rates = sorted(s.demand.payments_per_hour for s in drawn)
    assert rates[0] < 6 and rates[-1] > 300  # both ends of the traffic range are reached
    risks = sorted(s.demand.risk_ppm for s in drawn)
    assert risks[0] < 50 and risks[-1] > 950
    undercut = [s.competitors.undercut_share for s in drawn]
    assert 0.3 < sum(u == 0 for u in undercut) / len(undercut) < 0.7 and max(undercut) > 0.7
    shares = [c.local_share for s in drawn for c in s.members[1].channels]
    assert min(shares) < 0.05 and max(shares) > 0.95
    caps = [c.capacity_sat for s in drawn for c in s.members[1].channels]
    assert min(caps) < 1_000_000 and max(caps) > 10_000_000


def test_a_drawn_scenario_builds_and_routes_through_the_bench_node() -> None:
    scenario = fam.draw_scenario(seed=2, index=0)
    net = build_network(scenario)
    node = net.node_by_name(fam.BENCH_NODE)
    market = Market(net, scenario)
    market.advance(3 * 86_400)
    assert node.fleet is not None and net.nodes  # the network exists; traffic is bench-measured
    assert len(net.channels_of(node.pubkey)) == len(scenario.members[1].channels) + 1
