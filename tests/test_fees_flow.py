"""The fees loop against the simulator: fleet channels stay free, decisions are all recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyln.client import LightningRpc

from flows.collect import collect
from flows.fees import fees
from lnsim.simfleet import SimFleet
from models.settings import load_settings
from warehouse import db

HOUR_S = 3600


@pytest.fixture
def fleet(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(24 * HOUR_S)
        yield fleet


def config(fleet: SimFleet, tmp_path: Path, extra: str = "") -> Path:
    path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
    with path.open("a") as f:
        f.write("\n[fees]\nmin_fee_ppm = 25\n" + extra)
    return path


def fleet_fees(fleet: SimFleet, name: str) -> set[tuple[int, int]]:
    rpc = LightningRpc(str(fleet.socket_paths[name]))
    fleet_ids = set(fleet.node_ids.values())
    return {
        (c["fee_base_msat"], c["fee_proportional_millionths"])
        for c in rpc.listpeerchannels()["channels"]
        if c["peer_id"] in fleet_ids
    }


def cycle(fleet: SimFleet, path: Path) -> None:
    collect(config_path=str(path), now=fleet.now)
    fees(config_path=str(path), now=fleet.now)


def test_fleet_channel_stays_zero_fee_under_min_floor(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    rpc = LightningRpc(str(fleet.socket_paths["nexus-02"]))
    fleet_peer = fleet.node_ids["nexus-03"]
    rpc.setchannel(fleet_peer, feebase=1000, feeppm=25)  # the audit's floor on a fleet channel
    path = config(fleet, tmp_path)
    for _ in range(3):
        cycle(fleet, path)
        for name in fleet.node_ids:
            assert fleet_fees(fleet, name) <= {(0, 0)}, name
        fleet.advance(6 * HOUR_S)
    with db.reader(load_settings(path).warehouse_path) as con:
        reasons = con.execute(
            "SELECT reason, count(*) FROM fee_changes WHERE peer_id = ? GROUP BY reason",
            [fleet_peer],
        ).fetchall()
        undecided = con.execute(
            "SELECT count(*) FROM channel_latest c ANTI JOIN fee_decisions d USING (node_id, scid)"
        ).fetchall()[0][0]
    assert reasons == [("fleet_policy", 1)]
    assert undecided == 0


def test_cold_start_channels_change_fee_within_a_few_cycles(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = config(fleet, tmp_path)
    for _ in range(4):
        cycle(fleet, path)
        fleet.advance(6 * HOUR_S)
    with db.reader(load_settings(path).warehouse_path) as con:
        quiet_changed = con.execute(
            "SELECT count(DISTINCT c.scid) FROM fee_changes c "
            "WHERE c.status = 'applied' AND NOT EXISTS (SELECT 1 FROM forwards f "
            "WHERE f.out_channel = c.scid AND f.status = 'settled')"
        ).fetchall()[0][0]
        failed = con.execute("SELECT count(*) FROM fee_changes WHERE status <> 'applied'")
        assert failed.fetchall()[0][0] == 0
    assert quiet_changed >= 3


def test_dry_run_records_decisions_and_changes_nothing(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = config(fleet, tmp_path, extra="")
    text = path.read_text().replace("warehouse_path", "dry_run = true\nwarehouse_path", 1)
    path.write_text(text)
    before = fleet.call_count("nexus-02", "setchannel")
    cycle(fleet, path)
    assert fleet.call_count("nexus-02", "setchannel") == before
    with db.reader(load_settings(path).warehouse_path) as con:
        decided, dry = con.execute(
            "SELECT count(*), bool_and(dry_run) FROM fee_decisions"
        ).fetchall()[0]
        changes = con.execute("SELECT count(*) FROM fee_changes").fetchall()[0][0]
    assert decided > 0 and dry and changes == 0


def test_static_policy_from_the_cli_is_applied_and_bad_ones_refused(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from hiveops.cli import main

    path = config(fleet, tmp_path)
    collect(config_path=str(path), now=fleet.now)  # creates the warehouse
    rpc = LightningRpc(str(fleet.socket_paths["nexus-02"]))
    fleet_ids = set(fleet.node_ids.values())
    peer = next(
        c["peer_id"] for c in rpc.listpeerchannels()["channels"] if c["peer_id"] not in fleet_ids
    )
    assert (
        main(
            [
                "policy",
                "set",
                "--config",
                str(path),
                "--peer",
                peer,
                "--kind",
                "static",
                "--ppm",
                "777",
            ]
        )
        == 0
    )
    assert main(["policy", "set", "--config", str(path), "--peer", peer, "--kind", "static"]) == 2
    assert "needs fee_ppm" in capsys.readouterr().err
    fees(config_path=str(path), now=fleet.now)
    posted = {c["fee_proportional_millionths"] for c in rpc.listpeerchannels(peer)["channels"]}
    assert posted == {777}
    assert main(["policy", "delete", "--config", str(path), "--peer", peer]) == 0
    assert main(["policy", "get", "--config", str(path), "--peer", peer]) == 1


def test_a_drained_channel_with_waiting_demand_is_priced_at_its_refill_cost(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    """Customers drain one of nexus-02's channels and keep asking for it (local failures); the
    rebalance loop prices the route back into it from gossip; the next fee cycle posts at least
    that route's price over refill_cost_share, in one move, reason refill_floor."""
    from flows.rebalance import rebalance

    path = config(fleet, tmp_path)
    cycle(fleet, path)
    me = fleet.node_ids["nexus-02"]
    with fleet.net.lock:
        external = fleet.external_channels("nexus-02")
        into = max(external, key=lambda c: c.capacity_msat - c.local_msat(me))
        inbound_msat = into.capacity_msat - into.local_msat(me)
        sink = max(
            (c for c in external if c is not into and c.local_msat(me) < inbound_msat // 2),
            key=lambda c: c.local_msat(me),
        )
        drain_msat = sink.local_msat(me) * 98 // 100
        ask_msat = sink.capacity_msat // 5
    assert sink.local_msat(me) > 0.2 * sink.capacity_msat
    assert fleet.route_payments("nexus-02", into.scid, sink.scid, drain_msat, parts=4) == 4
    # More customers ask for the drained channel: CLN fails them locally (demand waiting)
    assert fleet.route_payments("nexus-02", into.scid, sink.scid, ask_msat, parts=5) == 0
    fleet.advance(HOUR_S)
    collect(config_path=str(path), now=fleet.now)
    rebalance(config_path=str(path), now=fleet.now)
    fleet.advance(25 * HOUR_S)  # past the fee rate limit
    # A cheap sink (the busy scenario's sat at 30 ppm): no step-limited rule gets it past 40 ppm.
    LightningRpc(str(fleet.socket_paths["nexus-02"])).setchannel(sink.scid, feeppm=30)
    cycle(fleet, path)
    settings = load_settings(path)
    with db.reader(settings.warehouse_path) as con:
        missed = con.execute(
            "SELECT count(*) FROM forwards WHERE out_channel = ? AND status = 'local_failed'",
            [sink.scid],
        ).fetchall()[0][0]
        [(route_ppm,)] = con.execute(
            "SELECT route_ppm FROM ("
            " SELECT decided_at AS quoted_at,"
            " json_extract_string(inputs, '$.route_ppm') AS route_ppm"
            " FROM rebalance_skips WHERE scid = ?"
            " UNION ALL SELECT proposed_at, json_extract_string(inputs, '$.evaluation.route_ppm')"
            " FROM rebalance_attempts WHERE dest_scid = ?)"
            " WHERE route_ppm IS NOT NULL ORDER BY quoted_at DESC LIMIT 1",
            [sink.scid, sink.scid],
        ).fetchall()
        [(reason, old_ppm, new_ppm, floor_ppm)] = con.execute(
            "SELECT reason, old_fee_ppm, new_fee_ppm, inputs->>'refill_floor_ppm'"
            " FROM fee_decisions WHERE scid = ? ORDER BY decided_at DESC LIMIT 1",
            [sink.scid],
        ).fetchall()
    assert missed == 5
    expected = min(-(-int(route_ppm) * 10 // 6), settings.fees.max_fee_ppm)
    assert int(floor_ppm) == -(-int(route_ppm) * 10 // 6)
    assert (reason, new_ppm) == ("refill_floor", expected)
    assert old_ppm == 30 and new_ppm > old_ppm * 1.25  # past the step limit: a floor, in one move
