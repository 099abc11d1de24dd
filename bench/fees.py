"""Fee policies against the hindsight oracle, on the same simulated demand (issue #3, point 5).

    .venv/bin/python bench/fees.py [--scenario FILE ...] [--random N] [--seed S] [--days 30]
                                   [--node nexus-02] [--every-h 6] [--jobs 2]
                                   [--oracle-rounds 3] [--polish 4] [--grid 1,2,5,...] [--exact]

Scenarios: the named four (audit, busy, elastic, undercut) plus 12 draws of the scenario family
(lnsim/scenario_family.py, seed 1) by default; `--random N --seed S` draws N others (held out),
`--scenario` picks files. For each scenario every policy faces the same demand
trace (bench/fee_oracle.py) for `--days`, deciding every `--every-h` hours from the frames the
fees flow reads (bench/fee_policies.py). Revenue is the node's settled forward fees in msat (no
rebalancing runs, so nothing is spent). The oracle is the best fixed fee per channel found by a
coordinate search on the same demand; each policy is printed as a ratio to it, per scenario and
in aggregate (mean of the scenarios' ratios, and pooled: total revenue over total oracle).
The summary adds the controller against the best simple baseline of each scenario (and the worst
case), fee changes per channel-week after the first 7 days, and the cold start: the day-1 fee
over the competitors' median toward the same peer.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fee_oracle import (
    FEE_GRID_PPM,
    Arrival,
    Evaluation,
    Fees,
    OracleSearch,
    demand_trace,
    filter_is_exact,
)
from bench.fee_policies import (
    RunResult,
    changes_per_channel_week,
    external_scids,
    relevant_arrivals,
    run_policy,
    standard_policies,
)
from lnsim.scenario_family import draw_scenarios
from lnsim.scenario_model import Scenario, ScenarioError, load_scenario
from lnsim.topology import build_network

DEFAULT_SCENARIOS = ("audit", "busy", "elastic", "undercut")
DEFAULT_RANDOM = 12  # family draws in the default run, beside the named four
DEFAULT_SEED = 1  # the default run's family seed; judge held-out with another --seed
POLICY_ORDER = tuple(p.name for p in standard_policies())
BASELINES = tuple(name for name in POLICY_ORDER if name != "controller")
FIXED_POLICIES = ("cln_default", "static_median")

# -- worker side: everything a worker needs is rebuilt from (scenario, days) and cached ----------

_traces: dict[tuple[str, float], tuple[Scenario, list[Arrival]]] = {}


def _trace(scenario_ref: str, days: float) -> tuple[Scenario, list[Arrival]]:
    key = (scenario_ref, days)
    if key not in _traces:
        scenario = load_scenario(scenario_ref)
        _traces[key] = (scenario, demand_trace(scenario, build_network(scenario), days))
    return _traces[key]


def _arrivals(scenario_ref: str, days: float, keep: frozenset[int] | None) -> list[Arrival]:
    arrivals = _trace(scenario_ref, days)[1]
    return arrivals if keep is None else [a for a in arrivals if a.index in keep]


def probe_job(scenario_ref: str, node: str, days: float) -> tuple[frozenset[int], int, float]:
    started = time.monotonic()
    scenario, arrivals = _trace(scenario_ref, days)
    kept = relevant_arrivals(scenario, node, days, arrivals)
    return frozenset(a.index for a in kept), len(arrivals), time.monotonic() - started


def policy_job(
    scenario_ref: str, node: str, days: float, keep: frozenset[int] | None, name: str, every_s: int
) -> RunResult:
    policy = next(p for p in standard_policies() if p.name == name)
    scenario = _trace(scenario_ref, days)[0]
    arrivals = _arrivals(scenario_ref, days, keep)
    return run_policy(scenario, node, days, arrivals, policy, every_s=every_s)


def fixed_job(
    scenario_ref: str, node: str, days: float, keep: frozenset[int] | None, fees: dict
) -> RunResult:
    scenario = _trace(scenario_ref, days)[0]
    return run_policy(scenario, node, days, _arrivals(scenario_ref, days, keep), fixed=fees)


# -- coordinator side -------------------------------------------------------------------------


@dataclass
class ScenarioReport:
    ref: str
    name: str = ""
    scids: list[str] = field(default_factory=list)
    payments: int = 0
    replayed: int = 0
    exact: bool = True
    results: dict[str, RunResult] = field(default_factory=dict)
    oracle: Evaluation | None = None
    oracle_run: RunResult | None = None
    evaluations: int = 0
    searched: list[Evaluation] = field(default_factory=list)  # every fixed point, seeds included
    wall_s: float = 0.0
    error: str | None = None


class ScenarioBench:
    """One scenario's runs, submitted to the shared process pool from a coordinator thread."""

    def __init__(self, pool: ProcessPoolExecutor, args: argparse.Namespace, ref: str) -> None:
        self.pool, self.args, self.report = pool, args, ScenarioReport(ref)
        self._fixed_runs: dict[Fees, RunResult] = {}
        self._started = time.monotonic()

    def run(self) -> None:
        started = time.monotonic()
        try:
            self._run()
        except Exception as exc:  # reported in the table, the other scenarios still finish
            self.report.error = f"{type(exc).__name__}: {exc}"
        self.report.wall_s = time.monotonic() - started

    def _run(self) -> None:
        a, r = self.args, self.report
        scenario = load_scenario(r.ref)
        r.name, r.scids = scenario.name, external_scids(build_network(scenario), a.node)
        r.exact = filter_is_exact(scenario) and not a.exact
        keep: frozenset[int] | None = None
        if r.exact:
            keep, r.payments, _ = self.pool.submit(probe_job, r.ref, a.node, a.days).result()
            r.replayed = len(keep)
            self._log(f"relevance probe: {r.replayed:,} of {r.payments:,} payments touch the fleet")
        every_s = int(a.every_h * 3600)
        runs: dict[str, Future[RunResult]] = {
            name: self.pool.submit(policy_job, r.ref, a.node, a.days, keep, name, every_s)
            for name in POLICY_ORDER
        }
        seeds = []
        for name in FIXED_POLICIES:
            result = runs[name].result()
            self._fixed_runs[self._key(result)] = result
            seeds.append(self._evaluation(result, name))
        search = OracleSearch(
            evaluate=lambda points: self._evaluate(points, keep),
            channels=len(r.scids),
            grid_ppm=a.grid,
            screen_ppm=a.grid[::2],
            rounds=a.oracle_rounds,
            polish=a.polish,
        )
        self._log("fixed baselines done; oracle search starts")
        r.oracle = search.run(seeds)
        self._log(f"oracle: {r.oracle.revenue_msat:,} msat ({r.oracle.label})")
        r.searched = list(search.evaluations)
        r.evaluations = len(r.searched) - len(seeds)
        r.oracle_run = self._fixed_runs[r.oracle.fees]
        r.results = {name: future.result() for name, future in runs.items()}
        if not r.payments:
            r.payments = len(_trace(r.ref, a.days)[1])
            r.replayed = r.payments

    def _log(self, message: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"[{elapsed:6.0f} s] {self.report.ref}: {message}", file=sys.stderr, flush=True)

    def _key(self, result: RunResult) -> Fees:
        return tuple(result.final_fees[s] for s in self.report.scids)

    def _evaluation(self, result: RunResult, label: str) -> Evaluation:
        return Evaluation(
            fees=self._key(result),
            revenue_msat=result.revenue_msat,
            by_channel_msat=tuple(result.by_channel_msat[s] for s in self.report.scids),
            label=label,
        )

    def _evaluate(
        self, points: list[tuple[Fees, str]], keep: frozenset[int] | None
    ) -> list[Evaluation]:
        a, scids = self.args, self.report.scids
        self._log(f"{len(points)} fixed-fee replays: {points[0][1]} ...")
        futures = [
            self.pool.submit(
                fixed_job,
                self.report.ref,
                a.node,
                a.days,
                keep,
                dict(zip(scids, fees, strict=True)),
            )
            for fees, _ in points
        ]
        out = []
        for (fees, label), future in zip(points, futures, strict=True):
            result = future.result()
            self._fixed_runs[fees] = result
            out.append(self._evaluation(result, label))
        return out


# -- output -----------------------------------------------------------------------------------


def _ratio(value: int, oracle: int) -> str:
    return f"{value / oracle:.3f}" if oracle > 0 else "n/a"


def print_scenario(r: ScenarioReport, args: argparse.Namespace) -> None:
    print(
        f"\n== {r.name or r.ref}: {args.days:g} days, {args.node}, {len(r.scids)} priced channels"
    )
    if r.error:
        print(f"   failed: {r.error}")
        return
    assert r.oracle is not None and r.oracle_run is not None
    how = f"{r.replayed:,} of {r.payments:,} payments replayed (relevance filter)"
    if not r.exact:
        how = f"all {r.payments:,} payments replayed (competitors react: no filter)"
    print(f"   {how}; oracle: {r.evaluations} fixed-fee replays; wall {r.wall_s:.0f} s")
    oracle = r.oracle.revenue_msat
    print(f"   {'policy':<22}{'revenue_msat':>14}{'settled':>9}{'changes':>9}{'ratio':>8}")
    rows = [*((n, r.results[n]) for n in POLICY_ORDER), ("oracle", r.oracle_run)]
    for name, result in rows:
        settled = sum(result.settled_by_channel.values())
        print(
            f"   {name:<22}{result.revenue_msat:>14,}{settled:>9,}{result.changes:>9}"
            f"{_ratio(result.revenue_msat, oracle):>8}"
        )
    print(f"   oracle found by: {r.oracle.label}")
    ctl = r.results["controller"]
    best = best_baseline(r)
    churn = changes_per_channel_week(ctl, r.scids, args.days)
    print(
        f"   controller / best baseline ({best}): "
        f"{_ratio(ctl.revenue_msat, r.results[best].revenue_msat)}; fee changes per channel-week "
        f"after day 7: median {_median(churn):.2f}, max {max(churn, default=0):.2f}"
    )
    cold = cold_start_ratios(ctl, r.scids)
    if cold:
        print(
            f"   cold start: day-1 fee / competitors' median at start, median over channels "
            f"{_median(cold):.2f} (range {min(cold):.2f}-{max(cold):.2f})"
        )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(ctl.reasons.items(), key=lambda kv: -kv[1]))
    print(f"   controller changes by reason: {reasons or 'none'}")
    print("   per channel: oracle fee vs controller (time-weighted mean ppm, final ppm), msat")
    for i, scid in enumerate(r.scids):
        print(
            f"     {scid:<13} oracle {r.oracle.fees[i][1]:>5} ppm"
            f" {r.oracle.by_channel_msat[i]:>12,}"
            f" | controller {ctl.mean_fee_ppm[scid]:>7.0f} / {ctl.final_fees[scid][1]:>5} ppm"
            f" {ctl.by_channel_msat[scid]:>12,}"
        )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def best_baseline(r: ScenarioReport) -> str:
    """The simple baseline that earned most in this scenario (ties: table order)."""
    return max(BASELINES, key=lambda name: r.results[name].revenue_msat)


def cold_start_ratios(result: RunResult, scids: list[str]) -> list[float]:
    """Day-1 time-weighted fee over the competitors' median at the start, per channel."""
    out = []
    for scid in scids:
        market = result.start_market_ppm.get(scid)
        if market:
            out.append(result.first_day_fee_ppm[scid] / market)
    return out


def print_summary(reports: list[ScenarioReport], args: argparse.Namespace) -> None:
    """One line per scenario, then the issue's targets: worst case, pooled, churn, cold start."""
    done = [r for r in reports if r.error is None and r.oracle and r.oracle.revenue_msat > 0]
    print(f"\n== controller over {len(done)} scenario(s)")
    print(
        f"   {'scenario':<16}{'pay/h':>7}{'chans':>6}{'oracle_msat':>14}{'ctl/orc':>8}"
        f"{'best baseline':>22}{'bb/orc':>7}{'ctl/bb':>7}{'chg/ch-wk':>10}{'cold':>6}"
    )
    ratios_bb: list[tuple[float, str]] = []
    churn_all: list[float] = []
    cold_all: list[float] = []
    for r in done:
        assert r.oracle is not None
        ctl, best = r.results["controller"], best_baseline(r)
        bb = r.results[best].revenue_msat
        churn = changes_per_channel_week(ctl, r.scids, args.days)
        cold = cold_start_ratios(ctl, r.scids)
        churn_all += churn
        cold_all += cold
        vs_bb = ctl.revenue_msat / bb if bb > 0 else float("inf")
        ratios_bb.append((vs_bb, r.name))
        pay_h = load_scenario(r.ref).demand.payments_per_hour
        print(
            f"   {r.name:<16}{pay_h:>7g}{len(r.scids):>6}{r.oracle.revenue_msat:>14,}"
            f"{_ratio(ctl.revenue_msat, r.oracle.revenue_msat):>8}{best:>22}"
            f"{_ratio(bb, r.oracle.revenue_msat):>7}{vs_bb:>7.3f}{_median(churn):>10.2f}"
            f"{_median(cold):>6.2f}"
        )
    if not done:
        return
    oracle_total = sum(r.oracle.revenue_msat for r in done if r.oracle)
    ctl_total = sum(r.results["controller"].revenue_msat for r in done)
    bb_total = sum(r.results[best_baseline(r)].revenue_msat for r in done)
    worst, worst_name = min(ratios_bb)
    wins = sum(x >= 1 for x, _ in ratios_bb)
    print(
        f"   pooled: controller {_ratio(ctl_total, oracle_total)} of the oracle, best baselines "
        f"{_ratio(bb_total, oracle_total)}; controller >= best baseline in {wins} of {len(done)}"
    )
    print(f"   worst-case controller / best baseline: {worst:.3f} ({worst_name})")
    print(
        f"   fee changes per channel-week after day 7: median {_median(churn_all):.2f} over "
        f"{len(churn_all)} channels (p90 {sorted(churn_all)[int(0.9 * (len(churn_all) - 1))]:.2f})"
        if churn_all
        else "   fee changes per channel-week: n/a (run shorter than 8 days)"
    )
    if cold_all:
        print(
            f"   cold start: day-1 fee / competitors' median, median over {len(cold_all)} "
            f"channels {_median(cold_all):.2f}"
        )


def print_aggregate(reports: list[ScenarioReport]) -> None:
    done = [r for r in reports if r.error is None and r.oracle and r.oracle.revenue_msat > 0]
    print(f"\n== aggregate over {len(done)} scenario(s): ratio to the oracle")
    print(f"   {'policy':<22}{'mean':>8}{'pooled':>8}  per scenario")
    oracle_total = sum(r.oracle.revenue_msat for r in done if r.oracle)
    for name in POLICY_ORDER:
        ratios = [r.results[name].revenue_msat / r.oracle.revenue_msat for r in done if r.oracle]
        pooled = sum(r.results[name].revenue_msat for r in done)
        mean = sum(ratios) / len(ratios) if ratios else float("nan")
        per = " ".join(f"{r.name}={x:.3f}" for r, x in zip(done, ratios, strict=True))
        print(f"   {name:<22}{mean:>8.3f}{_ratio(pooled, oracle_total):>8}  {per}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scenario", action="append", help="builtin name, random-<seed>-<i>, or TOML/JSON file"
    )
    parser.add_argument(
        "--random",
        type=int,
        default=None,
        help=f"family draws (lnsim/scenario_family.py); default {DEFAULT_RANDOM} beside the "
        f"named four when neither --scenario nor --random is given",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="family seed")
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--node", default="nexus-02")
    parser.add_argument("--every-h", type=float, default=6.0, help="decision cadence (hours)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--oracle-rounds", type=int, default=3, help="all-channel step rounds")
    parser.add_argument("--polish", type=int, default=4, help="channels moved one at a time")
    parser.add_argument(
        "--grid", type=lambda s: tuple(int(v) for v in s.split(",")), default=FEE_GRID_PPM
    )
    parser.add_argument(
        "--exact", action="store_true", help="replay every payment (checks the relevance filter)"
    )
    args = parser.parse_args(argv)
    if args.days <= 0 or args.every_h <= 0 or args.jobs < 1:
        parser.error("--days, --every-h and --jobs must be positive")
    if args.random is not None and args.random < 0:
        parser.error("--random must be >= 0")
    return args


def scenario_refs(args: argparse.Namespace) -> list[str]:
    """--scenario refs plus --random draws; neither given: the named four plus 12 draws."""
    if args.scenario is None and args.random is None:
        named, count = list(DEFAULT_SCENARIOS), DEFAULT_RANDOM
    else:
        named, count = list(args.scenario or []), args.random or 0
    return named + [s.name for s in draw_scenarios(count, args.seed)]


def run_bench(
    args: argparse.Namespace, on_done: Callable[[ScenarioReport], None] | None = None
) -> list[ScenarioReport]:
    """Every scenario's policies and oracle over one process pool; `on_done` gets each report
    as its scenario finishes."""
    refs = scenario_refs(args)
    for ref in refs:  # fail fast on a bad scenario or node, before any simulation
        try:
            scenario = load_scenario(ref)
        except ScenarioError as exc:
            raise SystemExit(str(exc)) from exc
        if args.node not in {m.name for m in scenario.members}:
            members = ", ".join(m.name for m in scenario.members)
            raise SystemExit(f"scenario {ref}: no member {args.node!r} (members: {members})")
    # Light scenarios first and at most jobs + 1 at a time, so scenarios finish (and print) one
    # after another instead of all at the end: a run cut short still reports what it finished.
    order = sorted(refs, key=lambda ref: load_scenario(ref).demand.payments_per_hour)
    active = threading.Semaphore(args.jobs + 1)
    lock = threading.Lock()

    def run_one(bench: ScenarioBench) -> None:
        with active:
            bench.run()
        if on_done is not None:
            with lock:
                on_done(bench.report)

    # spawn, not fork: polars' thread pool does not survive a fork (the workers hang).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        benches = {ref: ScenarioBench(pool, args, ref) for ref in order}
        threads = [threading.Thread(target=run_one, args=(benches[ref],)) for ref in order]
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # start in order, so the semaphore admits the light ones first
        for thread in threads:
            thread.join()
    return [benches[ref].report for ref in refs]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()

    def done(report: ScenarioReport) -> None:
        print_scenario(report, args)
        sys.stdout.flush()

    reports = run_bench(args, done)
    print_aggregate(reports)
    print_summary(reports, args)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"\nwall time {time.monotonic() - started:.0f} s with {args.jobs} worker(s); "
        f"worker CPU {cpu.ru_utime + cpu.ru_stime:.0f} s"
    )
    return 1 if any(r.error for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
