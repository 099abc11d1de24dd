"""The advisor against the simulator: approvals resume a paused run, rejections are remembered."""

from __future__ import annotations

import argparse
import contextvars
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flows.advisor import advisor, advisor_execute
from flows.collect import collect
from hiveops import approvecli
from lnsim.simfleet import SimFleet
from models.advisor import AdvisorConfig
from models.settings import load_settings
from warehouse import db

HOUR_S = 3600
# Opens that pay for themselves on the audit fleet's thin first day (no on-chain or capital
# cost), every candidate that pays, an alert from the second rejection of one target.
CONFIG = AdvisorConfig(
    open_cost_sat=0,
    capital_cost_pct_per_year=0,
    max_open_candidates=50,
    rejection_alert_count=2,
    approval_poll_s=1,
)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("flows.advisor.advisor_config", lambda settings: CONFIG)
    monkeypatch.setattr("hiveops.approvecli.advisor_config", lambda settings: CONFIG)
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(24 * HOUR_S)
        yield fleet


def setup(fleet: SimFleet, tmp_path: Path, dry_run: bool = False) -> Path:
    path = fleet.write_config(tmp_path / "hiveops.toml", tmp_path / "hiveops.duckdb")
    if dry_run:
        path.write_text("dry_run = true\n" + path.read_text())
    collect(config_path=str(path), now=fleet.now)
    return path


def query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.reader(load_settings(path).warehouse_path) as con:
        return con.execute(sql, list(params)).fetchall()


def pending_opens(path: Path) -> list[tuple[str, str, str]]:
    return query(
        path,
        "SELECT decision_id, target, node_id FROM advisor_decisions "
        "WHERE opportunity_type = 'channel_open' AND state = 'pending_approval' "
        "ORDER BY decided_at",
    )


def node_name(fleet: SimFleet, node_id: str) -> str:
    return next(name for name, pk in fleet.node_ids.items() if pk == node_id)


def wait_until_paused(path: Path, decision_id: str, timeout_s: float = 30.0) -> str:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = query(
            path, "SELECT approval_run_id FROM advisor_decisions WHERE decision_id = ?", decision_id
        )
        if rows and rows[0][0]:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(rows[0][0])).state
            if state is not None and state.is_paused():
                return rows[0][0]
        time.sleep(0.3)
    raise AssertionError(f"advisor-execute for {decision_id} never paused")


def cli(argv: list[str]) -> int:
    """`hiveops approve|reject|approvals` as the parser registers them."""
    parser = argparse.ArgumentParser(prog="hiveops")
    approvecli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_every_decision_has_metrics_a_known_type_and_a_reason(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = setup(fleet, tmp_path)
    summary = advisor(config_path=str(path), now=fleet.now)
    assert summary["decisions"] > 0
    bad = query(
        path,
        "SELECT count(*) FILTER (WHERE snapshot_metrics IS NULL"
        "                        OR json_keys(snapshot_metrics) = []),"
        " count(*) FILTER (WHERE predicted_benefit_msat = 0"
        "                  AND NOT starts_with(benefit_reason, '0: ')),"
        " count(DISTINCT opportunity_type) FROM advisor_decisions",
    )[0]
    assert bad[:2] == (0, 0) and bad[2] >= 2
    beats = query(path, "SELECT node, status, decisions FROM heartbeats WHERE loop = 'advisor'")
    assert {b[0] for b in beats} == set(fleet.node_ids)
    assert all(b[1] == "ok" for b in beats) and sum(b[2] for b in beats) == summary["decisions"]


def test_approval_through_hiveops_approve_resumes_the_waiting_run_and_the_channel_opens(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = setup(fleet, tmp_path)
    advisor(config_path=str(path), now=fleet.now)
    decision_id, peer, node_id = pending_opens(path)[0]
    name = node_name(fleet, node_id)
    before = fleet.call_count(name, "fundchannel")
    db.release_all()
    outcome: dict[str, Any] = {}

    def execute() -> None:
        outcome["result"] = advisor_execute(
            decision_id, config_path=str(path), now=fleet.now, timeout_s=60, poll_interval_s=1
        )

    worker = threading.Thread(target=contextvars.copy_context().run, args=(execute,))
    worker.start()
    wait_until_paused(path, decision_id)
    assert fleet.call_count(name, "fundchannel") == before  # nothing happens before the answer
    assert approvecli.answer(decision_id[:10], approved=True, by="alice", config=path) == 0
    worker.join(timeout=60)
    assert outcome["result"]["state"] == "executed", outcome
    assert fleet.call_count(name, "fundchannel") == before + 1
    row = query(
        path,
        "SELECT state, answered_by, execution_result FROM advisor_decisions WHERE decision_id = ?",
        decision_id,
    )[0]
    assert row[:2] == ("executed", "alice") and peer in row[2]
    assert approvecli.answer(decision_id, approved=True, config=path) == 1  # answered already


def test_rejected_open_is_not_reproposed_in_its_cooldown_and_repeats_raise_an_alert(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = setup(fleet, tmp_path)
    advisor(config_path=str(path), now=fleet.now)
    decision_id, target, _ = pending_opens(path)[0]

    def reject(decision: str) -> None:
        argv = [
            "reject",
            decision,
            "--reason",
            "peer unreliable",
            "--config",
            str(path),
            "--now",
            str(fleet.now),
        ]
        assert cli(argv) == 0

    reject(decision_id)
    fleet.advance(2 * HOUR_S)
    advisor(config_path=str(path), now=fleet.now)
    proposed = query(path, "SELECT count(*) FROM advisor_decisions WHERE target = ?", target)
    assert proposed[0][0] == 1  # only the rejected one: held by its 24 h cooldown
    fleet.advance(24 * HOUR_S)
    collect(config_path=str(path), now=fleet.now)
    advisor(config_path=str(path), now=fleet.now)
    again = query(
        path,
        "SELECT decision_id, prior_rejections FROM advisor_decisions "
        "WHERE target = ? AND state = 'pending_approval'",
        target,
    )
    assert [r[1] for r in again] == [1]
    reject(again[0][0])
    cooldown = query(
        path,
        "SELECT max(cooldown_until) - max(answered_at) FROM advisor_decisions WHERE target = ?",
        target,
    )[0][0]
    assert cooldown.total_seconds() == 48 * HOUR_S
    advisor(config_path=str(path), now=fleet.now)
    advisor(config_path=str(path), now=fleet.now)
    alerts = query(path, "SELECT message FROM alerts WHERE kind = 'advisor_repeated_rejections'")
    assert len(alerts) == 1 and target in alerts[0][0] and "rejected 2 times" in alerts[0][0]


def test_approved_open_in_dry_run_is_recorded_and_never_funded(
    fleet: SimFleet, tmp_path: Path, prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = setup(fleet, tmp_path, dry_run=True)
    advisor(config_path=str(path), now=fleet.now)
    decision_id, _, node_id = pending_opens(path)[0]
    assert cli(["approvals", "list", "--config", str(path)]) == 0
    assert decision_id[:12] in capsys.readouterr().out
    assert cli(["reject", decision_id, "--reason", " ", "--config", str(path)]) == 2
    assert approvecli.answer(decision_id, approved=True, config=path, now=fleet.now) == 0
    summary = advisor(config_path=str(path), now=fleet.now)
    assert summary["executed"] and summary["executed"][0].startswith("dry_run: would fundchannel")
    assert fleet.call_count(node_name(fleet, node_id), "fundchannel") == 0
    state = query(path, "SELECT state FROM advisor_decisions WHERE decision_id = ?", decision_id)
    assert state == [("approved",)]


def test_linked_fee_outcomes_calibrate_the_next_predictions(warehouse_path: Path) -> None:
    """Decision → the fees loop's change → its measured outcome → a fitted factor (no Prefect:
    the tasks' functions against a real warehouse)."""
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from engine.advisor.predict import PRIOR_FACTOR, fit_calibration
    from models.advisor import OpportunityType
    from tasks.advisor import link_owned_actions, load_learning

    start = datetime(2026, 1, 20, tzinfo=UTC)
    decisions, changes, outcomes = [], [], []
    for i in range(12):
        at = start + timedelta(days=i)
        scid, change_id = f"{i}x1x0", f"change-{i}"
        decisions.append(
            {
                "decision_id": f"d{i}",
                "run_id": "r",
                "decided_at": at,
                "node_id": "n",
                "opportunity_type": "fee",
                "target": scid,
                "action": "setchannel",
                "action_params": '{"old_fee_ppm": 1000, "new_fee_ppm": 750}',
                "owner_loop": "fees",
                "snapshot_metrics": '{"fee_ppm": 1000}',
                "raw_estimate_msat": 10_000,
                "predicted_benefit_msat": 5_000,
                "confidence": 0.2,
                "calibration_factor": 0.5,
                "benefit_reason": "test",
                "mode": "auto",
                "state": "auto_applied",
                "expires_at": at + timedelta(days=2),
            }
        )
        changes.append(
            {
                "change_id": change_id,
                "node_id": "n",
                "scid": scid,
                "peer_id": "p",
                "changed_at": at + timedelta(hours=3),
                "old_base_fee_msat": 0,
                "old_fee_ppm": 1000,
                "new_base_fee_msat": 0,
                "new_fee_ppm": 750,
                "new_ppm": 750,
                "reason": "thompson",
                "predicted_benefit_msat": 0,
                "evaluation_window_s": 259_200,
                "status": "applied",
            }
        )
        outcomes.append(
            {
                "change_id": change_id,
                "window_s": 259_200,
                "node_id": "n",
                "scid": scid,
                "changed_at": at + timedelta(hours=3),
                "measured_at": at + timedelta(days=3),
                "status": "measured",
                "method": "did_unchanged",
                "trend": 1.0,
                "detail": "DiD",
                "control_scids": "",
                "actual_benefit_msat": 1_000,
            }
        )
    with db.writer(warehouse_path) as con:
        for table, rows in (
            ("advisor_decisions", decisions),
            ("fee_changes", changes),
            ("fee_outcomes", outcomes),
        ):
            con.register("rows", pl.DataFrame(rows).to_arrow())
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows")
    assert link_owned_actions.fn(warehouse_path) == {"fee_changes": 12, "rebalance_attempts": 0}
    learning = load_learning.fn(warehouse_path, start + timedelta(days=30))
    assert learning.samples.height == 12
    fee = fit_calibration(learning.samples, CONFIG)[OpportunityType.FEE]
    assert fee.samples == 12 and 0.1 <= fee.factor < PRIOR_FACTOR  # actual is 10% of raw
    early = load_learning.fn(warehouse_path, start + timedelta(days=4))
    assert early.samples.height == 2  # only outcomes measured by `now` teach


def test_answer_to_a_fleet_proposal_reaches_the_fleet_loop(warehouse_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tasks.advisor import record_answer

    at = datetime(2026, 1, 21, tzinfo=UTC)
    with db.writer(warehouse_path) as con:
        con.execute(
            "INSERT INTO fleet_assistance (assistance_id, run_id, node_id, member_name, "
            "helper_node_id, kind, amount_msat, max_fee_ppm, reason, requested_at, state) "
            "VALUES ('a1', 'r', 'member', 'nexus-03', 'helper', 'channel_open_proposal', "
            "1000000000, 0, 'critical member', ?, 'open')",
            [at],
        )
        con.execute(
            "INSERT INTO advisor_decisions (decision_id, run_id, decided_at, node_id, "
            "opportunity_type, target, action, action_params, owner_loop, snapshot_metrics, "
            "raw_estimate_msat, predicted_benefit_msat, confidence, calibration_factor, "
            "benefit_reason, mode, state, expires_at) VALUES ('fa-1', 'r', ?, 'helper', "
            "'fleet_assistance', 'member', 'fundchannel', '{}', 'advisor', "
            "'{\"assistance_id\": \"a1\"}', 0, 0, 0.2, 0.5, '0: test', 'approval', "
            "'pending_approval', ?)",
            [at, at + timedelta(days=2)],
        )
    assert record_answer(
        warehouse_path,
        "fa-1",
        approved=False,
        reason="member recovers alone",
        by="bob",
        at=at,
        config=CONFIG,
    )
    with db.writer(warehouse_path) as con:
        row = con.execute(
            "SELECT state, decision_note FROM fleet_assistance WHERE assistance_id = 'a1'"
        ).fetchall()[0]
    assert row[0] == "rejected" and "member recovers alone" in row[1]
