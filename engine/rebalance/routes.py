"""What a circular route costs before we pay for a job that cannot find one (pure).

A rebalance into D from S is a payment to ourselves: us → S → … → D → us. Every node after us
charges its posted fee on the channel it forwards over, S for its first hop and D for the last
one into us. Sling prices routes from the same public gossip, so if the cheapest route over the
graph costs more than the gain allows, sling answers NoCheapRoute after holding a reservation
and a breaker strike: the audit's "every rebalance failed" in its most common form. Quoting the
route first turns those failures into a reasoned skip, and lets maxppm sit just above the route
price instead of at half the gain, so reservations tie up less budget.

The quote ignores balances (gossip does not carry them): a route that is cheap enough may still
fail for liquidity, which the breaker handles. It is a floor on the price, never a promise.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PPM = 1_000_000


@dataclass(frozen=True)
class HalfChannel:
    """One direction of a public channel, as gossip announces it."""

    source: str
    destination: str
    scid: str
    base_fee_msat: int
    fee_ppm: int
    htlc_max_msat: int
    capacity_msat: int
    active: bool

    def fee_msat(self, amount_msat: int) -> int:
        return self.base_fee_msat + amount_msat * self.fee_ppm // PPM

    def carries(self, amount_msat: int) -> bool:
        fits = amount_msat <= self.htlc_max_msat and amount_msat < self.capacity_msat
        return self.active and fits


@dataclass(frozen=True)
class RouteQuote:
    """The cheapest circular route for one amount: its fee, price and hops."""

    fee_msat: int
    amount_msat: int
    scids: tuple[str, ...]

    @property
    def ppm(self) -> int:
        return math.ceil(self.fee_msat * PPM / self.amount_msat)


class GossipGraph:
    """Public half-channels indexed by the node they lead into (routes are built backwards,
    from the destination, because each hop's fee depends on what the later hops add)."""

    def __init__(self, half_channels: Iterable[HalfChannel]) -> None:
        self.incoming: dict[str, list[HalfChannel]] = {}
        self.by_key: dict[tuple[str, str], HalfChannel] = {}
        for half in half_channels:
            self.incoming.setdefault(half.destination, []).append(half)
            self.by_key[(half.scid, half.source)] = half

    def __len__(self) -> int:
        return len(self.by_key)

    @classmethod
    def from_listchannels(cls, channels: Iterable[Mapping[str, Any]]) -> GossipGraph:
        """From `listchannels` entries; entries missing a field are skipped, not guessed."""
        halves = []
        for c in channels:
            try:
                halves.append(
                    HalfChannel(
                        source=str(c["source"]),
                        destination=str(c["destination"]),
                        scid=str(c["short_channel_id"]),
                        base_fee_msat=int(c["base_fee_millisatoshi"]),
                        fee_ppm=int(c["fee_per_millionth"]),
                        htlc_max_msat=int(c.get("htlc_maximum_msat", c["amount_msat"])),
                        capacity_msat=int(c["amount_msat"]),
                        active=bool(c.get("active", True)),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return cls(halves)


class RoutePricer:
    """Quotes circular routes for one node, one backward search per (destination, amount):
    the search from D prices every possible source peer at once."""

    def __init__(self, graph: GossipGraph, node_id: str) -> None:
        self.graph, self.node_id = graph, node_id
        self._trees: dict[tuple[str, str, int], _Tree | None] = {}

    def quote(
        self, *, source_peer: str, dest_peer: str, dest_scid: str, amount_msat: int
    ) -> RouteQuote | None:
        """Cheapest route us → source_peer → … → dest_peer → us (over `dest_scid`) by fee,
        never through our own node again; None when gossip has no such route for the amount."""
        key = (dest_scid, dest_peer, amount_msat)
        if key not in self._trees:
            self._trees[key] = _search(self.graph, self.node_id, dest_peer, dest_scid, amount_msat)
        tree = self._trees[key]
        if tree is None or source_peer not in tree.fees:
            return None
        scids, node = [], source_peer
        while node != dest_peer:
            node, scid = tree.via[node]
            scids.append(scid)
        return RouteQuote(tree.fees[source_peer], amount_msat, (*scids, dest_scid))


@dataclass(frozen=True)
class _Tree:
    fees: dict[str, int]  # node -> fee from there back to us via dest_peer
    via: dict[str, tuple[str, str]]  # node -> (next node, scid) toward dest_peer


def _search(
    graph: GossipGraph, node_id: str, dest_peer: str, dest_scid: str, amount_msat: int
) -> _Tree | None:
    last = graph.by_key.get((dest_scid, dest_peer))
    if last is None or not last.carries(amount_msat):
        return None
    start_fee = last.fee_msat(amount_msat)
    best = {dest_peer: start_fee}
    fees: dict[str, int] = {}
    via: dict[str, tuple[str, str]] = {}
    heap = [(start_fee, dest_peer)]
    while heap:
        fee, node = heapq.heappop(heap)
        if node in fees:
            continue
        fees[node] = fee
        carried = amount_msat + fee
        for half in graph.incoming.get(node, ()):
            prev = half.source
            if prev == node_id or prev in fees or not half.carries(carried):
                continue
            total = fee + half.fee_msat(carried)
            if total < best.get(prev, math.inf):
                best[prev] = total
                via[prev] = (node, half.scid)
                heapq.heappush(heap, (total, prev))
    return _Tree(fees, via)
