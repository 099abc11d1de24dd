"""max-HTLC lever benchmark: local failures and routing revenue with and without it.

    python bench/htlcmax.py [--scenario NAME_OR_FILE ...] [--random N] [--seed S]
                            [--days 21] [--cadence-h 12]

The lever in isolation, on the market alone (no fee or rebalance loop, so nothing else differs
between the arms): every `cadence-h` the production decision (`engine.htlcmax.decide_htlcmax`)
is taken for every fleet channel from the simulator's state, as the rebalance flow takes it
from a snapshot, and applied as `setchannel ... htlcmax` would. Same scenario, same seed in both
arms. Printed per scenario, fleet-wide: local failures per day, settled forwards and routing
revenue, each arm, and the ratio on/off, all from this one run. bench/rebalance.py measures the
lever with every loop running (its `ours-no-htlcmax` arm on busy).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from engine.htlcmax import decide_htlcmax
from lnsim.scenario_family import draw_scenarios
from lnsim.scenario_model import load_scenario
from lnsim.simmarket import Market
from lnsim.topology import build_network
from models.htlcmax import HtlcmaxChannel
from models.settings import HtlcmaxConfig

HOUR_S = 3600
DAY_S = 86_400


def run_arm(ref: str, days: int, cadence_h: int, lever: bool) -> dict[str, float]:
    scenario = load_scenario(ref)
    net = build_network(scenario)
    market = Market(net, scenario)
    config = HtlcmaxConfig()
    fleet = list(net.fleet_nodes())
    members = {n.pubkey for n in fleet}
    started = time.monotonic()
    changes = 0
    for _ in range(days * 24 // cadence_h):
        if lever:
            now = datetime.fromtimestamp(net.now, UTC)
            for node in fleet:
                channels = [
                    HtlcmaxChannel(
                        scid=c.scid,
                        peer_id=c.other(node.pubkey),
                        is_fleet=c.other(node.pubkey) in members,
                        usable=c.is_normal,
                        capacity_msat=c.capacity_msat,
                        local_msat=c.local_msat(node.pubkey),
                        spendable_msat=max(0, c.local_msat(node.pubkey) - c.reserve_msat),
                        posted_htlcmax_msat=c.policy_from(node.pubkey).htlc_max_msat,
                    )
                    for c in net.channels_of(node.pubkey)
                    if c.is_normal
                ]
                for d in decide_htlcmax(channels, config, now):
                    if d.apply:
                        market.set_fee(node.pubkey, d.scid, None, None, htlcmax=d.new_htlcmax_msat)
                        changes += 1
        market.advance(cadence_h * HOUR_S)
    forwards = [f for node in fleet for f in node.fleet.forwards]  # type: ignore[union-attr]
    settled = [f for f in forwards if f.status == "settled"]
    return {
        "local_failed_per_day": sum(f.status == "local_failed" for f in forwards) / days,
        "settled": len(settled),
        "revenue_sat": sum(f.fee_msat or 0 for f in settled) / 1000,
        "changes": changes,
        "wall_s": time.monotonic() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append")
    parser.add_argument("--random", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--cadence-h", type=int, default=12)
    args = parser.parse_args(argv)
    refs = (args.scenario or ["busy"]) + [s.name for s in draw_scenarios(args.random, args.seed)]
    print(f"max-HTLC lever: {args.days} simulated days, decided every {args.cadence_h} h")
    print(
        f"  {'scenario':<14}{'arm':<5}{'local fail/d':>13}{'settled':>9}{'revenue sat':>13}"
        f"{'changes':>9}{'wall s':>8}"
    )
    for ref in refs:
        arms = {arm: run_arm(ref, args.days, args.cadence_h, arm == "on") for arm in ("off", "on")}
        for arm, r in arms.items():
            print(
                f"  {ref:<14}{arm:<5}{r['local_failed_per_day']:>13.1f}{r['settled']:>9}"
                f"{r['revenue_sat']:>13.0f}{r['changes']:>9}{r['wall_s']:>8.0f}"
            )
        off, on = arms["off"], arms["on"]
        fail = (
            on["local_failed_per_day"] / off["local_failed_per_day"]
            if off["local_failed_per_day"]
            else 0
        )
        rev = on["revenue_sat"] / off["revenue_sat"] if off["revenue_sat"] else 0
        print(f"  {ref:<14}on/off: local failures {fail:.2f}x, revenue {rev:.3f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
