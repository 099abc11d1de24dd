"""`hiveops demo`: the simulated audit fleet, run for N simulated days through the real loops.

Each loop runs as a real Prefect flow run at its cadence in simulated time. Flow heartbeats (the
Prefect kind, which detect crashed runs in production) are switched off for the demo only: they
add a fixed ~1 s join per flow run and the demo makes hundreds of runs.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.collect import collect
from flows.common import LoopFailed
from flows.fees import fees
from flows.outcomes import outcomes
from warehouse import db

HOUR_S = 3600
LOOPS = {"collect": collect, "fees": fees, "outcomes": outcomes}


@dataclass(frozen=True)
class Cadence:
    loop: str
    every_s: int


# Production cadences are in prefect.yaml; the demo scales them to keep 21 days short.
DEMO_CADENCES = (
    Cadence("collect", 8 * HOUR_S),
    Cadence("fees", 24 * HOUR_S),
    Cadence("outcomes", 24 * HOUR_S),
)


def run_demo(days: int, workdir: Path, scenario: str = "audit") -> int:
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
        SimFleet(scenario, workdir=workdir / "sim") as fleet,
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        fleet.write_config(config, warehouse)
        start_s = fleet.now
        for step in range(1, steps + 1):
            fleet.advance(step_s)
            elapsed_s = fleet.now - start_s
            for cadence in DEMO_CADENCES:
                if elapsed_s % cadence.every_s == 0:
                    try:
                        LOOPS[cadence.loop](config_path=str(config), now=fleet.now)
                    except LoopFailed as exc:
                        failures += 1
                        print(f"\n  {cadence.loop} failed: {exc}")
            _progress(step, steps, time.monotonic() - started)
        sim_forwards = {name: fleet.forward_count(name) for name in fleet.socket_paths}
        _let_prefect_settle()
    print()
    _summary(warehouse, config, sim_forwards, time.monotonic() - started)
    return 1 if failures else 0


def _let_prefect_settle() -> None:
    """Flush queued run events before the ephemeral Prefect server stops with the process
    (otherwise its recorder logs cancelled flushes at exit)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)
    time.sleep(2)


def _progress(step: int, steps: int, wall_s: float) -> None:
    width = 30
    done = width * step // steps
    sys.stdout.write(
        f"\r  [{'#' * done}{'.' * (width - done)}] {step}/{steps} steps {wall_s:5.0f}s"
    )
    sys.stdout.flush()


def _summary(warehouse: Path, config: Path, sim_forwards: dict[str, int], wall_s: float) -> None:
    with db.reader(warehouse) as con:
        revenue = db.fetch_all(con, "report.demo_revenue")
        freshness = db.fetch_all(con, "report.loop_freshness")
        fee_changes = db.fetch_all(con, "report.fee_change_summary")
        fee_outcomes = db.fetch_all(con, "report.fee_outcome_summary")
    print(f"finished in {wall_s:.0f} s wall")
    print("routing revenue per node (settled forwards):")
    for row in revenue:
        print(
            f"  {row['node_name']:<10} {row['forwards']:>6} forwards  "
            f"{row['fees_msat'] // 1000:>8} sat fees  (simulator counted "
            f"{sim_forwards.get(row['node_name'], 0)} forwards of any status)"
        )
    print("fee changes by reason:")
    for row in fee_changes:
        print(f"  {row['reason']:<20} {row['status']:<8} {row['changes']:>5}")
    print("fee-change outcomes (difference in differences vs control channels):")
    for row in fee_outcomes:
        print(
            f"  {row['status']:<18} {row['outcomes']:>5}  helped {row['helped']:>4}  "
            f"net {row['net_benefit_msat'] // 1000:>7} sat"
        )
    print("loop freshness:")
    for row in freshness:
        print(
            f"  {row['loop']:<10} {row['node']:<10} last ok {row['last_ok_at']}  "
            f"runs {row['runs']}  failed {row['failed_runs']}"
        )
    print(f"warehouse: {warehouse}")
    print(f'query it:  .venv/bin/hiveops sql --config {config} "select * from daily_revenue"')
