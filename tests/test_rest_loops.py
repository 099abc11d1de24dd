"""Every loop against the simulator with all members reached over clnrest, each run with the
narrowest rune of its mode: a loop that called a method outside its mode's list would be
refused by the node (and the called methods are checked against the list as well)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flows.advisor import advisor
from flows.collect import collect
from flows.fees import fees
from flows.fleet import fleet as fleet_loop
from flows.outcomes import outcomes
from flows.rebalance import rebalance
from flows.report import report
from hiveops import approvecli
from lnsim.simfleet import SimFleet
from models.advisor import AdvisorConfig
from models.runes import Mode, allowed_methods
from models.settings import load_settings
from warehouse import db

HOUR_S = 3600
ADVISOR = AdvisorConfig(
    open_cost_sat=0, capital_cost_pct_per_year=0, max_open_candidates=50, approval_poll_s=1
)


@pytest.fixture
def sim(tmp_path: Path):  # type: ignore[no-untyped-def]
    with SimFleet("audit", workdir=tmp_path / "sim", rest=True) as sim:
        sim.advance(24 * HOUR_S)
        yield sim


def rest_config(
    sim: SimFleet, tmp_path: Path, mode: Mode, advisor_exec: bool = False, extra: str = ""
) -> Path:
    path = sim.write_config(
        tmp_path / f"hiveops-{mode}{'-exec' if advisor_exec else ''}.toml",
        tmp_path / "hiveops.duckdb",
        rest_members=list(sim.node_ids),
        rune_mode=mode,
        advisor_exec=advisor_exec,
    )
    path.write_text(path.read_text().replace("[sim]", extra + "\n[sim]", 1))
    assert "rpc_socket" not in path.read_text()
    return path


def calls(sim: SimFleet) -> Counter[str]:
    total: Counter[str] = Counter()
    for server in sim.servers.values():
        total.update(server.calls)
    return total


def called_during(sim: SimFleet, run: Any) -> set[str]:
    before = calls(sim)
    run()
    return {m for m, n in (calls(sim) - before).items() if n > 0}


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    db.release_all()
    with db.reader(load_settings(path).warehouse_path) as con:
        return con.execute(sql, list(params)).fetchall()


def test_read_loops_collect_report_and_outcomes_over_rest_with_a_read_rune(
    sim: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = rest_config(sim, tmp_path, "read")
    used = called_during(sim, lambda: collect(config_path=str(path), now=sim.now))
    sim.advance(6 * HOUR_S)
    used |= called_during(sim, lambda: collect(config_path=str(path), now=sim.now))
    used |= called_during(sim, lambda: outcomes(config_path=str(path), now=sim.now))
    used |= called_during(sim, lambda: report(config_path=str(path), now=sim.now))
    assert used <= set(allowed_methods("read")), used - set(allowed_methods("read"))
    assert {"getinfo", "listpeerchannels", "listforwards"} <= used
    total = sum(sim.forward_count(n) for n in sim.node_ids)
    assert total > 0 and rows(path, "SELECT count(*) FROM forwards")[0][0] == total
    assert rows(path, "SELECT count(*) FROM heartbeats WHERE status <> 'ok'")[0][0] == 0


def test_fees_over_rest_apply_changes_with_an_act_rune(
    sim: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = rest_config(sim, tmp_path, "act", extra="[fees]\nmin_fee_ppm = 25\n")
    used: set[str] = set()
    for _ in range(3):
        used |= called_during(sim, lambda: collect(config_path=str(path), now=sim.now))
        used |= called_during(sim, lambda: fees(config_path=str(path), now=sim.now))
        sim.advance(6 * HOUR_S)
    assert used <= set(allowed_methods("act")) and "setchannel" in used
    applied, failed = rows(
        path,
        "SELECT count(*) FILTER (WHERE status = 'applied'), "
        "count(*) FILTER (WHERE status <> 'applied') FROM fee_changes",
    )[0]
    assert applied > 0 and failed == 0


def test_fees_with_a_read_rune_fail_at_once_naming_setchannel_and_the_rune_command(
    sim: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = rest_config(sim, tmp_path, "read", extra="[fees]\nmin_fee_ppm = 25\n")
    collect(config_path=str(path), now=sim.now)
    with pytest.raises(Exception, match="does not allow setchannel"):
        fees(config_path=str(path), now=sim.now)
    failed = rows(path, "SELECT node_id, error FROM fee_changes WHERE status = 'failed'")
    told = [n for n, e in failed if "hiveops rune --mode act" in e]
    # per node one setchannel reached it and its rune refused it; the rest were not sent
    assert failed and sorted(told) == sorted({n for n, _ in failed})
    assert all("not attempted" in e for _, e in failed if "hiveops rune" not in e)
    assert sim.call_count("nexus-01", "setchannel") == 0
    # nothing lost: every change the loop decided has a row that says why it did not happen
    assert rows(path, "SELECT count(*) FROM fee_changes WHERE status = 'pending'")[0][0] == 0


def test_fleet_and_rebalance_over_rest_start_the_assistance_pull_with_an_act_rune(
    sim: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    path = rest_config(sim, tmp_path, "act")
    used = called_during(sim, lambda: collect(config_path=str(path), now=sim.now))
    used |= called_during(sim, lambda: fleet_loop(config_path=str(path), now=sim.now))
    used |= called_during(sim, lambda: rebalance(config_path=str(path), now=sim.now))
    assert used <= set(allowed_methods("act")), used - set(allowed_methods("act"))
    assert rows(path, "SELECT count(DISTINCT node_id) FROM fleet_member_health")[0][0] == 3
    assert sum(sim.call_count(n, "sling-once") for n in sim.node_ids) >= 1
    states = {r[0] for r in rows(path, "SELECT state FROM rebalance_attempts")}
    assert "running" in states, states


def test_advisor_over_rest_scans_with_a_read_rune_and_opens_with_an_exec_rune(
    sim: SimFleet, tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flows.advisor.advisor_config", lambda settings: ADVISOR)
    read = rest_config(sim, tmp_path, "read")
    collect(config_path=str(read), now=sim.now)
    used = called_during(sim, lambda: advisor(config_path=str(read), now=sim.now))
    assert used <= set(allowed_methods("read")), used
    pending = rows(
        read,
        "SELECT decision_id, node_id FROM advisor_decisions "
        "WHERE opportunity_type = 'channel_open' AND state = 'pending_approval' LIMIT 2",
    )
    assert len(pending) == 2
    names = {pk: n for n, pk in sim.node_ids.items()}
    funded_before = {n: sim.call_count(n, "fundchannel") for n in sim.node_ids}
    (refused_id, _), (opened_id, opened_node) = pending
    assert approvecli.answer(refused_id, approved=True, by="ops", config=read, now=sim.now) == 0
    # the read rune cannot open: the execution fails at once and says which rune can
    advisor(config_path=str(read), now=sim.now)
    sql = "SELECT state, execution_result FROM advisor_decisions WHERE decision_id = ?"
    state, result = rows(read, sql, refused_id)[0]
    assert state == "approved" and "hiveops rune --mode act --advisor-exec" in result
    assert {n: sim.call_count(n, "fundchannel") for n in sim.node_ids} == funded_before
    exec_config = rest_config(sim, tmp_path, "act", advisor_exec=True)
    assert approvecli.answer(opened_id, approved=True, by="ops", config=exec_config) == 0
    used = called_during(sim, lambda: advisor(config_path=str(exec_config), now=sim.now))
    assert used <= set(allowed_methods("act", advisor_exec=True))
    name = names[opened_node]
    assert sim.call_count(name, "fundchannel") == funded_before[name] + 1
    assert rows(exec_config, sql, opened_id)[0][0] == "executed"


def test_a_rest_member_with_a_wrong_rune_fails_alone_and_the_others_collect(
    sim: SimFleet, tmp_path: Path, prefect_harness: None
) -> None:
    from flows.common import LoopFailed

    path = sim.write_config(
        tmp_path / "mixed.toml", tmp_path / "hiveops.duckdb", rest_members=["nexus-01"]
    )
    wrong = sim.create_rune("nexus-02", [])  # a rune, but another node's
    sim.write_rune_file("nexus-01", wrong)
    with pytest.raises(LoopFailed, match="nexus-01"):
        collect(config_path=str(path), now=sim.now)
    beats = dict(rows(path, "SELECT node, status FROM heartbeats WHERE loop = 'collect'"))
    assert beats == {"nexus-01": "failed", "nexus-02": "ok", "nexus-03": "ok"}
    snapshots = rows(path, "SELECT count(DISTINCT node_id) FROM node_snapshots")[0][0]
    assert snapshots == 2
    (message,) = rows(path, "SELECT message FROM alerts WHERE node = 'nexus-01'")[0]
    assert "not this node's" in message and "hiveops rune --mode read" in message
    assert wrong not in message and wrong[:24] not in repr(rows(path, "SELECT * FROM heartbeats"))
