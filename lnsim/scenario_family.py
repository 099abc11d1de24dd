"""A documented distribution of scenarios, so benches judge controllers on markets they never saw.

`draw_scenarios(n, seed)` returns n valid `Scenario`s named `random-<seed>-<i>`. Scenario i is a
pure function of (seed, i) (its own random stream), so the first k of `draw_scenarios(n, seed)`
are the same for every n >= k and a name alone identifies a scenario (`scenario_by_name`), which
is how bench worker processes rebuild one. The distribution is described in docs/SIMULATOR.md
("Scenario family"); the ranges below are the contract other benches rely on.

The benched node is always `nexus-02` (4-20 external channels plus a fleet channel), beside a
small `nexus-01` and, half the time, a `nexus-03`, like the named scenarios.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta

from lnsim.scenario_model import (
    ChannelSpec,
    CompetitorSpec,
    DemandSpec,
    MemberSpec,
    NetworkSpec,
    Scenario,
)

NAME_RE = re.compile(r"^random-(-?\d+)-(\d+)$")
BENCH_NODE = "nexus-02"

# The ranges (docs/SIMULATOR.md lists the same). Log-uniform where the quantity spans decades.
PAYMENTS_PER_HOUR = (3.0, 600.0)  # log-uniform: thin audit-like nodes to busy hubs
AMOUNT_MEDIAN_SAT = (10_000, 200_000)  # log-uniform
AMOUNT_SIGMA = (0.8, 1.5)  # uniform
RISK_PPM = (0, 1_000)  # uniform: price-insensitive (high) to fee-driven payers (low)
HOP_PPM = (0, 30)  # uniform
WALK_EVERY_S = (3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)  # choice
WALK_FRACTION = (0.0, 0.25)  # uniform
WALK_STEP = (0.0, 0.35)  # uniform
UNDERCUT_ZERO_P = 0.5  # half the markets ignore us (the replay's relevance filter holds there)
UNDERCUT_SHARE = (0.05, 0.8)  # uniform, for the other half
UNDERCUT_PCT = (5.0, 25.0)  # uniform
EXTERNAL_NODES = (30, 100)  # uniform int: neighbourhood size
HUB_RANK = (0, 80)  # uniform int: where the neighbourhood's BFS starts
CHANNELS = (4, 20)  # uniform int: nexus-02's external channels
CAPACITY_SAT = (500_000, 20_000_000)  # log-uniform per channel
START_FEE_PPM = (1, 1_000)  # log-uniform: what the operator posted before hiveops took over
START_DAY_RANGE = 300  # start date uniform over 2026-01-01 + [0, 300) days


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _local_share(rng: random.Random) -> float:
    """Mixed balances: a third balanced, a third one-sided (full or empty), a third anywhere."""
    kind = rng.random()
    if kind < 1 / 3:
        return round(rng.uniform(0.35, 0.65), 3)
    if kind < 2 / 3:
        return round(rng.choice((rng.uniform(0.0, 0.08), rng.uniform(0.9, 1.0))), 3)
    return round(rng.uniform(0.0, 1.0), 3)


def _channels(rng: random.Random, count: int, nodes: int) -> list[ChannelSpec]:
    ranks = rng.sample(range(nodes), count)
    return [
        ChannelSpec(
            peer=f"rank:{rank}",
            capacity_sat=int(_log_uniform(rng, *CAPACITY_SAT)) // 1000 * 1000,
            local_share=_local_share(rng),
            fee_ppm=int(_log_uniform(rng, *START_FEE_PPM)),
        )
        for rank in sorted(ranks)
    ]


def draw_scenario(seed: int, index: int) -> Scenario:
    """Scenario `index` of the family at `seed`, from a stream of its own."""
    rng = random.Random(f"hiveops-scenario-family:{seed}:{index}")
    nodes = rng.randint(*EXTERNAL_NODES)
    hub_rank = rng.randint(*HUB_RANK)
    undercut = 0.0 if rng.random() < UNDERCUT_ZERO_P else round(rng.uniform(*UNDERCUT_SHARE), 3)
    demand = DemandSpec(
        payments_per_hour=round(_log_uniform(rng, *PAYMENTS_PER_HOUR), 2),
        amount_median_sat=int(_log_uniform(rng, *AMOUNT_MEDIAN_SAT)),
        amount_sigma=round(rng.uniform(*AMOUNT_SIGMA), 2),
        risk_ppm=rng.randint(*RISK_PPM),
        hop_ppm=rng.randint(*HOP_PPM),
    )
    competitors = CompetitorSpec(
        walk_every_s=rng.choice(WALK_EVERY_S),
        walk_fraction=round(rng.uniform(*WALK_FRACTION), 3),
        walk_step=round(rng.uniform(*WALK_STEP), 3),
        undercut_share=undercut,
        undercut_pct=round(rng.uniform(*UNDERCUT_PCT), 1),
    )
    fleet_cap = int(_log_uniform(rng, 1_000_000, 8_000_000)) // 1000 * 1000
    members = [
        MemberSpec(
            name="nexus-01",
            onchain_sat=2_000_000,
            channels=[
                ChannelSpec(
                    peer="fleet:nexus-02", capacity_sat=fleet_cap, local_share=0.5, fee_ppm=0
                ),
                *_channels(rng, rng.randint(1, 2), nodes),
            ],
        ),
        MemberSpec(
            name=BENCH_NODE,
            onchain_sat=2_000_000,
            channels=_channels(rng, rng.randint(*CHANNELS), nodes),
        ),
    ]
    if rng.random() < 0.5:
        members.append(
            MemberSpec(name="nexus-03", onchain_sat=500_000, channels=_channels(rng, 1, nodes))
        )
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(START_DAY_RANGE))
    return Scenario(
        name=f"random-{seed}-{index}",
        description=(
            f"family draw {index} at seed {seed}: {demand.payments_per_hour:g}/h, median "
            f"{demand.amount_median_sat:,} sat, risk {demand.risk_ppm} ppm, hop {demand.hop_ppm}, "
            f"undercut {undercut:g}, {nodes} nodes from hub rank {hub_rank}, "
            f"{len(members[1].channels)} channels"
        ),
        seed=rng.randrange(1, 2**31),
        start=start,
        network=NetworkSpec(external_nodes=nodes, hub_rank=hub_rank),
        demand=demand,
        competitors=competitors,
        members=members,
    )


def draw_scenarios(n: int, seed: int) -> list[Scenario]:
    """n scenarios of the family; deterministic for (n, seed), a prefix of any larger n."""
    if n < 0:
        raise ValueError(f"draw_scenarios: n must be >= 0, got {n}")
    return [draw_scenario(seed, i) for i in range(n)]


def scenario_by_name(name: str) -> Scenario | None:
    """The family scenario a `random-<seed>-<i>` name stands for, else None."""
    match = NAME_RE.match(name)
    return draw_scenario(int(match[1]), int(match[2])) if match else None
