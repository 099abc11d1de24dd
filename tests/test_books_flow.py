"""A simulated month of collect and rebalance runs: the warehouse's P&L agrees with the node's
bookkeeper to the msat, a discrepancy is a report finding with both numbers, and fee changes
made outside hiveops are detected, learned from and reported."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyln.client import LightningRpc

from flows.collect import collect
from flows.rebalance import rebalance
from flows.report import report
from models.settings import load_settings
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
        hand = rpc.listpeerchannels()["channels"][0]["short_channel_id"]
        collect(config_path=str(config), now=fleet.now)
        for step in range(MONTH_DAYS // STEP_DAYS):
            fleet.advance(STEP_DAYS * DAY_S)
            if step == 1:  # an operator's `lightning-cli setchannel`, between two collects
                rpc.setchannel(hand, feebase=0, feeppm=777, htlcmax=400_000_000)
            collect(config_path=str(config), now=fleet.now)
            rebalance(config_path=str(config), now=fleet.now)
        fleet.advance(DAY_S)
        collect(config_path=str(config), now=fleet.now)
        rebalance(config_path=str(config), now=fleet.now)  # reconciles the last attempts
        yield fleet, config, rpc, hand


def rows(config: Path, query: str, *params: object) -> list[tuple]:
    with db.reader(load_settings(config).warehouse_path) as con:
        return con.execute(query, list(params)).fetchall()


def day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def test_ledger_matches_bookkeeper_to_the_msat(month) -> None:  # type: ignore[no-untyped-def]
    fleet, config, rpc, _ = month
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
    fleet, config, _, _ = month
    settings = load_settings(config)
    report(config_path=str(config), now=fleet.now)
    finding = _finding(settings.warehouse_path, "books_mismatch")
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
    finding = _finding(settings.warehouse_path, "books_mismatch")
    assert not finding["ok"] and finding["severity"] == "warning"
    assert (
        f"forwards {forwards_fee} msat vs bookkeeper routed {bkpr_routed} msat"
        in (finding["summary"])
    )


def test_a_hand_set_fee_is_an_external_change_the_fee_learner_sees(month) -> None:  # type: ignore[no-untyped-def]
    fleet, config, _, hand = month
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
    settings = load_settings(config)
    report(config_path=str(config), now=fleet.now + 2)
    finding = _finding(settings.warehouse_path, "external_changes")
    assert not finding["ok"] or "no fee" in finding["summary"]  # within the report's window?
    returns = _finding(settings.warehouse_path, "losing_channels")
    assert returns["measurable"], returns


def _finding(warehouse: Path, detector: str) -> dict:
    with db.reader(warehouse) as con:
        row = con.execute(
            "select status, severity, summary, evidence from report_findings"
            " where detector = ? order by generated_at desc limit 1",
            [detector],
        ).fetchone()
    assert row is not None, detector
    return {
        "ok": row[0] == "ok",
        "severity": row[1],
        "summary": row[2],
        "evidence": json.loads(row[3]) if isinstance(row[3], str) else row[3],
        "measurable": row[0] != "not_measurable",
    }
