"""bench/fees.py: same demand for every policy, an exact fast replay, an oracle that is the best
fixed point it evaluated, and competitors that can undercut the fleet (default off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fees as bench_fees
from bench.fee_oracle import demand_trace
from bench.fee_policies import external_scids, relevant_arrivals, run_policy
from lnsim.scenario_model import load_scenario
from lnsim.simmarket import Market, _watches
from lnsim.topology import build_network

DAYS = 3


def test_relevance_filter_replays_exactly_what_a_full_replay_does() -> None:
    scenario = load_scenario("audit")
    net = build_network(scenario)
    arrivals = demand_trace(scenario, net, DAYS)
    kept = relevant_arrivals(scenario, "nexus-02", DAYS, arrivals)
    assert 0 < len(kept) < len(arrivals) / 2
    scids = external_scids(net, "nexus-02")
    for ppm in (20, 400):
        fixed = {scid: (0, ppm) for scid in scids}
        full = run_policy(scenario, "nexus-02", DAYS, arrivals, fixed=fixed)
        fast = run_policy(scenario, "nexus-02", DAYS, kept, fixed=fixed)
        assert full.revenue_msat > 0
        assert fast.by_channel_msat == full.by_channel_msat
        assert fast.settled_by_channel == full.settled_by_channel


def small_audit(folder: Path) -> Path:
    """The audit scenario with nexus-02 cut to its fleet channel and four others: a quick oracle."""
    data = load_scenario("audit").model_dump(mode="json")
    for member in data["members"]:
        if member["name"] == "nexus-02":
            member["channels"] = member["channels"][:5]
    path = folder / "small_audit.json"
    path.write_text(json.dumps(data))
    return path


def test_bench_prints_every_policy_and_the_oracle_is_the_best_fixed_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_path = small_audit(tmp_path)
    argv = ["--scenario", str(scenario_path), "--days", str(DAYS), "--oracle-rounds", "1"]
    args = bench_fees.parse_args([*argv, "--grid", "20,200,1000", "--polish", "2"])
    (report,) = bench_fees.run_bench(args)
    assert report.error is None
    bench_fees.print_scenario(report, args)
    bench_fees.print_aggregate([report])
    table = capsys.readouterr().out
    for name in (*bench_fees.POLICY_ORDER, "oracle"):
        assert f"   {name} " in table
    assert report.oracle is not None and report.oracle_run is not None
    assert len(report.searched) > len(bench_fees.FIXED_POLICIES) + 3  # seeds + grid + moves
    for point in report.searched:
        assert report.oracle.revenue_msat >= point.revenue_msat, point.label
    for name in bench_fees.FIXED_POLICIES:
        assert report.oracle.revenue_msat >= report.results[name].revenue_msat
    # The same fees on the same demand earn the same, here as in the worker processes.
    scenario = load_scenario(scenario_path)
    arrivals = demand_trace(scenario, build_network(scenario), DAYS)
    again = run_policy(
        scenario,
        "nexus-02",
        DAYS,
        arrivals,
        fixed=dict(zip(report.scids, report.oracle.fees, strict=True)),
    )
    assert again.revenue_msat == report.oracle.revenue_msat > 0


def test_undercutting_competitors_post_under_the_fleet_fee_and_default_scenarios_do_not() -> None:
    scenario = load_scenario("undercut")
    net = build_network(scenario)
    market = Market(net, scenario)
    node = net.node_by_name("nexus-02")
    channel = next(
        c for c in net.channels_of(node.pubkey) if c.scid in external_scids(net, "nexus-02")
    )
    peer = channel.other(node.pubkey)
    market.set_fee(node.pubkey, channel.scid, 0, 200)
    before = {c.scid: c.policy_from(c.other(peer)).fee_ppm for c in net.channels_of(peer)}
    market.advance(scenario.competitors.walk_every_s + 1)
    watchers = [
        c
        for c in net.channels_of(peer)
        if c.to_node1_msat is None and _watches(c.scid, scenario.competitors)
    ]
    assert any(before[c.scid] > 180 for c in watchers), "no watcher priced above us to react"
    for c in watchers:
        assert c.policy_from(c.other(peer)).fee_ppm <= 180  # 10 % under our 200 ppm
    plain = load_scenario("audit")
    assert plain.competitors.undercut_share == 0
    quiet = Market(build_network(plain), plain)
    quiet.advance(plain.competitors.walk_every_s + 1)
    assert quiet._undercut_own_ppm == {}


def test_default_run_is_the_named_four_plus_twelve_family_draws_and_random_alone_is_held_out() -> (
    None
):
    default = bench_fees.scenario_refs(bench_fees.parse_args([]))
    assert default[:4] == list(bench_fees.DEFAULT_SCENARIOS)
    assert default[4:] == [f"random-{bench_fees.DEFAULT_SEED}-{i}" for i in range(12)]
    held_out = bench_fees.scenario_refs(bench_fees.parse_args(["--random", "3", "--seed", "9"]))
    assert held_out == ["random-9-0", "random-9-1", "random-9-2"]
    picked = bench_fees.scenario_refs(bench_fees.parse_args(["--scenario", "audit"]))
    assert picked == ["audit"]


def test_churn_counts_changes_per_channel_week_after_the_first_seven_days() -> None:
    day = 86_400.0
    result = bench_fees.RunResult(
        policy="x",
        revenue_msat=0,
        by_channel_msat={},
        settled_by_channel={},
        mean_fee_ppm={},
        final_fees={},
        changes=6,
        wall_s=0.0,
        change_offsets_s={"a": [0.0, day, 6 * day, 8 * day, 20 * day], "b": [2 * day]},
    )
    # 21 days = 2 weeks after day 7: "a" changed twice then (days 8 and 20), "b" never.
    assert bench_fees.changes_per_channel_week(result, ["a", "b"], 21) == [1.0, 0.0]
