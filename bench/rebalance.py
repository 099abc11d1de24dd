"""Rebalancing benchmark: our EV-gated rebalancer vs none vs the audit's settings, per scenario.

    python bench/rebalance.py [--scenario NAME_OR_FILE ...] [--days 21] [--cadence-h 12]

Every arm runs the real loops (collect, fees daily, rebalance) as Prefect flow runs against the
simulated fleet with the same seed, so the demand is the same; only the rebalance settings
differ. Printed per scenario and arm: attempts, the share that moved liquidity, fees paid per
sat moved (ppm), routing revenue, rebalance fees, and net P&L (revenue − rebalance fees −
on-chain costs), plus each arm's net as a ratio to "no rebalancing", all from this one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")

HOUR_S = 3600
ARMS = {
    "ours": "",
    "none": "\n[rebalance]\nmax_attempts_per_run = 0\n",
    # cl_revenue_ops as audited: 200k-sat chunks, no expected-value gate, 2k sat/day budget
    "audit-settings": (
        "\n[rebalance]\nchunk_sat = 200000\nallow_large_chunks = true\nev_gate = false\n"
        "\n[budget]\ndaily_budget_sat = 2000\nshare_of_earnings = 1.0\n"
    ),
}


@dataclass
class ArmResult:
    attempts: int
    moved: int
    moved_sat: int
    rebalance_fee_msat: int
    revenue_msat: int
    onchain_msat: int
    wall_s: float
    # budget_ledger node-days: all, with earned > 0, with spent > 0, spent over budget
    ledger_days: int = 0
    earned_days: int = 0
    spent_days: int = 0
    over_budget_days: int = 0

    @property
    def net_msat(self) -> int:
        return self.revenue_msat - self.rebalance_fee_msat - self.onchain_msat


def run_arm(
    scenario: str, arm: str, extra: str, days: int, cadence_h: int, workdir: Path
) -> ArmResult:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.collect import collect
    from flows.fees import fees
    from flows.rebalance import rebalance
    from hiveops.progress import Progress
    from lnsim.simfleet import SimFleet
    from warehouse import db

    started = time.monotonic()
    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        SimFleet(scenario, workdir=workdir / "sim") as fleet,
    ):
        config = fleet.write_config(workdir / "hiveops.toml", workdir / "hiveops.duckdb")
        with config.open("a") as f:
            f.write(extra)
        start = fleet.now
        fleet.advance(HOUR_S)
        steps = days * 24 // cadence_h
        with Progress(steps, f"{scenario}/{arm} step") as progress:
            for _ in range(steps):
                for loop in (collect, fees, rebalance):
                    if loop is fees and (fleet.now - start) % 86_400 >= cadence_h * HOUR_S:
                        continue
                    try:
                        loop(config_path=str(config), now=fleet.now)
                    except Exception as exc:  # a failed run is data here, not the end of it
                        progress.say(f"    {loop.name} failed: {str(exc)[:160]}")
                fleet.advance(cadence_h * HOUR_S)
                progress.step()
        collect(config_path=str(config), now=fleet.now)
    db.release_all()
    with db.reader(workdir / "hiveops.duckdb") as con:
        row = con.execute(
            "SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed')),"
            " count(*) FILTER (WHERE state = 'succeeded' AND moved_msat > 0),"
            " coalesce(sum(moved_msat), 0)::BIGINT // 1000, coalesce(sum(fee_msat), 0)::BIGINT"
            " FROM rebalance_attempts"
        ).fetchall()[0]
        revenue = con.execute(
            "SELECT coalesce(sum(fee_msat), 0)::BIGINT FROM forwards WHERE status = 'settled'"
        ).fetchall()[0][0]
        onchain = con.execute(
            "SELECT coalesce(sum(amount_msat), 0)::BIGINT FROM onchain_costs"
        ).fetchall()[0][0]
        ledger = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE earned_msat > 0),"
            " count(*) FILTER (WHERE rebalance_spent_msat + onchain_spent_msat > 0),"
            " count(*) FILTER (WHERE rebalance_spent_msat + onchain_spent_msat > budget_msat)"
            " FROM budget_ledger"
        ).fetchall()[0]
    return ArmResult(
        attempts=row[0],
        moved=row[1],
        moved_sat=row[2],
        rebalance_fee_msat=row[3],
        revenue_msat=revenue,
        onchain_msat=onchain,
        wall_s=time.monotonic() - started,
        ledger_days=ledger[0],
        earned_days=ledger[1],
        spent_days=ledger[2],
        over_budget_days=ledger[3],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="builtin name or scenario file")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--cadence-h", type=int, default=12)
    args = parser.parse_args()
    scenarios = args.scenario or ["audit", "busy"]
    print(f"rebalance bench: {args.days} simulated days, loops every {args.cadence_h} h")
    for scenario in scenarios:
        results: dict[str, ArmResult] = {}
        for arm, extra in ARMS.items():
            with tempfile.TemporaryDirectory(prefix=f"bench-rb-{arm}-") as tmp:
                results[arm] = run_arm(scenario, arm, extra, args.days, args.cadence_h, Path(tmp))
        baseline = results["none"].net_msat
        print(f"\nscenario {scenario} (fleet-wide)")
        print(
            f"  {'arm':<15}{'attempts':>9}{'moved %':>9}{'fee ppm':>9}{'revenue sat':>13}"
            f"{'rebal fee sat':>15}{'net sat':>10}{'net/none':>10}{'wall s':>8}"
        )
        for arm, r in results.items():
            share = f"{100 * r.moved / r.attempts:.0f}" if r.attempts else "-"
            ppm = f"{r.rebalance_fee_msat * 1000 // r.moved_sat}" if r.moved_sat else "-"
            ratio = f"{r.net_msat / baseline:.3f}" if baseline else "-"
            print(
                f"  {arm:<15}{r.attempts:>9}{share:>9}{ppm:>9}{r.revenue_msat // 1000:>13}"
                f"{r.rebalance_fee_msat // 1000:>15}{r.net_msat // 1000:>10}{ratio:>10}"
                f"{r.wall_s:>8.0f}"
            )
        print("  budget ledger (node-days): all / earned > 0 / spent > 0 / spent over budget")
        for arm, r in results.items():
            print(
                f"  {arm:<15}{r.ledger_days:>5} /{r.earned_days:>4} /{r.spent_days:>4} /"
                f"{r.over_budget_days:>4}"
            )


if __name__ == "__main__":
    main()
