"""What the simulated demand gives a fleet member, per scenario, measured in one run.

    .venv/bin/python bench/calibrate_sim.py [--days 21] [--node nexus-02|all] [--scenario X ...]

The audit scenario must reproduce the audit's thin traffic (~51 settled forwards, ~1,000 sat of
fees in 21 days at nexus-02 with the audit's own fees); busy must give hundreds of settled
forwards a day. `wall_s` is the time `Market.advance` took for the whole period (one call).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lnsim.build import build_network
from lnsim.market import Market
from lnsim.scenario import load_scenario

DAY_S = 86_400


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=21)
    parser.add_argument("--node", default="nexus-02", help="member name, or 'all'")
    parser.add_argument("--scenario", action="append", help="builtin name or TOML/JSON file")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    print(
        f"{'scenario':<10} {'node':<9} {'days':>5} {'settled':>8} {'failed':>7} {'local_f':>8} "
        f"{'fees_sat':>9} {'volume_sat':>12} {'settled/d':>9} {'payments':>9} {'build_s':>7} "
        f"{'wall_s':>7}"
    )
    for name in args.scenario or ["audit", "busy"]:
        scenario = load_scenario(name)
        started = time.perf_counter()
        net = build_network(scenario, args.seed)
        market = Market(net, scenario, args.seed)
        build_s = time.perf_counter() - started
        report = market.advance(int(args.days * DAY_S))
        for member in scenario.members:
            if args.node != "all" and member.name != args.node:
                continue
            fleet = net.node_by_name(member.name).fleet
            assert fleet is not None
            counts = Counter(f.status for f in fleet.forwards)
            settled = [f for f in fleet.forwards if f.status == "settled"]
            fees_sat = sum(f.fee_msat or 0 for f in settled) // 1000
            volume_sat = sum(f.out_msat or 0 for f in settled) // 1000
            print(
                f"{scenario.name:<10} {member.name:<9} {args.days:>5g} {counts['settled']:>8} "
                f"{counts['failed']:>7} {counts['local_failed']:>8} {fees_sat:>9} "
                f"{volume_sat:>12} {counts['settled'] / args.days:>9.1f} "
                f"{report.payments:>9} {build_s:>7.2f} {report.wall_s:>7.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
