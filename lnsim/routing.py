"""Payer path finding over public gossip: cheapest by fee plus a price on failure risk.

Payers see capacities and fees, never balances, so the risk of a hop carrying `a` over capacity
`c` is the uniform-balance prior -log((c + 1 - a) / (c + 1)) (Pickhardt et al.), priced at
`risk_factor_ppm` of the amount; a small per-hop penalty favours short routes, as real payers'
delay costs do. Our fees therefore change which route a payer picks: competing routes exist and
the cheapest good one wins, which is what makes fee experiments against the simulator meaningful.

This is the simulator's hot loop (every payment attempt runs it), so the graph is kept as
integer-indexed incoming-edge lists rebuilt only when channels open or close; policies are
referenced, not copied, so fee changes are seen without a rebuild.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from math import inf, log1p

from lnsim.state import Channel, Network, Policy

Hop = tuple[str, str, Channel]  # (sender, receiver, channel)
# (sender index, channel, the sender's policy, capacity msat)
_Edge = tuple[int, Channel, Policy, int]


def hop_amounts(hops: list[Hop], amount_msat: int) -> list[int]:
    """Amount carried over each hop: every forwarding node charges its outgoing policy.

    The fee is base + ppm * out / 1e6 rounded down, as CLN computes it; the first hop's sender is
    the payer and charges nothing.
    """
    amounts = [0] * len(hops)
    carried = amount_msat
    for i in range(len(hops) - 1, -1, -1):
        amounts[i] = carried
        if i > 0:
            sender, _, channel = hops[i]
            policy = channel.policy_from(sender)
            carried += policy.base_fee_msat + carried * policy.fee_ppm // 1_000_000
    return amounts


class Router:
    """Dijkstra from the destination backwards, amount-aware (fees accrue toward the source)."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.index: dict[str, int] = {}
        self.pubkeys: list[str] = []
        self.incoming: list[list[_Edge]] = []
        self.hidden: list[bool] = []
        self.rebuild()

    def rebuild(self) -> None:
        """Re-index after channels open, confirm or close (not needed for fee changes)."""
        hidden = {pk for pk, i in self.index.items() if self.hidden[i]}
        self.pubkeys = sorted(self.net.nodes)
        self.index = {pk: i for i, pk in enumerate(self.pubkeys)}
        self.incoming = [[] for _ in self.pubkeys]
        self.hidden = [pk in hidden for pk in self.pubkeys]
        for scid in sorted(self.net.channels):
            channel = self.net.channels[scid]
            if not channel.is_normal:
                continue
            n1, n2 = self.index[channel.node1], self.index[channel.node2]
            cap = channel.capacity_msat
            self.incoming[n2].append((n1, channel, channel.policies[0], cap))
            self.incoming[n1].append((n2, channel, channel.policies[1], cap))

    def set_hidden(self, pubkey: str, hidden: bool) -> None:
        """Payers avoid a node once gossip tells them it is down (its channels disabled)."""
        self.hidden[self.index[pubkey]] = hidden

    def route(
        self,
        source: str,
        dest: str,
        amount_msat: int,
        *,
        risk_factor_ppm: int,
        hop_cost_ppm: int,
        excluded_scids: Collection[str] = (),
        avoid_nodes: Collection[str] = (),
        max_fee_msat: int | None = None,
    ) -> list[Hop] | None:
        """The cheapest route source -> dest for `amount_msat`, or None.

        `max_fee_msat` prunes partial routes whose fees already exceed it (sling's maxppm).
        """
        index = self.index
        src, dst = index[source], index[dest]
        n = len(self.pubkeys)
        blocked = list(self.hidden)
        for pk in avoid_nodes:
            blocked[index[pk]] = True
        blocked[src] = blocked[dst] = False
        risk_scale = amount_msat * risk_factor_ppm / 1e6
        hop_cost = amount_msat * hop_cost_ppm / 1e6
        fee_cap = inf if max_fee_msat is None else max_fee_msat
        best = [inf] * n
        fees = [0] * n
        next_hop: list[tuple[int, Channel] | None] = [None] * n
        done = [False] * n
        best[dst] = 0.0
        heap = [(0.0, dst)]
        pop, push, incoming = heapq.heappop, heapq.heappush, self.incoming
        while heap:
            cost, node = pop(heap)
            if done[node]:
                continue
            done[node] = True
            if node == src:
                break
            fee_so_far = fees[node]
            carried = amount_msat + fee_so_far
            for prev, channel, policy, cap in incoming[node]:
                if (
                    done[prev]
                    or blocked[prev]
                    or not policy.enabled
                    or carried > policy.htlc_max_msat
                    or carried >= cap
                    or carried < policy.htlc_min_msat
                    or (excluded_scids and channel.scid in excluded_scids)
                ):
                    continue
                fee = (
                    0
                    if prev == src
                    else policy.base_fee_msat + carried * policy.fee_ppm // 1_000_000
                )
                if fee_so_far + fee > fee_cap:
                    continue
                new = cost + fee + hop_cost - risk_scale * log1p(-carried / (cap + 1))
                if new < best[prev]:
                    best[prev] = new
                    fees[prev] = fee_so_far + fee
                    next_hop[prev] = (node, channel)
                    push(heap, (new, prev))
        if next_hop[src] is None:
            return None
        hops: list[Hop] = []
        node = src
        pubkeys = self.pubkeys
        while node != dst:
            step = next_hop[node]
            assert step is not None
            to, channel = step
            hops.append((pubkeys[node], pubkeys[to], channel))
            node = to
        return hops
