"""A simulated month of collect and rebalance runs: the warehouse's P&L agrees with the node's
bookkeeper to the msat, a discrepancy is a report finding with both numbers, and fee changes
made outside hiveops are detected, learned from and reported."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyln.client import LightningRpc

from engine.fees.inputs import build_fee_history
from flows.collect import collect
from flows.outcomes import outcomes
from flows.rebalance import rebalance
from flows.report import report
from models.settings import load_settings
from tasks.advisor import execute_decision
from warehouse import db

DAY_S = 86_400
STEP_DAYS = 10
MONTH_DAYS = 30


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None):  # type: ignore[no-untyped-def]
    """30 simulated days: collect and rebalance every 10 days (the audited, gate-less setup, so
    the audit scenario rebalances at all), one fee and one max-HTLC set by hand. Coarse cadences
    keep it to a dozen flow runs; the books do not depend on the cadence."""
    from lnsim.simfleet import SimFleet

    tmp = tmp_path_factory.mktemp("books")
    with SimFleet("audit", workdir=tmp / "sim") as fleet:
        config = tmp / "hiveops.toml"
        fleet.write_config(config, tmp / "hiveops.duckdb")
        with config.open("a") as f:
            f.write("\n[rebalance]\nev_gate = false\n")
        rpc = LightningRpc(str(fleet.socket_paths["nexus-02"]))
        fleet_ids = set(fleet.node_ids.values())
        hand = next(
            c["short_channel_id"]
            for c in rpc.listpeerchannels()["channels"]
            if c["peer_id"] not in fleet_ids
        )
        collect(config_path=str(config), now=fleet.now)
        opened, closed = _approved_open_and_close(fleet, config)
        for step in range(MONTH_DAYS // STEP_DAYS):
            fleet.advance(STEP_DAYS * DAY_S)
            if step == 2:  # an operator's `lightning-cli setchannel`, between two collects
                rpc.setchannel(hand, feebase=0, feeppm=777, htlcmax=400_000_000)
            collect(config_path=str(config), now=fleet.now)
            rebalance(config_path=str(config), now=fleet.now)
        fleet.advance(DAY_S)
        collect(config_path=str(config), now=fleet.now)
        rebalance(config_path=str(config), now=fleet.now)  # reconciles the last attempts
        outcomes(config_path=str(config), now=fleet.now)
        report(config_path=str(config), now=fleet.now)
        yield fleet, config, rpc, hand, (opened, closed)


def _approved_open_and_close(fleet, config: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """An operator-approved open (nexus-02 to a graph node) and close (one of nexus-01's idle
    channels), carried out by the advisor's own execute task against the simulator."""
    settings = load_settings(config)
    at = datetime.fromtimestamp(fleet.now, tz=UTC)
    n02, n01 = fleet.node_ids["nexus-02"], fleet.node_ids["nexus-01"]
    peers = {
        c["peer_id"]
        for c in LightningRpc(str(fleet.socket_paths["nexus-02"])).listpeerchannels()["channels"]
    }
    target = next(
        pk for pk, n in sorted(fleet.net.nodes.items()) if not n.is_fleet and pk not in peers
    )
    idle = next(
        c
        for c in LightningRpc(str(fleet.socket_paths["nexus-01"])).listpeerchannels()["channels"]
        if c["peer_id"] not in set(fleet.node_ids.values())
    )
    decisions = [
        (
            "open-0001",
            n02,
            "channel_open",
            target,
            "fundchannel",
            {"peer_id": target, "amount_sat": 1_000_000},
        ),
        (
            "close-0001",
            n01,
            "channel_close",
            idle["short_channel_id"],
            "close",
            {"scid": idle["short_channel_id"], "peer_id": idle["peer_id"]},
        ),
    ]
    with db.writer(settings.warehouse_path) as con:
        for decision_id, node_id, kind, target_, action, params in decisions:
            con.execute(
                "insert into advisor_decisions (decision_id, run_id, decided_at, node_id,"
                " opportunity_type, target, action, action_params, owner_loop, snapshot_metrics,"
                " raw_estimate_msat, predicted_benefit_msat, confidence, calibration_factor,"
                " benefit_reason, mode, state, answered_at, answered_by)"
                " values (?, 'test', ?, ?, ?, ?, ?, ?, 'advisor', '{}', 1000000, 500000, 0.5,"
                " 0.5, 'constructed', 'approval', 'approved', ?, 'test')",
                [decision_id, at, node_id, kind, target_, action, json.dumps(params), at],
            )
    names = {name: fleet.node_ids[name] for name in fleet.socket_paths}
    for decision_id, *_ in decisions:
        execute_decision(settings.warehouse_path, settings, decision_id, names, at)
    return "open-0001", "close-0001"


def rows(config: Path, query: str, *params: object) -> list[tuple]:
    with db.reader(load_settings(config).warehouse_path) as con:
        return con.execute(query, list(params)).fetchall()


def day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def test_ledger_matches_bookkeeper_to_the_msat(month) -> None:  # type: ignore[no-untyped-def]
    fleet, config, rpc, _, _ = month
    for name, socket in fleet.socket_paths.items():
        node_id = fleet.node_ids[name]
        books = LightningRpc(str(socket)).call("bkpr-listincome")["income_events"]
        by_day: dict[tuple[str, str], int] = defaultdict(int)
        for e in books:
            by_day[(day_of(e["timestamp"]), e["tag"])] += e["credit_msat"] - e["debit_msat"]
        stored = rows(
            config,
            "select cast(day as varchar), routed_msat, onchain_fee_msat, rebalance_fee_msat,"
            " transfers_msat from ledger_daily where node_id = ?",
            node_id,
        )
        assert {d for d, *_ in stored} == {d for d, _ in by_day}
        for day, routed, onchain, rebalance_fee, transfers in stored:
            assert routed == by_day[(day, "routed")], (name, day)
            assert onchain == -by_day[(day, "onchain_fee")], (name, day)
            assert rebalance_fee == -by_day[(day, "rebalance_fee")], (name, day)
            assert transfers == by_day[(day, "deposit")], (name, day)
    # every msat of routing income the node booked is in the per-channel view too
    node_id = fleet.node_ids["nexus-02"]
    books = rpc.call("bkpr-listincome")["income_events"]
    booked = sum(e["credit_msat"] for e in books if e["tag"] == "routed")
    assert booked > 0
    assert (
        rows(
            config, "select sum(routed_msat) from ledger_channel_daily where node_id = ?", node_id
        )[0][0]
        == booked
    )
    # the simulated month rebalanced, so the sling side of the reconciliation is exercised
    assert rows(config, "select count(*) from bkpr_income where tag = 'rebalance_fee'")[0][0] > 0
    assert (
        rows(config, "select count(*) from rebalance_attempts where state = 'succeeded'")[0][0] > 0
    )


def test_reconciliation_passes_then_an_injected_gap_fires_with_both_numbers(month) -> None:  # type: ignore[no-untyped-def]
    fleet, config, _, _, _ = month
    settings = load_settings(config)
    finding = _finding(settings.warehouse_path, "books_mismatch", fleet.now)
    assert finding["ok"], finding
    assert "reconciled" in finding["summary"]

    # a forward lost between the node and the warehouse: forwards say less than bookkeeper
    node_id = fleet.node_ids["nexus-02"]
    with db.writer(settings.warehouse_path) as con:
        lost = con.execute(
            "select created_index, fee_msat, cast(resolved_at as date) from forwards"
            " where node_id = ? and status = 'settled' and fee_msat > 0"
            " order by created_index limit 1",
            [node_id],
        ).fetchone()
        con.execute(
            "delete from forwards where node_id = ? and created_index = ?", [node_id, lost[0]]
        )
        day = lost[2]
        forwards_fee, bkpr_routed = con.execute(
            "select forwards_fee_msat, bkpr_routed_msat from ledger_reconciliation"
            " where node_id = ? and day = ?",
            [node_id, day],
        ).fetchone()
    assert bkpr_routed - forwards_fee == lost[1]
    report(config_path=str(config), now=fleet.now + 1)
    finding = _finding(settings.warehouse_path, "books_mismatch", fleet.now + 1)
    assert not finding["ok"] and finding["severity"] == "warning"
    assert (
        f"forwards {forwards_fee} msat vs bookkeeper routed {bkpr_routed} msat"
        in (finding["summary"])
    )


def test_a_hand_set_fee_is_an_external_change_the_fee_learner_sees(month) -> None:  # type: ignore[no-untyped-def]
    fleet, config, _, hand, _ = month
    node_id = fleet.node_ids["nexus-02"]
    found = rows(
        config,
        "select field, new_value from external_changes where node_id = ? and scid = ?"
        " order by field",
        node_id,
        hand,
    )
    assert ("fee_ppm", 777) in found
    assert ("htlc_max_msat", 400_000_000) in found
    # hiveops' own fee changes are never reported as external
    assert rows(config, "select count(*) from external_changes where field = 'fee_ppm'")[0][0] == 1
    with db.reader(load_settings(config).warehouse_path) as con:
        changes = db.fetch_frame(con, "fees.changes", node_id=node_id)
    external = changes.filter(changes["reason"] == "external")
    assert external["scid"].to_list() == [hand] and external["new_ppm"].to_list() == [777]
    # the fee learner's history of that channel has 777 ppm as a level in force since then
    now = datetime.fromtimestamp(fleet.now, tz=UTC)
    with db.reader(load_settings(config).warehouse_path) as con:
        forwards = db.fetch_frame(
            con, "fees.forwards", node_id=node_id, since=now - timedelta(days=30)
        )
    history = build_fee_history(hand, forwards, changes, now=now, current_fee_ppm=777)
    assert 777 in {level.fee_ppm for level in history.levels}
    assert next(lv for lv in history.levels if lv.fee_ppm == 777).hours == 24  # day 30 to 31
    settings = load_settings(config)
    finding = _finding(settings.warehouse_path, "external_changes", fleet.now)
    assert not finding["ok"] and finding["severity"] == "info"
    assert f"{hand} fee_ppm" in finding["summary"] and "-> 777" in finding["summary"]
    returns = _finding(settings.warehouse_path, "losing_channels", fleet.now)
    assert returns["measurable"], returns


def _finding(warehouse: Path, detector: str, at: float) -> dict:
    """The detector's verdict in the report generated at `at` (simulated unix time)."""
    with db.reader(warehouse) as con:
        row = con.execute(
            "select status, severity, summary, evidence from report_findings"
            " where detector = ? and generated_at = to_timestamp(?)",
            [detector, at],
        ).fetchone()
    assert row is not None, detector
    return {
        "ok": row[0] == "ok",
        "severity": row[1],
        "summary": row[2],
        "evidence": json.loads(row[3]) if isinstance(row[3], str) else row[3],
        "measurable": row[0] != "not_measurable",
    }


def test_an_executed_open_and_close_get_outcome_rows_at_7_and_30_days(month) -> None:  # type: ignore[no-untyped-def]
    _, config, _, _, (opened, closed) = month
    found = {
        (r[0], r[1], r[2]): r[3:]
        for r in rows(
            config,
            "select action_type, action_id, horizon_days, status, revenue_msat, cost_msat,"
            " freed_capital_msat, lost_revenue_msat, actual_benefit_msat, detail"
            " from action_outcomes",
        )
    }
    for horizon in (7, 30):
        status, _, cost, *_ = found[("channel_open", opened, horizon)]
        assert status == "measured" and cost > 0  # its funding fee, booked on the channel
        assert found[("channel_close", closed, horizon)][0] == "measured"
    _, _, close_fee, freed, lost, benefit, detail = found[("channel_close", closed, 30)]
    assert close_fee > 0 and freed > 0 and "freed" in detail
    # the idle channel routed nothing before its close: closing it lost nothing and cost its fee
    assert lost == 0 and benefit == -close_fee
    # the advisor's calibration now covers opens and closes
    types = {r[0] for r in rows(config, "select opportunity_type from advisor_calibration")}
    assert {"channel_open", "channel_close"} <= types
