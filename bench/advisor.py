"""Advisor calibration benchmark: do its predictions carry information about measured outcomes?

    .venv/bin/python bench/advisor.py [--scenario NAME_OR_FILE ...] [--days 21] [--jobs 2]

Each scenario (default: audit, busy) runs the real loops as Prefect flow runs on the simulated
fleet for `--days`: collect every 8 h; fees, outcomes and advisor daily (the demo's cadences).
The advisor's decisions are linked to the fees loop's changes and scored against the outcomes
the outcomes loop measured (`advisor_calibration`). Printed per scenario and type, from this one
run: measured samples per half; the relative error Σ|predicted − actual| / Σ|actual| of the
predictions as made (calibrated), of the uncalibrated prior (PRIOR_FACTOR × raw) and of
predicting 0 (1.00 by definition: the bar any informative estimate must clear) on the same
samples, with the mean |actual| that scales them; then, over the whole run, how often the raw
estimate's sign matched the outcome's and the rank correlation of raw with actual, for fee moves
also with the channel's own revenue change (the outcome without the node trend it multiplies the
before-rate by: that trend, noise to the advisor, is over half of the busy outcomes' mass).
Scenarios run in parallel worker processes, each with its own Prefect home: the default (audit
and busy, 21 days) takes about 5-6 minutes on 2 cores. The loops never read the advisor's
decisions, so every run of a scenario replays the same fees and outcomes; only which decisions
get linked can differ with the estimate. The calibration learns from its own measured decisions,
shrunk toward a prior fitted on its estimate scored on every measured change of the fees loop
(engine/advisor/backtest.py); both counts are printed, with how well the estimate ranks the fees
loop's outcomes and, walk-forward, how that prior would have predicted them.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOUR_S = 3600
DAY_S = 86_400
DEFAULT_SCENARIOS = ("audit", "busy")
COLLECT_EVERY_S = 8 * HOUR_S


@dataclass
class ScenarioRun:
    ref: str
    wall_s: float = 0.0
    start_s: int = 0
    end_s: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    # the advisor's estimate scored on the fees loop's measured changes (advisor.backtest_samples)
    backtests: list[dict[str, Any]] = field(default_factory=list)
    decisions: dict[str, int] = field(default_factory=dict)
    outcome_methods: dict[str, int] = field(default_factory=dict)
    # (raw estimate, the channel's own revenue change over the window with the trend left out)
    fee_own_change: list[tuple[float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    error: str | None = None


def run_scenario(ref: str, days: int, keep: str | None = None) -> ScenarioRun:
    """One scenario in this (worker) process: its own Prefect home, sim fleet and warehouse
    (kept under `keep`/<scenario> when given, for a closer look)."""
    with tempfile.TemporaryDirectory(prefix="bench-advisor-") as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
        # two ephemeral servers starting at once on a busy 2-core box can miss the 20 s default
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        run = ScenarioRun(ref)
        started = time.monotonic()
        try:
            _run(run, days, Path(tmp))
        except Exception as exc:  # reported in the table; the other scenarios still finish
            run.error = f"{type(exc).__name__}: {exc}"
        run.wall_s = time.monotonic() - started
        if keep:
            target = Path(keep) / Path(ref).stem
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            for name in ("hiveops.duckdb", "hiveops.toml"):
                if (Path(tmp) / name).exists():
                    shutil.copy2(Path(tmp) / name, target / name)
        return run


def _run(run: ScenarioRun, days: int, workdir: Path) -> None:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.advisor import advisor
    from flows.collect import collect
    from flows.common import LoopFailed
    from flows.fees import fees
    from flows.outcomes import outcomes
    from lnsim.simfleet import SimFleet
    from warehouse import db

    warehouse = workdir / "hiveops.duckdb"
    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        SimFleet(run.ref, workdir=workdir / "sim") as fleet,
    ):
        config = fleet.write_config(workdir / "hiveops.toml", warehouse)
        run.start_s = fleet.now
        for _ in range(days * DAY_S // COLLECT_EVERY_S):
            fleet.advance(COLLECT_EVERY_S)
            loops = [collect]
            if (fleet.now - run.start_s) % DAY_S == 0:
                loops += [fees, outcomes, advisor]
            for loop in loops:
                try:
                    loop(config_path=str(config), now=fleet.now)
                except LoopFailed as exc:  # a failed run is data here, not the end of the bench
                    run.failures.append(f"{loop.name}: {str(exc)[:160]}")
        run.end_s = fleet.now
    db.release_all()
    read_results(run, warehouse)


def read_results(run: ScenarioRun, warehouse: Path) -> None:
    """The run's calibration samples and counts, from its warehouse."""
    from datetime import UTC, datetime

    from warehouse import db

    until = datetime.fromtimestamp(run.end_s, UTC)
    with db.reader(warehouse) as con:
        run.samples = db.fetch_frame(con, "advisor.calibration_samples", until=until).to_dicts()
        run.backtests = db.fetch_frame(con, "advisor.backtest_samples", until=until).to_dicts()
        run.decisions = {
            f"{r[0]}:{r[1]}": r[2]
            for r in con.execute(
                "SELECT opportunity_type, state, count(*) FROM advisor_decisions GROUP BY ALL"
            ).fetchall()
        }
        run.fee_own_change = [
            (float(r[0]), float(r[1]))
            for r in con.execute(
                "SELECT c.raw_estimate_msat, (o.treated_after_revenue_msat"
                " / (epoch(o.window_end) - epoch(o.changed_at))"
                " - o.treated_before_revenue_msat / (epoch(o.changed_at) - epoch(o.window_start)))"
                " * o.window_s FROM advisor_calibration c"
                " JOIN advisor_decisions d USING (decision_id)"
                " JOIN fee_outcomes o ON o.change_id = d.linked_action_id"
                " WHERE c.opportunity_type = 'fee' AND c.measured_at <= ?",
                [until],
            ).fetchall()
        ]
        run.outcome_methods = {
            f"{r[0]}:{r[1]}": r[2]
            for r in con.execute(
                "SELECT status, coalesce(method, '-'), count(*) FROM fee_outcomes GROUP BY ALL"
            ).fetchall()
        }


# -- scoring ------------------------------------------------------------------------------------


def _rel(errors: list[float], actual: list[float]) -> str:
    scale = sum(abs(a) for a in actual)
    return f"{sum(errors) / scale:.2f}" if scale > 0 else "-"


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float | None:
    """Rank correlation (ties averaged); None when either side is constant or too short."""
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else None


def _half_rows(kind: str, typed: list[dict[str, Any]], middle: Any) -> list[str]:
    """One table row per half: samples, relative error calibrated / prior / zero, mean |actual|."""
    from datetime import UTC

    from engine.advisor.predict import PRIOR_FACTOR

    lines = []
    for label, part in (
        ("first", [s for s in typed if s["decided_at"].astimezone(UTC) < middle]),
        ("second", [s for s in typed if s["decided_at"].astimezone(UTC) >= middle]),
    ):
        actual = [float(s["actual_benefit_msat"]) for s in part]
        cal = [
            abs(float(s["predicted_benefit_msat"]) - a) for s, a in zip(part, actual, strict=True)
        ]
        prior = [
            abs(round(PRIOR_FACTOR * float(s["raw_estimate_msat"])) - a)
            for s, a in zip(part, actual, strict=True)
        ]
        zero = [abs(a) for a in actual]
        mean_actual = f"{sum(zero) / len(zero) / 1000:,.1f}" if zero else "-"
        lines.append(
            f"   {kind:<11}{label:<7}{len(part):>4}{_rel(cal, actual):>12}"
            f"{_rel(prior, actual):>8}{_rel(zero, actual):>7}{mean_actual:>19}"
        )
    return lines


def score(run: ScenarioRun) -> list[str]:
    """The per-type, per-half table for one scenario (lines to print)."""
    from datetime import UTC, datetime

    import polars as pl

    from engine.advisor.predict import (
        PRIOR_FACTOR,
        fit_calibration,
        walk_forward,
    )
    from models.advisor import AdvisorConfig, OpportunityType

    end = datetime.fromtimestamp(run.end_s, UTC)
    middle = datetime.fromtimestamp(run.start_s + (run.end_s - run.start_s) / 2, UTC)
    lines = [
        f"   {'type':<11}{'half':<7}{'n':>4}{'calibrated':>12}{'prior':>8}{'zero':>7}"
        f"{'mean |actual| sat':>19}"
    ]
    for kind in sorted({s["opportunity_type"] for s in run.samples}):
        typed = [s for s in run.samples if s["opportunity_type"] == kind]
        lines += _half_rows(kind, typed, middle)
        raw = [float(s["raw_estimate_msat"]) for s in typed]
        actual = [float(s["actual_benefit_msat"]) for s in typed]
        signed = [(r, a) for r, a in zip(raw, actual, strict=True) if r != 0 and a != 0]
        agree = sum(1 for r, a in signed if (r > 0) == (a > 0))
        rho = spearman(raw, actual)
        zero_raw = sum(1 for r in raw if r == 0)
        backtested = [s for s in run.backtests if s["opportunity_type"] == kind]
        fitted = fit_calibration(
            pl.DataFrame(typed), AdvisorConfig(), before=end, backtests=pl.DataFrame(backtested)
        )
        lines.append(
            f"   {kind:<11}whole run: raw sign matched the outcome's in {agree}/{len(signed)}"
            f" (both non-zero), raw 0 on {zero_raw}/{len(raw)}, rank correlation raw~actual "
            f"{'-' if rho is None else f'{rho:+.2f}'}, factor fitted at the end "
            f"{fitted[OpportunityType(kind)].factor:.2f} (prior {PRIOR_FACTOR}) on "
            f"{len(typed)} own + {len(backtested)} backtested outcomes"
        )
        if backtested:
            braw = [float(s["raw_estimate_msat"]) for s in backtested]
            bact = [float(s["actual_benefit_msat"]) for s in backtested]
            bsigned = [(r, a) for r, a in zip(braw, bact, strict=True) if r != 0 and a != 0]
            bagree = sum(1 for r, a in bsigned if (r > 0) == (a > 0))
            brho = spearman(braw, bact)
            lines.append(
                f"   {kind:<11}the estimate on the fees loop's own measured changes: sign matched "
                f"in {bagree}/{len(bsigned)}, raw 0 on {sum(1 for r in braw if r == 0)}/"
                f"{len(braw)}, rank correlation {'-' if brho is None else f'{brho:+.2f}'}"
            )
    if run.backtests:
        changes = walk_forward(pl.DataFrame(run.backtests), AdvisorConfig())
        lines += _half_rows("fee chg", changes.to_dicts(), middle)
        lines.append(
            f"   {'fee chg':<11}= the fees loop's measured changes, each predicted by the "
            f"fee prior in force at its instant (walk-forward)"
        )
    if run.fee_own_change:
        rho = spearman([r for r, _ in run.fee_own_change], [o for _, o in run.fee_own_change])
        lines.append(
            f"   {'fee':<11}the same raw against the channel's own revenue change (the outcome "
            f"without its node trend): rank correlation {'-' if rho is None else f'{rho:+.2f}'}"
        )
    if not run.samples:
        lines.append("   no advisor decision got a measured outcome")
    return lines


def print_run(run: ScenarioRun, days: int) -> None:
    print(f"\n== {run.ref}: {days} simulated days, wall {run.wall_s:.0f} s")
    if run.error:
        print(f"   failed: {run.error}")
        return
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(run.decisions.items()))
    print(f"   decisions: {decisions or 'none'}")
    methods = ", ".join(f"{k} {v}" for k, v in sorted(run.outcome_methods.items()))
    print(f"   fee outcomes: {methods or 'none'}")
    if run.failures:
        print(f"   {len(run.failures)} failed loop run(s), first: {run.failures[0]}")
    print("   relative error Σ|pred − actual| / Σ|actual| of the predictions made in each half:")
    for line in score(run):
        print(line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", help="builtin name or TOML/JSON file")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--jobs", type=int, default=2, help="scenarios run in parallel")
    parser.add_argument("--keep", help="copy each scenario's warehouse to KEEP/<scenario>/")
    args = parser.parse_args(argv)
    if args.days < 2 or args.jobs < 1:
        parser.error("--days must be at least 2 and --jobs positive")
    return args


def main(argv: list[str] | None = None) -> int:
    from lnsim.scenario_model import ScenarioError, load_scenario

    args = parse_args(argv)
    refs = args.scenario or list(DEFAULT_SCENARIOS)
    for ref in refs:  # fail fast on a bad scenario, before any simulation
        try:
            load_scenario(ref)
        except ScenarioError as exc:
            raise SystemExit(str(exc)) from exc
    print(f"advisor bench: {args.days} simulated days per scenario, {len(refs)} scenario(s)")
    started = time.monotonic()
    # spawn, not fork: polars' thread pool does not survive a fork, and each worker needs its
    # own PREFECT_HOME set before Prefect is imported.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        from hiveops.progress import Progress

        futures = [pool.submit(run_scenario, ref, args.days, args.keep) for ref in refs]
        with Progress(len(futures), "scenarios done") as progress:
            for _ in as_completed(futures):
                progress.step()
        runs = [f.result() for f in futures]
    for run in runs:
        print_run(run, args.days)
    print(f"\nwall time {time.monotonic() - started:.0f} s with {args.jobs} worker(s)")
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
