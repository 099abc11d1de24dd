"""Each audit failure class, injected where it originates, fires its report detector.

One simulated audit fleet runs the loops once (collect, fleet, fees, rebalance, advisor as real
Prefect runs); each test works on a copy of that warehouse, injects one failure (in the node,
the config, or, for writer bugs only, the warehouse), runs the real report flow and reads its
finding and alert row. Every test also judges a healthy control (the same warehouse before or
without the fault) through the same detectors, so a detector that always fires fails its test.
Tests that touch the shared simulator undo their fault; the simulated clock only moves forward.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyln.client import LightningRpc

from engine.report import run_detectors
from flows.advisor import advisor
from flows.collect import collect
from flows.common import LoopFailed, resolve_now
from flows.fees import fees
from flows.fleet import fleet as fleet_loop
from flows.outcomes import outcomes
from flows.rebalance import rebalance
from flows.report import report
from hiveops import approvecli
from lnsim.simfleet import SimFleet
from models.report import Finding, ReportConfig, report_config_of
from models.settings import load_settings
from tasks.report import load_report_inputs
from warehouse import db

HOUR_S = 3600
DAY_S = 86_400
BASE_LOOPS = ["collect", "fleet", "fees", "rebalance", "advisor"]
# Loops the base ran are fresh for a day; rpc fails fast; the advisor proposes every paying open
# (pending approvals to answer).
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "rpc": {"retries": 1, "backoff_base_s": 0.01, "timeout_s": 5},
    "orchestration": {
        "loops": BASE_LOOPS,
        "intervals_s": {loop: DAY_S // 2 for loop in BASE_LOOPS},
    },
    "advisor": {"open_cost_sat": 0, "capital_cost_pct_per_year": 0, "max_open_candidates": 50},
}


@dataclass
class Base:
    fleet: SimFleet
    at: int  # the simulated time the base loops ran
    warehouse: Path  # a closed copy of the warehouse right after them


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def write_config(
    fleet: SimFleet, folder: Path, overrides: dict[str, dict[str, Any]] | None = None
) -> Path:
    """The simulator's config plus BASE_CONFIG, with `overrides` merged per section."""
    sections = {name: dict(keys) for name, keys in BASE_CONFIG.items()}
    for name, keys in (overrides or {}).items():
        section = sections.setdefault(name, {})
        for key, value in keys.items():
            merged = isinstance(value, dict) and isinstance(section.get(key), dict)
            section[key] = {**section[key], **value} if merged else value
    path = fleet.write_config(folder / "hiveops.toml", folder / "hiveops.duckdb")
    with path.open("a") as f:
        for name, keys in sections.items():
            f.write(f"\n[{name}]\n")
            f.writelines(f"{k} = {_toml(v)}\n" for k, v in keys.items())
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Base]:
    folder = tmp_path_factory.mktemp("base")
    with SimFleet("audit", workdir=folder / "sim") as fleet:
        fleet.advance(DAY_S)
        path = str(write_config(fleet, folder))
        collect(config_path=path, now=fleet.now)
        fleet_loop(config_path=path, now=fleet.now)
        fees(config_path=path, now=fleet.now)
        rebalance(config_path=path, now=fleet.now)
        advisor(config_path=path, now=fleet.now)
        db.release_all()
        saved = folder / "base.duckdb"
        shutil.copy(folder / "hiveops.duckdb", saved)
        yield Base(fleet, fleet.now, saved)


@pytest.fixture
def sim(base: Base) -> Iterator[SimFleet]:
    """The shared simulator; whatever a test broke in it is repaired afterwards."""
    yield base.fleet
    base.fleet.faults.clear()
    with base.fleet.net.lock:
        for node in base.fleet.net.nodes.values():
            if not node.online:
                base.fleet.market.set_node_online(node.pubkey, True)
    for name, server in base.fleet.servers.items():
        if server._sock is None:
            base.fleet.start_node(name)


def copy_base(base: Base, folder: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """A config whose warehouse is a fresh copy of the base warehouse."""
    db.release_all()
    shutil.copy(base.warehouse, folder / "hiveops.duckdb")
    return write_config(base.fleet, folder, overrides)


def judge(path: Path, now: float) -> dict[str, Finding]:
    """The healthy control: the report's own reads and detectors, without a flow run."""
    settings = load_settings(path)
    config = report_config_of(settings)
    inputs = load_report_inputs.fn(settings, resolve_now(now), config)
    db.release_all()
    return {f.detector: f for f in run_detectors(inputs, config)}


def assert_quiet(path: Path, now: float, detector: str) -> Finding:
    """The control must look and find nothing: `ok`, not merely unmeasurable."""
    finding = judge(path, now)[detector]
    assert finding.status == "ok", finding
    return finding


def run_report(path: Path, now: float, detector: str) -> str:
    """Run the report flow; the detector must be recorded fired with its alert. Its summary."""
    result = report(config_path=str(path), now=now)
    db.release_all()
    assert detector in result["fired"], result
    with db.reader(load_settings(path).warehouse_path) as con:
        rows = con.execute(
            "SELECT f.status, f.summary, a.kind, a.message FROM report_findings f "
            "LEFT JOIN alerts a USING (alert_id) WHERE f.detector = ? "
            "ORDER BY f.generated_at DESC LIMIT 1",
            [detector],
        ).fetchall()
    db.release_all()
    [(status, summary, kind, message)] = rows
    assert (status, kind, message) == ("fired", f"report_{detector}", summary)
    return str(summary)


def query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    db.release_all()
    with db.reader(load_settings(path).warehouse_path) as con:
        rows = con.execute(sql, list(params)).fetchall()
    db.release_all()
    return rows


def execute(path: Path, sql: str, *params: Any) -> None:
    db.release_all()
    with db.writer(load_settings(path).warehouse_path) as con:
        con.execute(sql, list(params))
    db.release_all()


# -- failures from the node -------------------------------------------------------------------


def test_loop_stale_fires_when_a_node_stops_and_its_collect_falls_silent(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    path = copy_base(base, tmp_path, {"orchestration": {"intervals_s": {"collect": 600}}})
    assert_quiet(path, base.at, "loop_stale")
    sim.stop_node("nexus-03")
    sim.advance(HOUR_S)
    with pytest.raises(LoopFailed, match="nexus-03"):
        collect(config_path=str(path), now=sim.now)
    summary = run_report(path, sim.now, "loop_stale")
    assert "collect on nexus-03" in summary
    assert "on nexus-01" not in summary and "on nexus-02" not in summary


def test_zero_snapshot_fires_when_a_node_reports_zero_balances(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    path = copy_base(base, tmp_path)
    assert_quiet(path, base.at, "zero_snapshot")
    sim.faults.set("nexus-02", "listpeerchannels", zero_balances=True)
    with pytest.raises(LoopFailed, match="nexus-02"):
        collect(config_path=str(path), now=sim.now)
    summary = run_report(path, sim.now, "zero_snapshot")
    assert "1 snapshot(s) refused" in summary and "nexus-02 ×1" in summary


def test_retries_exhausted_fires_when_a_node_keeps_failing_an_rpc(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    path = copy_base(base, tmp_path)
    assert_quiet(path, base.at, "retries_exhausted")
    sim.faults.set("nexus-01", "listforwards", error_rate=1.0)  # -5: retried, then given up
    with pytest.raises(LoopFailed, match="nexus-01"):
        collect(config_path=str(path), now=sim.now)
    summary = run_report(path, sim.now, "retries_exhausted")
    assert "collect on nexus-01: 1 of" in summary
    assert "on nexus-02" not in summary and "on nexus-03" not in summary


def test_fleet_fee_nonzero_fires_when_a_fleet_channel_gets_a_fee_on_the_node(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    path = copy_base(base, tmp_path)
    assert_quiet(path, base.at, "fleet_fee_nonzero")
    rpc = LightningRpc(str(sim.socket_paths["nexus-01"]))
    members = set(sim.node_ids.values())
    channel = next(c for c in rpc.listpeerchannels()["channels"] if c["peer_id"] in members)
    scid = channel["short_channel_id"]
    rpc.setchannel(scid, feebase=1000, feeppm=25)
    # Run first, the simulator is still at the base's instant, whose snapshot a collect there
    # would keep; one second on the loops' clock (not the simulator's: a sling step would run).
    now = max(sim.now, base.at + 1)
    try:
        collect(config_path=str(path), now=now)
        summary = run_report(path, now, "fleet_fee_nonzero")
    finally:
        rpc.setchannel(scid, feebase=0, feeppm=0)
    assert f"{scid} on nexus-01: 1000 msat + 25 ppm" in summary
    assert summary.startswith("1 of ")


def test_one_sided_channels_fires_when_payments_fill_one_more_channel(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    """The audit fleet sits just under the bound (4 of 17 external channels one-sided);
    customers paying through nexus-02 fill as many channels to 98 % local as it takes to cross
    it (one, from the base). How many it takes is counted in the simulator itself, so the test
    does not hinge on what the shared simulator did before it, and a collect into a fresh
    warehouse must find exactly that many. The payments are paid back after, and the clock
    does not move, so the tests after it find the fleet as it was."""
    (tmp_path / "control").mkdir()
    assert_quiet(copy_base(base, tmp_path / "control"), base.at, "one_sided_channels")
    config = ReportConfig()
    with sim.net.lock:
        shares = [
            c.local_msat(sim.node_ids[name]) / c.capacity_msat
            for name in sim.node_ids
            for c in sim.external_channels(name)
        ]
    one_sided = sum(
        not config.one_sided_low_share <= s <= config.one_sided_high_share for s in shares
    )
    need = math.floor(config.one_sided_max_fraction * len(shares)) + 1 - one_sided
    assert need >= 1
    path = write_config(sim, tmp_path)
    filled: list[tuple[str, str, int]] = []
    try:
        _fill(sim, need, filled)
        collect(config_path=str(path), now=sim.now)
    finally:
        for fill_scid, source_scid, amount_msat in reversed(filled):
            sim.route_payments("nexus-02", source_scid, fill_scid, amount_msat, parts=4)
    summary = run_report(path, sim.now, "one_sided_channels")
    assert summary.startswith(f"{one_sided + need} of {len(shares)}")
    evidence = judge(path, sim.now)["one_sided_channels"].evidence
    assert {f for f, _, _ in filled} <= {c["scid"] for c in evidence["full"]}


def _fill(sim: SimFleet, need: int, filled: list[tuple[str, str, int]]) -> None:
    """Fill `need` of nexus-02's mid-balanced external channels to 98 % local from its fullest
    one; each fill is appended as (filled, source, amount settled)."""
    me = sim.node_ids["nexus-02"]
    for _ in range(need):
        with sim.net.lock:
            external = sim.external_channels("nexus-02")
            middle = [c for c in external if 0.3 < c.local_msat(me) / c.capacity_msat < 0.8]
            fill = min(middle, key=lambda c: c.capacity_msat - c.local_msat(me))
            source = max(external, key=lambda c: c.local_msat(me))
            amount_msat = int(fill.capacity_msat * 0.98) - fill.local_msat(me)
        assert source.local_msat(me) - amount_msat > 0.3 * source.capacity_msat
        settled = sim.route_payments("nexus-02", fill.scid, source.scid, amount_msat, parts=4)
        filled.append((fill.scid, source.scid, amount_msat * settled // 4))
        assert settled == 4


def test_rebalances_failing_fires_when_the_sink_peer_vanishes_mid_job(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    """The base run started a fleet-assistance pull into nexus-03's depleted channel; its peer
    goes offline after the job started, so every route attempt of sling fails. The audit fleet
    earns a few sat a day, so one pull a day fits the budget: the thresholds judge the last
    attempt (`rebalance_recent_attempts` = `rebalance_min_attempts` = 1)."""
    thresholds = {"report": {"rebalance_recent_attempts": 1, "rebalance_min_attempts": 1}}
    path = copy_base(base, tmp_path, thresholds)
    [(dest_scid, node_id)] = query(
        path, "SELECT dest_scid, node_id FROM rebalance_attempts WHERE state = 'running'"
    )
    assert node_id == sim.node_ids["nexus-03"]
    with sim.net.lock:
        peer = sim.net.channels[dest_scid].other(node_id)
    sim.set_peer_online(peer, False)
    sim.advance(HOUR_S)
    rebalance(config_path=str(path), now=sim.now)
    summary = run_report(path, sim.now, "rebalances_failing")
    assert "nexus-03: last 1 attempts all failed (1 failed" in summary
    assert "PeerNotReady" in summary


# -- failures from the config -----------------------------------------------------------------


def test_risky_config_fires_on_the_audited_rebalance_settings(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    path = copy_base(base, tmp_path)
    assert_quiet(path, base.at, "risky_config")
    path = write_config(sim, tmp_path, {"rebalance": {"ev_gate": False, "chunk_sat": 2_000_000}})
    summary = run_report(path, base.at, "risky_config")
    assert summary.startswith("2 risky configuration value(s)")
    assert "rebalance.chunk_sat=2000000" in summary and "rebalance.ev_gate=false" in summary


def test_critical_member_unassisted_fires_when_assistance_is_configured_away(
    base: Base, tmp_path: Path
) -> None:
    """nexus-03 is critical in the audit fleet. With the base config it gets a pull and a
    channel-open proposal; with a zero assistance fee budget and opens larger than any
    member's funds nothing can help it, and after the grace period the detector says so."""
    grace = {"report": {"assistance_grace_s": HOUR_S}}
    control = copy_base(base, folder(tmp_path / "control"), grace)
    assert_quiet(control, base.at + 2 * HOUR_S, "critical_member_unassisted")

    disabled = {
        **grace,
        "fleet": {
            "assist_daily_fee_budget_sat": 0,
            "open_channel_sat": 100_000_000,
            "open_min_channel_sat": 100_000_000,
        },
    }
    with SimFleet("audit", workdir=tmp_path / "sim") as fleet:
        fleet.advance(DAY_S)
        path = write_config(fleet, folder(tmp_path / "faulty"), disabled)
        collect(config_path=str(path), now=fleet.now)
        fleet_loop(config_path=str(path), now=fleet.now)
        fleet.advance(2 * HOUR_S)
        summary = run_report(path, fleet.now, "critical_member_unassisted")
    assert summary.startswith("nexus-03 critical (health ")
    assert "none helped (could_not_help ×2)" in summary


def folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- failures from the people answering -------------------------------------------------------


def test_rejection_loop_fires_after_five_rejections_in_a_row(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    path = copy_base(base, tmp_path)
    pending = [
        r[0]
        for r in query(
            path,
            "SELECT decision_id FROM advisor_decisions WHERE state = 'pending_approval' "
            "ORDER BY decided_at, decision_id LIMIT 6",
        )
    ]
    assert len(pending) == 6
    at = base.at + 60

    def answer(decision_id: str, approved: bool) -> None:
        nonlocal at
        at += 60
        reason = "" if approved else "not now"
        code = approvecli.answer(
            decision_id, approved=approved, reason=reason, by="test", config=path, now=at
        )
        assert code == 0

    answer(pending[0], True)
    for decision_id in pending[1:5]:
        answer(decision_id, False)
    control = assert_quiet(path, at, "rejection_loop")
    assert control.evidence["trailing_streak"] == 4
    answer(pending[5], False)
    summary = run_report(path, at, "rejection_loop")
    assert summary.startswith("the last 5 answered proposals were all rejected or expired")
    assert "channel_open ×5" in summary


# -- failures of the fleet layer --------------------------------------------------------------


def test_zero_contribution_fires_for_a_member_down_its_whole_window(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    window = {"contribution_window_s": 3 * HOUR_S, "snapshot_max_age_s": 2 * HOUR_S}
    path = copy_base(base, tmp_path, {"fleet": window})
    assert_quiet(path, base.at, "zero_contribution")
    sim.stop_node("nexus-01")
    sim.advance(4 * HOUR_S)
    with pytest.raises(LoopFailed, match="nexus-01"):
        collect(config_path=str(path), now=sim.now)
    with pytest.raises(LoopFailed, match="nexus-01"):
        fleet_loop(config_path=str(path), now=sim.now)
    summary = run_report(path, sim.now, "zero_contribution")
    assert summary == "1 member(s) at 0% uptime over their window: nexus-01"


# -- warehouse-writer bugs (our writers cannot produce these) ---------------------------------


def test_decisions_without_prediction_fires_on_decisions_written_without_inputs(
    base: Base, tmp_path: Path
) -> None:
    """The audited advisor stored `{}` as snapshot_metrics; ours always records its inputs
    (tests/test_advisor_flow.py), so the bug is injected as rows that writer left behind."""
    path = copy_base(base, tmp_path)
    control = assert_quiet(path, base.at, "decisions_without_prediction")
    old = [
        r[0]
        for r in query(
            path,
            "SELECT decision_id FROM advisor_decisions WHERE opportunity_type = 'fee' "
            "ORDER BY decision_id LIMIT 3",
        )
    ]
    assert len(old) == 3
    execute(
        path,
        "UPDATE advisor_decisions SET snapshot_metrics = '{}' WHERE decision_id IN (?, ?, ?)",
        *old,
    )
    summary = run_report(path, base.at, "decisions_without_prediction")
    total = control.evidence["decisions"]
    assert summary == f"3 of {total} decisions have no snapshot_metrics"


def test_zero_budget_rows_fires_on_a_ledger_that_books_nothing_earned(
    base: Base, tmp_path: Path
) -> None:
    """The audited budget table read 0 earned on days forwards earned fees; ours rewrites each
    day from forwards and attempts (refresh_ledger), so the old writer's rows are injected."""
    path = copy_base(base, tmp_path)
    assert_quiet(path, base.at, "zero_budget_rows")
    earning = query(
        path,
        "SELECT b.node_id, b.day FROM budget_ledger b JOIN daily_revenue r USING (node_id, day) "
        "WHERE r.fees_msat > 0",
    )
    assert earning
    node_id, day = earning[0]
    execute(
        path, "UPDATE budget_ledger SET earned_msat = 0 WHERE node_id = ? AND day = ?", node_id, day
    )
    summary = run_report(path, base.at, "zero_budget_rows")
    assert summary.startswith("1 day(s) show 0 earned while settled forwards earned ")
    name = next(n for n, pk in base.fleet.node_ids.items() if pk == node_id)
    evidence = judge(path, base.at)["zero_budget_rows"].evidence
    assert evidence["earned_zero_while_forwards_earned"][0]["node"] == name


# -- failures that need days of simulated time (last: they move the shared clock most) -------


def test_cold_start_stuck_fires_when_the_fees_loop_only_decides(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    """With dry_run the fees loop records its decisions and never applies one: the audit's
    channels that never forwarded and never got a new fee. The same day with fees applied is
    the control."""
    days = {"report": {"cold_start_days": 1}}
    faulty = copy_base(base, folder(tmp_path / "faulty"), days)
    faulty.write_text("dry_run = true\n" + faulty.read_text())
    control = copy_base(base, folder(tmp_path / "control"), days)
    sim.advance(DAY_S + HOUR_S)
    collect(config_path=str(faulty), now=sim.now)
    fees(config_path=str(faulty), now=sim.now)
    summary = run_report(faulty, sim.now, "cold_start_stuck")
    collect(config_path=str(control), now=sim.now)
    fees(config_path=str(control), now=sim.now)
    assert_quiet(control, sim.now, "cold_start_stuck")
    assert " on nexus-02" in summary


def test_zero_fee_outcomes_fires_on_outcomes_booked_as_zero(
    base: Base, sim: SimFleet, tmp_path: Path
) -> None:
    """The audited outcome writer stored 0 as the default for every fee change (557 rows of
    0); ours stores None unless measured, so that writer's rows are injected. Control: the real
    outcomes loop on the base's fee changes once their 72 h windows have closed."""
    path = copy_base(base, tmp_path)
    changes = query(path, "SELECT count(*) FROM fee_changes WHERE status = 'applied'")[0][0]
    assert changes >= 3
    sim.advance(max(0, base.at + 3 * DAY_S + HOUR_S - sim.now))
    collect(config_path=str(path), now=sim.now)
    outcomes(config_path=str(path), now=sim.now)
    control = assert_quiet(path, sim.now, "zero_fee_outcomes")
    assert control.evidence["outcomes"] == changes
    execute(
        path,
        "UPDATE fee_outcomes SET status = 'measured', actual_benefit_msat = 0, "
        "method = coalesce(method, 'did_unchanged')",
    )
    summary = run_report(path, sim.now, "zero_fee_outcomes")
    assert summary == f"all {changes} measured fee-change outcomes show exactly 0 benefit"
