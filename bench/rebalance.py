"""Rebalancing benchmark: our rebalancer vs none vs the audit's settings, over many markets.

    python bench/rebalance.py [--scenario NAME_OR_FILE ...] [--random N] [--seed S]
                              [--days 21] [--cadence-h 12] [--jobs 2] [--no-htlcmax-arm]

Default: `audit`, `busy` and 4 scenarios of the family (lnsim.scenario_family, the same one
bench/fees.py draws from) at seed 1. Every arm runs the real loops (collect, fees daily,
rebalance) as Prefect flow runs against the
simulated fleet with the scenario's seed, so the demand is the same; only the rebalance
settings differ, and the fees loop is active in every arm. Printed per scenario and arm, fleet
wide: net P&L (routing revenue − rebalance fees − on-chain costs) and its ratio to "none",
attempts, the share that moved liquidity, fees paid per sat moved (ppm), node-days of the
budget ledger spent over budget, and local failures per day; then the issue's targets, each
held or not, all from this one run. `ours+htlcmax` (busy only, unless --no-htlcmax-arm) is
ours with the max-HTLC lever on (it is off by default): local failures and revenue with it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")

HOUR_S = 3600
DAY_S = 86_400
NAMED = ("audit", "busy")
ARMS = {
    "ours": "",
    "none": "\n[rebalance]\nmax_attempts_per_run = 0\n",
    # cl_revenue_ops as audited: 200k-sat chunks, no expected-value gate, 2k sat/day budget
    "audit-settings": (
        "\n[rebalance]\nchunk_sat = 200000\nallow_large_chunks = true\nev_gate = false\n"
        "\n[budget]\ndaily_budget_sat = 2000\nshare_of_earnings = 1.0\n"
    ),
}
HTLCMAX_ARM = ("ours+htlcmax", "\n[htlcmax]\nenabled = true\n")
HTLCMAX_ARM_SCENARIOS = ("busy",)
# The targets (#16): ratio of ours to none.
TARGET_BUSY, TARGET_AUDIT, TARGET_RANDOM_MIN, TARGET_RANDOM_MEAN = 1.10, 1.00, 0.98, 1.05
TARGET_BUSY_MOVED = 0.60


@dataclass
class ArmResult:
    attempts: int
    moved: int
    moved_sat: int
    rebalance_fee_msat: int
    revenue_msat: int
    onchain_msat: int
    local_failures: int
    days: float
    wall_s: float
    htlcmax_changes: int = 0
    # budget_ledger node-days: all, spent over budget
    ledger_days: int = 0
    over_budget_days: int = 0
    error: str | None = None

    @property
    def net_msat(self) -> int:
        return self.revenue_msat - self.rebalance_fee_msat - self.onchain_msat


def run_arm(scenario: str, extra: str, days: int, cadence_h: int) -> ArmResult:
    """One arm in a fresh simulated fleet and warehouse (runs in a worker process)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.collect import collect
    from flows.fees import fees
    from flows.rebalance import rebalance
    from lnsim.simfleet import SimFleet
    from warehouse import db

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-rb-") as tmp:
        workdir = Path(tmp)
        with (
            temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
            SimFleet(scenario, workdir=workdir / "sim") as fleet,
        ):
            config = fleet.write_config(workdir / "hiveops.toml", workdir / "hiveops.duckdb")
            with config.open("a") as f:
                f.write(extra)
            start = fleet.now
            fleet.advance(HOUR_S)
            for _ in range(days * 24 // cadence_h):
                for loop in (collect, fees, rebalance):
                    if loop is fees and (fleet.now - start) % DAY_S >= cadence_h * HOUR_S:
                        continue
                    try:
                        loop(config_path=str(config), now=fleet.now)
                    except Exception as exc:  # a failed run is data here, not the end
                        print(f"    {scenario}: {loop.name} failed: {str(exc)[:160]}", flush=True)
                fleet.advance(cadence_h * HOUR_S)
            collect(config_path=str(config), now=fleet.now)
            span_days = (fleet.now - start) / DAY_S
        db.release_all()
        with db.reader(workdir / "hiveops.duckdb") as con:
            row = con.execute(
                "SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed')),"
                " count(*) FILTER (WHERE state = 'succeeded' AND moved_msat > 0),"
                " coalesce(sum(moved_msat), 0)::BIGINT // 1000,"
                " coalesce(sum(fee_msat), 0)::BIGINT FROM rebalance_attempts"
            ).fetchall()[0]
            revenue, local_failures = con.execute(
                "SELECT coalesce(sum(fee_msat) FILTER (WHERE status = 'settled'), 0)::BIGINT,"
                " count(*) FILTER (WHERE status = 'local_failed') FROM forwards"
            ).fetchall()[0]
            onchain = con.execute(
                "SELECT coalesce(sum(amount_msat), 0)::BIGINT FROM onchain_costs"
            ).fetchall()[0][0]
            ledger = con.execute(
                "SELECT count(*),"
                " count(*) FILTER (WHERE rebalance_spent_msat + onchain_spent_msat > budget_msat)"
                " FROM budget_ledger"
            ).fetchall()[0]
            htlcmax = con.execute(
                "SELECT count(*) FROM htlcmax_changes WHERE status = 'applied'"
            ).fetchall()[0][0]
    return ArmResult(
        attempts=row[0],
        moved=row[1],
        moved_sat=row[2],
        rebalance_fee_msat=row[3],
        revenue_msat=revenue,
        onchain_msat=onchain,
        local_failures=local_failures,
        days=span_days,
        wall_s=time.monotonic() - started,
        htlcmax_changes=htlcmax,
        ledger_days=ledger[0],
        over_budget_days=ledger[1],
    )


def _arm_job(scenario: str, extra: str, days: int, cadence_h: int) -> ArmResult:
    try:
        return run_arm(scenario, extra, days, cadence_h)
    except Exception as exc:  # one broken arm is reported, the others still finish
        return ArmResult(0, 0, 0, 0, 0, 0, 0, 1.0, 0.0, error=f"{type(exc).__name__}: {exc}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="builtin name or scenario file")
    parser.add_argument("--random", type=int, help="scenarios drawn from the family (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="the family's seed")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--cadence-h", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--no-htlcmax-arm", action="store_true")
    args = parser.parse_args(argv)
    if args.days <= 0 or args.cadence_h <= 0 or args.jobs < 1 or (args.random or 0) < 0:
        parser.error("--days, --cadence-h and --jobs must be positive, --random >= 0")
    return args


def scenario_refs(args: argparse.Namespace) -> list[str]:
    from lnsim.scenario_family import draw_scenarios

    named = list(args.scenario or ([] if args.random is not None else NAMED))
    count = args.random if args.random is not None else (0 if args.scenario else 4)
    return named + [s.name for s in draw_scenarios(count, args.seed)]


def _ratio(r: ArmResult, base: ArmResult) -> float | None:
    return r.net_msat / base.net_msat if base.net_msat > 0 else None


def print_scenario(ref: str, results: dict[str, ArmResult]) -> None:
    base = results["none"]
    print(f"\nscenario {ref} (fleet-wide, {base.days:.0f} days)")
    print(
        f"  {'arm':<16}{'net sat':>10}{'net/none':>9}{'attempts':>9}{'moved %':>8}"
        f"{'fee ppm':>8}{'over-budget':>12}{'local fail/d':>13}{'revenue sat':>12}"
        f"{'rebal fee':>10}{'htlcmax':>8}{'wall s':>7}"
    )
    for arm, r in results.items():
        if r.error:
            print(f"  {arm:<16}error: {r.error[:200]}")
            continue
        share = f"{100 * r.moved / r.attempts:.0f}" if r.attempts else "-"
        ppm = f"{r.rebalance_fee_msat * 1000 // r.moved_sat}" if r.moved_sat else "-"
        ratio = _ratio(r, base)
        shown = "-" if ratio is None else f"{ratio:.3f}"
        print(
            f"  {arm:<16}{r.net_msat // 1000:>10}{shown:>9}{r.attempts:>9}{share:>8}{ppm:>8}"
            f"{f'{r.over_budget_days}/{r.ledger_days}':>12}{r.local_failures / r.days:>13.1f}"
            f"{r.revenue_msat // 1000:>12}{r.rebalance_fee_msat // 1000:>10}"
            f"{r.htlcmax_changes:>8}{r.wall_s:>7.0f}"
        )


def print_targets(all_results: dict[str, dict[str, ArmResult]]) -> bool:
    """The issue's targets on this run; True when every one held."""
    checks: list[tuple[str, bool, str]] = []

    def ratio_of(ref: str) -> float | None:
        arms = all_results[ref]
        if arms["ours"].error or arms["none"].error:
            return None
        return _ratio(arms["ours"], arms["none"])

    for ref, target in (("busy", TARGET_BUSY), ("audit", TARGET_AUDIT)):
        if ref in all_results:
            got = ratio_of(ref)
            checks.append(
                (
                    f"{ref} >= {target:.2f}x none",
                    got is not None and got >= target,
                    "-" if got is None else f"{got:.3f}",
                )
            )
    randoms = [ref for ref in all_results if ref.startswith("random-")]
    ratios = [ratio_of(ref) for ref in randoms]
    if randoms:
        known = [r for r in ratios if r is not None]
        worst = min(known) if known else None
        checks.append(
            (
                f"every random >= {TARGET_RANDOM_MIN:.2f}x",
                len(known) == len(randoms) and worst is not None and worst >= TARGET_RANDOM_MIN,
                "-" if worst is None else f"min {worst:.3f}",
            )
        )
        mean = sum(known) / len(known) if known else None
        checks.append(
            (
                f"random mean >= {TARGET_RANDOM_MEAN:.2f}x",
                mean is not None and mean >= TARGET_RANDOM_MEAN,
                "-" if mean is None else f"{mean:.3f} over {len(known)}",
            )
        )
    over = sum(arms["ours"].over_budget_days for arms in all_results.values())
    checks.append(("0 node-days over budget (ours)", over == 0, str(over)))
    if "busy" in all_results:
        busy = all_results["busy"]["ours"]
        share = busy.moved / busy.attempts if busy.attempts else 0.0
        checks.append(
            (
                f"busy >= {TARGET_BUSY_MOVED:.0%} of attempts moved",
                share >= TARGET_BUSY_MOVED,
                f"{share:.0%} of {busy.attempts}",
            )
        )
    print("\ntargets (issue #16)")
    for name, held, got in checks:
        print(f"  {'held' if held else 'MISSED':<7}{name:<34}{got}")
    return all(held for _, held, _ in checks)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    refs = scenario_refs(args)
    started = time.monotonic()
    print(
        f"rebalance bench: {', '.join(refs)}; {args.days} simulated days, loops every "
        f"{args.cadence_h} h (fees daily), {args.jobs} worker(s)",
        flush=True,
    )
    jobs: dict[tuple[str, str], Future[ArmResult]] = {}
    # spawn, not fork: polars' thread pool does not survive a fork (the workers hang).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        # the busiest first, so the last worker is not left with it alone
        for ref in sorted(refs, key=lambda r: r != "busy"):
            arms = dict(ARMS)
            if ref in HTLCMAX_ARM_SCENARIOS and not args.no_htlcmax_arm:
                arms[HTLCMAX_ARM[0]] = HTLCMAX_ARM[1]
            for arm, extra in arms.items():
                jobs[(ref, arm)] = pool.submit(_arm_job, ref, extra, args.days, args.cadence_h)
        results: dict[str, dict[str, ArmResult]] = {}
        for (ref, arm), future in jobs.items():  # a scenario is printed once its arms are in
            results.setdefault(ref, {})[arm] = future.result()
            if len(results[ref]) == sum(1 for key in jobs if key[0] == ref):
                print_scenario(ref, results[ref])
                sys.stdout.flush()
    held = print_targets(results)
    print(f"\nwall time {time.monotonic() - started:.0f} s with {args.jobs} worker(s)")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
