"""Payer path finding over public gossip: cheapest by fee plus a price on failure risk.

Payers see capacities and fees, never balances, so the risk of a hop is the uniform-balance prior
-log((c + 1 - a) / (c + 1)) (Pickhardt et al.), priced at `risk_ppm` of the amount; a small
per-hop penalty favours short routes, as real payers' delay costs do. Our fees therefore change
which route a payer picks: competing routes exist and the cheapest good one wins.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

from lnsim.state import Channel, Network

Hop = tuple[str, str, Channel]  # (from, to, channel)


class Graph:
    """Incoming-edge lists, rebuilt only when channels open or close."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.rebuild()

    def rebuild(self) -> None:
        incoming: dict[str, list[tuple[str, Channel, int]]] = {pk: [] for pk in self.net.nodes}
        for channel in self.net.channels.values():
            if not channel.is_normal:
                continue
            incoming[channel.node2].append((channel.node1, channel, 0))
            incoming[channel.node1].append((channel.node2, channel, 1))
        self.incoming = incoming

    def route(
        self,
        source: str,
        dest: str,
        amount_msat: int,
        *,
        risk_ppm: int,
        hop_ppm: int,
        excluded: Iterable[str] = (),
        avoid_nodes: Iterable[str] = (),
        max_fee_msat: int | None = None,
    ) -> list[Hop] | None:
        """Cheapest route source -> dest, found backwards from dest (fees accrue toward source)."""
        skip_scids = set(excluded)
        skip_nodes = set(avoid_nodes)
        risk_scale = amount_msat * risk_ppm / 1e6
        hop_cost = amount_msat * hop_ppm / 1e6
        best = {dest: 0.0}
        fees = {dest: 0}
        nxt: dict[str, tuple[str, Channel]] = {}
        done: set[str] = set()
        heap = [(0.0, dest)]
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            cost, node = pop(heap)
            if node in done:
                continue
            done.add(node)
            if node == source:
                break
            fee_so_far = fees[node]
            for prev, channel, direction in self.incoming.get(node, ()):
                if prev in done or channel.scid in skip_scids or prev in skip_nodes:
                    continue
                policy = channel.policies[direction]
                carried = amount_msat + fee_so_far
                cap = channel.capacity_msat
                if not policy.enabled or carried > policy.htlc_max_msat or carried >= cap:
                    continue
                fee = (
                    0
                    if prev == source
                    else policy.base_fee_msat + carried * policy.fee_ppm // 1_000_000
                )
                if max_fee_msat is not None and fee_so_far + fee > max_fee_msat:
                    continue
                new = cost + fee + hop_cost - risk_scale * math.log((cap + 1 - carried) / (cap + 1))
                if new < best.get(prev, math.inf):
                    best[prev] = new
                    fees[prev] = fee_so_far + fee
                    nxt[prev] = (node, channel)
                    push(heap, (new, prev))
        if source not in nxt:
            return None
        hops: list[Hop] = []
        node = source
        while node != dest:
            to, channel = nxt[node]
            hops.append((node, to, channel))
            node = to
        return hops
