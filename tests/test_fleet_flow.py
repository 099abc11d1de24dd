"""The fleet loop against the simulated audit fleet, as real Prefect flow runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from flows.collect import collect
from flows.common import LoopFailed, resolve_now
from flows.fleet import fleet as fleet_loop
from lnsim.simfleet import SimFleet
from models.settings import load_settings
from warehouse import db

HOUR_S = 3600


@pytest.fixture
def sim(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path / "sim") as sim:
        sim.advance(24 * HOUR_S)
        yield sim


@pytest.fixture
def config(sim: SimFleet, tmp_path: Path) -> Path:
    path = sim.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
    with path.open("a") as f:
        f.write("\n[rpc]\nretries = 1\nbackoff_base_s = 0.01\ntimeout_s = 5\n")
    return path


def cycle(sim: SimFleet, config: Path) -> None:
    collect(config_path=str(config), now=sim.now)
    fleet_loop(config_path=str(config), now=sim.now)


def rows(config: Path, query: str, *params: object) -> list[dict[str, object]]:
    with db.reader(load_settings(config).warehouse_path) as con:
        cur = con.execute(query, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def contribution(config: Path) -> dict[str, dict[str, object]]:
    latest = rows(
        config,
        "SELECT * FROM fleet_contribution "
        "QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY measured_at DESC) = 1",
    )
    return {r["name"]: r for r in latest}  # type: ignore[misc]


def test_uptime_and_contribution_fall_for_a_member_whose_node_stops(
    sim: SimFleet, config: Path, prefect_harness: None
) -> None:
    for _ in range(2):
        cycle(sim, config)
        sim.advance(12 * HOUR_S)
    live = contribution(config)
    for name in sim.node_ids:
        assert live[name]["uptime_pct"] == 100.0, name
        assert live[name]["contribution_ratio"] > 0, name  # type: ignore[operator]

    sim.stop_node("nexus-01")
    for _ in range(2):
        with pytest.raises(LoopFailed, match="nexus-01"):
            collect(config_path=str(config), now=sim.now)
        with pytest.raises(LoopFailed, match="fleet member nexus-01: latest snapshot"):
            fleet_loop(config_path=str(config), now=sim.now)
        sim.advance(12 * HOUR_S)

    after = contribution(config)
    stopped = after["nexus-01"]
    assert (stopped["cycles_up"], stopped["cycles_expected"]) == (2, 4)
    assert stopped["uptime_pct"] < live["nexus-01"]["uptime_pct"]  # type: ignore[operator]
    assert stopped["contribution_ratio"] < live["nexus-01"]["contribution_ratio"]  # type: ignore[operator]
    for name in ("nexus-02", "nexus-03"):
        assert after[name]["uptime_pct"] == 100.0, name
    beats = rows(
        config,
        "SELECT status, count(*) AS n FROM heartbeats WHERE loop = 'fleet' AND node = 'nexus-01' "
        "GROUP BY status ORDER BY status",
    )
    assert beats == [{"status": "failed", "n": 2}, {"status": "ok", "n": 2}]
    alerts = rows(config, "SELECT count(*) AS n FROM alerts WHERE kind = 'fleet_member_unscored'")
    assert alerts == [{"n": 2}]


def fake_rebalance_attempt(config: Path, request: dict[str, object], at: float) -> None:
    """What the rebalance loop records when it runs a fleet pull: a fleet_assist attempt."""
    now = resolve_now(at)
    with db.writer(load_settings(config).warehouse_path) as con:
        con.execute(
            "INSERT INTO rebalance_attempts (attempt_id, run_id, node_id, dest_scid, purpose, "
            "assistance_id, amount_msat, maxppm, max_cost_msat, candidates, outppm, "
            "expected_revenue_msat, opportunity_cost_msat, predicted_benefit_msat, exempt_from_ev,"
            " horizon_s, dry_run, proposed_at, started_at, finished_at, state, fee_msat, "
            "moved_msat, source_scid, inputs) VALUES ('a1', 'r1', ?, ?, 'fleet_assist', ?, ?, ?, "
            "0, '[]', 0, 0, 0, 0, true, 86400, false, ?, ?, ?, 'succeeded', 1000, ?, ?, '{}')",
            [
                request["node_id"],
                request["dest_scid"],
                request["assistance_id"],
                request["amount_msat"],
                request["max_fee_ppm"],
                now,
                now,
                now + timedelta(minutes=5),
                request["amount_msat"],
                request["source_scid"],
            ],
        )


def test_nexus03_is_critical_gets_assistance_and_every_action_gets_an_outcome(
    sim: SimFleet, config: Path, prefect_harness: None
) -> None:
    cycle(sim, config)
    nexus03 = sim.node_ids["nexus-03"]
    [health] = rows(
        config, "SELECT tier, needs_help FROM fleet_member_health WHERE node_id = ?", nexus03
    )
    assert health["tier"] in ("critical", "struggling") and health["needs_help"]
    with db.reader(load_settings(config).warehouse_path) as con:
        [request] = db.fetch_all(con, "fleet.open_liquidity_requests")
        [proposal] = db.fetch_all(con, "fleet.open_proposals")
    assert request["node_id"] == nexus03  # the member pulls over its own fleet channel
    nexus03_scids = {
        r["scid"]
        for r in rows(config, "SELECT scid FROM channel_latest WHERE node_id = ?", nexus03)
    }
    assert request["dest_scid"] in nexus03_scids and request["source_scid"] in nexus03_scids
    assert request["amount_msat"] > 0  # type: ignore[operator]
    # shaped as the advisor's action: nexus-01 (funded, healthy) opens a channel to nexus-03
    assert proposal["peer_id"] == nexus03 and proposal["helper_name"] == "nexus-01"
    assert proposal["node_id"] == sim.node_ids["nexus-01"] and proposal["amount_sat"] > 0

    # The rebalance loop runs the pull; the advisor turns the proposal down.
    fake_rebalance_attempt(config, request, sim.now + 60)
    with db.writer(load_settings(config).warehouse_path) as con:
        db.run(
            con,
            "fleet.decide_proposal",
            assistance_id=proposal["assistance_id"],
            state="rejected",
            decided_at=resolve_now(sim.now + 120),
            note="fleet too small",
        )
    sim.advance(8 * HOUR_S)
    cycle(sim, config)

    unclosed = rows(
        config,
        "SELECT a.assistance_id, a.state FROM fleet_assistance a "
        "ANTI JOIN fleet_assistance_outcomes o USING (assistance_id) WHERE a.requested_at < ?",
        resolve_now(sim.now),
    )
    assert unclosed == []
    outcomes = {
        r["kind"]: r
        for r in rows(config, "SELECT * FROM fleet_assistance_outcomes WHERE node_id = ?", nexus03)
    }
    pull = outcomes["liquidity_pull"]
    assert pull["result"] == "helped" and pull["moved_msat"] == request["amount_msat"]
    assert pull["health_before"] is not None and pull["health_after"] is not None
    assert outcomes["channel_open_proposal"]["detail"] == (
        "could not help: advisor rejected: fleet too small"
    )
    with db.reader(load_settings(config).warehouse_path) as con:
        assert db.fetch_all(con, "fleet.open_liquidity_requests") == []
        intel = db.fetch_all(con, "fleet.fee_intelligence")
        report = db.fetch_all(con, "fleet.report_assistance")
    assert intel and all(r["observers"] >= 1 and r["channels"] >= 1 for r in intel)
    assert {(r["kind"], r["result"]) for r in report if r["member_name"] == "nexus-03"} >= {
        ("liquidity_pull", "helped"),
        ("channel_open_proposal", "could_not_help"),
    }
    given = contribution(config)
    assert given["nexus-02"]["assist_given_msat"] == request["amount_msat"]
    assert given["nexus-03"]["assist_received_msat"] == request["amount_msat"]
