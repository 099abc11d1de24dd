"""Channel-open candidates from the gossip graph, and fleet members' open proposals.

A candidate is scored by what a channel to it would route against what it costs:

    revenue  = our realised yield (fees per msat of capacity per day, last 30 days)
               × amount × horizon days × hub factor (candidate degree / median degree, ≤ 3)
               × rejection penalty (previous rejections of this peer or of opens for cost)
    cost     = on-chain open fee + amount × capital cost per year × horizon / 365
    raw      = revenue − cost;  only candidates with raw > 0 become opportunities
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import polars as pl

from models.advisor import AdvisorConfig, Opportunity, OpportunityType, OwnerLoop

MSAT_PER_SAT = 1_000
YEAR_DAYS = 365
MAX_HUB_FACTOR = 3.0
MIN_OPEN_SAT = 100_000
ONCHAIN_RESERVE_SAT = 50_000  # kept back for closes and anchors

GRAPH_SCHEMA: dict[str, Any] = {
    "node_id": pl.String,
    "channels": pl.Int64,
    "capacity_msat": pl.Int64,
    "median_fee_ppm": pl.Float64,
}


def graph_summary(listchannels: list[dict[str, Any]]) -> pl.DataFrame:
    """Per graph node: public channels, their capacity and the median fee it charges."""
    per_node: dict[str, dict[str, Any]] = {}
    for c in listchannels:
        if not c.get("active", True):
            continue
        src = str(c["source"])
        entry = per_node.setdefault(src, {"scids": set(), "capacity_msat": 0, "fees": []})
        scid = str(c["short_channel_id"])
        if scid not in entry["scids"]:
            entry["scids"].add(scid)
            entry["capacity_msat"] += int(c.get("amount_msat") or 0)
        entry["fees"].append(int(c.get("fee_per_millionth") or 0))
    rows = [
        {
            "node_id": node,
            "channels": len(e["scids"]),
            "capacity_msat": e["capacity_msat"],
            "median_fee_ppm": float(statistics.median(e["fees"])) if e["fees"] else 0.0,
        }
        for node, e in sorted(per_node.items())
    ]
    return pl.DataFrame(rows, schema=GRAPH_SCHEMA)


@dataclass(frozen=True)
class NodeEconomics:
    """One fleet node's money facts, as the advisor.node_economics query shapes them."""

    node_id: str
    capacity_msat: int
    onchain_msat: int
    revenue_30d_msat: int
    peers: frozenset[str]

    @property
    def yield_per_msat_day(self) -> float:
        return self.revenue_30d_msat / self.capacity_msat / 30 if self.capacity_msat else 0.0


def open_amount_sat(node: NodeEconomics, config: AdvisorConfig) -> int:
    spendable_sat = node.onchain_msat // MSAT_PER_SAT - config.open_cost_sat - ONCHAIN_RESERVE_SAT
    return min(config.open_amount_sat, max(spendable_sat, 0))


def score_open(
    node: NodeEconomics,
    candidate: dict[str, Any],
    median_degree: float,
    amount_sat: int,
    penalty: float,
    config: AdvisorConfig,
) -> tuple[int, str]:
    hub = min(MAX_HUB_FACTOR, candidate["channels"] / median_degree) if median_degree else 1.0
    amount_msat = amount_sat * MSAT_PER_SAT
    days = config.open_horizon_days
    revenue = node.yield_per_msat_day * amount_msat * days * hub * penalty
    capital = amount_msat * config.capital_cost_pct_per_year / 100 * days / YEAR_DAYS
    cost = config.open_cost_sat * MSAT_PER_SAT + capital
    reason = (
        f"{amount_sat} sat at our yield {node.yield_per_msat_day * 1e6:.3f} ppm/day × hub "
        f"{hub:.2f} ({candidate['channels']} channels) × penalty {penalty:.2f} over {days} days "
        f"= {revenue / MSAT_PER_SAT:.0f} sat, minus {config.open_cost_sat} sat on-chain and "
        f"{capital / MSAT_PER_SAT:.0f} sat capital cost"
    )
    return round(revenue - cost), reason


def scan_opens(
    node: NodeEconomics,
    graph: pl.DataFrame,
    excluded: frozenset[str],
    penalties: dict[str, float],
    type_penalty: float,
    config: AdvisorConfig,
) -> list[Opportunity]:
    """The best `max_open_candidates` peers to open to from `node`, if any pays for itself."""
    amount_sat = open_amount_sat(node, config)
    if graph.is_empty() or amount_sat < MIN_OPEN_SAT or config.max_open_candidates == 0:
        return []
    median_degree = float(graph["channels"].median() or 0)  # type: ignore[arg-type]
    scored = []
    for candidate in graph.iter_rows(named=True):
        peer = candidate["node_id"]
        if peer in excluded or peer in node.peers or peer == node.node_id:
            continue
        penalty = penalties.get(peer, 1.0) * type_penalty
        raw, reason = score_open(node, candidate, median_degree, amount_sat, penalty, config)
        if raw > 0:
            scored.append((raw, peer, reason, candidate))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [
        Opportunity(
            opportunity_type=OpportunityType.CHANNEL_OPEN,
            node_id=node.node_id,
            target=peer,
            action="fundchannel",
            action_params={"peer_id": peer, "amount_sat": amount_sat},
            snapshot_metrics={
                **candidate,
                "median_degree": median_degree,
                "yield_ppm_per_day": node.yield_per_msat_day * 1e6,
                "onchain_msat": node.onchain_msat,
                "node_capacity_msat": node.capacity_msat,
            },
            raw_estimate_msat=raw,
            estimate_reason=reason,
            size=amount_sat,
            owner_loop=OwnerLoop.ADVISOR,
        )
        for raw, peer, reason, candidate in scored[: config.max_open_candidates]
    ]


def _first(row: dict[str, Any], *names: str) -> Any:
    return next((row[n] for n in names if row.get(n) is not None), None)


def scan_fleet_proposals(
    proposals: pl.DataFrame, nodes: dict[str, NodeEconomics], config: AdvisorConfig
) -> list[Opportunity]:
    """Turn the fleet loop's channel_open_proposal rows into opportunities (tolerant of its
    column names: the fleet engineer owns that table)."""
    found = []
    for row in proposals.iter_rows(named=True):
        node_id = _first(row, "node_id", "member_id", "requester_id")
        peer = _first(row, "peer_id", "target", "target_id")
        if node_id is None or peer is None:
            continue
        node = nodes.get(node_id)
        amount_sat = int(_first(row, "amount_sat") or config.open_amount_sat)
        stated = _first(row, "expected_benefit_msat", "predicted_benefit_msat")
        if stated is not None:
            raw, reason = int(stated), "the fleet loop's expected benefit for this open"
        elif node is not None:
            raw, reason = score_open(node, {"channels": 1}, 1.0, amount_sat, 1.0, config)
            reason = "fleet proposal scored as an average-degree open: " + reason
        else:
            raw, reason = 0, "proposing member has no economics in the warehouse yet"
        found.append(
            Opportunity(
                opportunity_type=OpportunityType.FLEET_ASSISTANCE,
                node_id=node_id,
                target=peer,
                action="fundchannel",
                action_params={"peer_id": peer, "amount_sat": amount_sat},
                snapshot_metrics={
                    k: v if isinstance(v, int | float | str | bool) or v is None else str(v)
                    for k, v in row.items()
                },
                raw_estimate_msat=raw,
                estimate_reason=reason,
                size=amount_sat,
                owner_loop=OwnerLoop.ADVISOR,
            )
        )
    return found
