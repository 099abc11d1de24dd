"""`hiveops demo`: the simulated audit fleet, run for N simulated days through the real loops.

Each loop runs as a real Prefect flow run at its cadence in simulated time. Flow heartbeats (the
Prefect kind, which detect crashed runs in production) are switched off for the demo only: they
add a fixed ~1 s join per flow run and the demo makes hundreds of runs.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.advisor import advisor
from flows.collect import collect
from flows.common import LoopFailed
from flows.fees import fees
from flows.fleet import fleet
from flows.outcomes import outcomes
from flows.rebalance import rebalance
from flows.report import report
from flows.watchdog import watchdog
from hiveops.progress import Progress
from models.advisor import AdvisorConfig, advisor_config
from models.settings import load_settings
from tasks.advisor import calibration_report
from warehouse import db

HOUR_S = 3600
AUDIT_NET_SAT = -2_234  # the audited fleet's P&L over its three weeks
LOOPS = {
    "collect": collect,
    "fleet": fleet,
    "fees": fees,
    "rebalance": rebalance,
    "outcomes": outcomes,
    "advisor": advisor,
    "watchdog": watchdog,
    "report": report,
}


@dataclass(frozen=True)
class Cadence:
    loop: str
    every_s: int


# Production cadences are in prefect.yaml; the demo scales them to keep 21 days short.
# Order matters within a step: collect first (every loop reads its snapshot), report last (it
# judges the others).
DEMO_CADENCES = (
    Cadence("collect", 8 * HOUR_S),
    Cadence("fleet", 24 * HOUR_S),
    Cadence("fees", 24 * HOUR_S),
    Cadence("rebalance", 8 * HOUR_S),
    Cadence("outcomes", 24 * HOUR_S),
    Cadence("advisor", 24 * HOUR_S),
    Cadence("watchdog", 24 * HOUR_S),
    Cadence("report", 24 * HOUR_S),
)


def _orchestration_toml() -> str:
    """The demo's cadences as the config's intervals, so the watchdog and the report judge
    freshness by the schedule the demo actually keeps (in simulated time)."""
    loops = ", ".join(f'"{c.loop}"' for c in DEMO_CADENCES)
    intervals = "\n".join(f"{c.loop} = {c.every_s}" for c in DEMO_CADENCES)
    return f"\n[orchestration]\nloops = [{loops}]\n\n[orchestration.intervals_s]\n{intervals}\n"


def run_demo(days: int, workdir: Path, scenario: str = "audit", rest_members: int = 1) -> int:
    """`rest_members`: how many members (in config order) hiveops reaches over clnrest with an
    act + advisor-exec rune instead of their unix socket: a mixed fleet by default."""
    from lnsim.simfleet import SimFleet

    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    config = workdir / "hiveops.toml"
    warehouse = workdir / "hiveops.duckdb"
    print(f"hiveops demo: scenario {scenario}, {days} simulated days, workdir {workdir}")
    print(
        "cadences (simulated): "
        + ", ".join(f"{c.loop} every {c.every_s // 3600} h" for c in DEMO_CADENCES)
    )
    started = time.monotonic()
    step_s = min(c.every_s for c in DEMO_CADENCES)
    steps = days * 24 * HOUR_S // step_s
    failures = 0
    with (
        SimFleet(scenario, workdir=workdir / "sim", rest=rest_members > 0) as fleet,
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        # Flow and task runs log at INFO through their own handlers; the progress bar says enough.
        logging.getLogger("prefect").setLevel(logging.WARNING)
        over_rest = list(fleet.node_ids)[:rest_members]
        fleet.write_config(config, warehouse, rest_members=over_rest)
        for name in fleet.node_ids:
            where = fleet.rest_servers[name].url if name in over_rest else "unix socket"
            print(f"  {name:<10} reached over {where}")
        with config.open("a") as f:
            f.write(_orchestration_toml())
        start_s = fleet.now
        with Progress(steps, "steps") as progress:
            for _ in range(steps):
                fleet.advance(step_s)
                elapsed_s = fleet.now - start_s
                for cadence in DEMO_CADENCES:
                    if elapsed_s % cadence.every_s == 0:
                        try:
                            LOOPS[cadence.loop](config_path=str(config), now=fleet.now)
                        except LoopFailed as exc:
                            failures += 1
                            progress.say(f"  {cadence.loop} failed: {exc}")
                progress.step(f"day {elapsed_s / 86_400:.1f} of {days}")
        sim_forwards = {name: fleet.forward_count(name) for name in fleet.socket_paths}
        period = (datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(fleet.now, UTC))
        _let_prefect_settle()
    _summary(warehouse, config, sim_forwards, time.monotonic() - started)
    _calibration(warehouse, *period, advisor_config(load_settings(config)))
    return 1 if failures else 0


def _let_prefect_settle() -> None:
    """Flush queued run events before the ephemeral Prefect server stops with the process
    (otherwise its recorder logs cancelled flushes at exit)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)
    time.sleep(2)


def _summary(warehouse: Path, config: Path, sim_forwards: dict[str, int], wall_s: float) -> None:
    with db.reader(warehouse) as con:
        revenue = db.fetch_all(con, "report.demo_revenue")
        pnl = db.fetch_one(con, "report.demo_pnl")
        freshness = db.fetch_all(con, "report.loop_freshness")
        fee_changes = db.fetch_all(con, "report.fee_change_summary")
        outcome_counts = db.fetch_all(con, "report.outcome_counts")
        rebalances = db.fetch_all(con, "report.rebalance_summary")
        budget = db.fetch_one(con, "report.budget_summary")
        members = db.fetch_all(con, "fleet.report_members")
        assistance = db.fetch_all(con, "fleet.report_assistance")
        latest_report = db.fetch_one(con, "report_audit.latest_run")
        advice = db.fetch_all(con, "advisor.summary")
        books = db.fetch_one(con, "books.demo_ledger")
    print(f"finished in {wall_s:.0f} s wall")
    net_sat = (pnl["revenue_msat"] - pnl["rebalance_fees_msat"] - pnl["onchain_msat"]) // 1000
    print(
        f"P&L (fleet): routing {pnl['revenue_msat'] // 1000} sat - rebalancing "
        f"{pnl['rebalance_fees_msat'] // 1000} sat - on-chain {pnl['onchain_msat'] // 1000} sat "
        f"= {net_sat:+} sat   (the audited fleet: {AUDIT_NET_SAT:+} sat in 3 weeks)"
    )
    print(
        f"P&L (bookkeeper, the ledger): routed {books['routed_msat'] // 1000} sat - rebalance "
        f"fees {books['rebalance_fee_msat'] // 1000} sat - on-chain "
        f"{books['onchain_fee_msat'] // 1000} sat = {books['net_msat'] // 1000:+} sat; "
        f"reconciled {books['node_days']} node-days: {books['routed_mismatch']} routed and "
        f"{books['rebalance_mismatch']} rebalance mismatches; "
        f"{books['external_changes']} external fee changes"
    )
    for row in revenue:
        print(
            f"  {row['node_name']:<10} {row['forwards']:>6} forwards  "
            f"{row['fees_msat'] // 1000:>8} sat fees  (simulator counted "
            f"{sim_forwards.get(row['node_name'], 0)} forwards of any status)"
        )
    print(
        f"budget ledger: {budget['rows']} node-day rows, {budget['rows_earning']} with earnings, "
        f"{budget['rows_spending']} with spend, {budget['rows_over_budget']} over budget"
    )
    print("rebalances (purpose, state, attempts, moved, fees):")
    for row in rebalances:
        print(
            f"  {row['purpose']:<13} {row['state']:<10} {row['attempts']:>4}  moved "
            f"{row['moved_msat'] // 1000:>8} sat  fees {row['fee_msat'] // 1000:>6} sat"
        )
    print("fee changes by reason:")
    for row in fee_changes:
        print(f"  {row['reason']:<20} {row['status']:<8} {row['changes']:>5}")
    print("outcomes (what each action really earned vs its prediction):")
    for row in outcome_counts:
        print(f"  {row['kind']:<11} {row['status']:<18} {row['n']:>5}")
    print("advisor decisions (type, mode, state, count, predicted):")
    for row in advice:
        print(
            f"  {row['opportunity_type']:<17} {row['mode']:<9} {row['state']:<17} "
            f"{row['decisions']:>4}  predicted {(row['predicted_msat'] or 0) // 1000:>8} sat"
        )
    print("fleet members (first tier -> now):")
    for row in members:
        print(
            f"  {row['name']:<10} {row['first_tier'] or '-':<10} -> {row['tier'] or '-':<10} "
            f"health {row['health_score'] or 0:5.1f}  uptime {row['uptime_pct'] or 0:5.1f}%  "
            f"ratio {row['contribution_ratio'] or 0:.2f}"
        )
    print("fleet assistance (every action and its outcome):")
    for row in assistance:
        print(
            f"  {row['member_name']:<10} {row['kind']:<22} {row['result']:<16} "
            f"{row['actions']:>3}  moved {row['moved_msat'] // 1000:>8} sat  "
            f"last: {str(row['last_detail'])[:80]}"
        )
    print("loop freshness:")
    for row in freshness:
        print(
            f"  {row['loop']:<10} {row['node']:<10} last ok {row['last_ok_at']}  "
            f"runs {row['runs']}  failed {row['failed_runs']}"
        )
    print(f"warehouse: {warehouse}")
    if latest_report:
        print(
            f"self-audit report: {latest_report['report_dir']}/report.md "
            f"({latest_report['fired']} of {latest_report['detectors']} detectors fired; "
            f"charts beside it; Prefect artifact 'hiveops-daily-report')"
        )
    print(f'query it:  .venv/bin/hiveops sql --config {config} "select * from budget_ledger"')


def _calibration(warehouse: Path, start: datetime, end: datetime, config: AdvisorConfig) -> None:
    """Fee outcomes by method, and whether the advisor's predictions got closer over the run."""
    with db.reader(warehouse) as con:
        methods = db.fetch_all(con, "fees.outcome_methods")
    print("fee outcomes by method (status, method, outcomes, exactly 0, helped, net):")
    for row in methods:
        print(
            f"  {row['status']:<18} {row['method']:<15} {row['outcomes']:>5}  zero "
            f"{row['zero']:>4}  helped {row['helped']:>4}  net "
            f"{row['net_benefit_msat'] // 1000:>+8} sat"
        )
    print(
        f"advisor calibration, {start:%Y-%m-%d} to {end:%Y-%m-%d} (mean absolute error of the "
        f"predictions made in each half; prior = what the uncalibrated prior would have scored; "
        f"fee changes = the fees loop's changes as the fee prior then in force predicted them):"
    )
    for line in calibration_report(warehouse, start, end, config):
        print(line)
