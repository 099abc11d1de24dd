"""What the simulated demand gives a fleet member, per scenario, measured in one run.

    .venv/bin/python bench/calibrate_sim.py [--days 21] [--node nexus-02] [--scenario FILE ...]

The audit scenario must reproduce the audit's thin traffic (~51 forwards, ~1,000 sat of fees in
21 days at nexus-02 with the audit's own fees); busy must give hundreds of forwards a day.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lnsim.scenario_model import load_scenario
from lnsim.simmarket import Market
from lnsim.topology import build_network


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--node", default="nexus-02")
    parser.add_argument("--scenario", action="append")
    args = parser.parse_args()
    print(
        f"{'scenario':<10} {'node':<9} {'settled':>8} {'failed':>7} {'local_f':>8} "
        f"{'fees_sat':>9} {'volume_sat':>12} {'fwd/day':>8} {'payments':>9} {'wall_s':>7}"
    )
    for name in args.scenario or ["audit", "busy"]:
        scenario = load_scenario(name)
        net = build_network(scenario)
        market = Market(net, scenario)
        started = time.monotonic()
        report = market.advance(args.days * 86_400)
        wall_s = time.monotonic() - started
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
                f"{scenario.name:<10} {member.name:<9} {counts['settled']:>8} "
                f"{counts['failed']:>7} {counts['local_failed']:>8} {fees_sat:>9} "
                f"{volume_sat:>12} {counts['settled'] / args.days:>8.1f} "
                f"{report.payments:>9} {wall_s:>7.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
