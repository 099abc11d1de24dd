"""The market: payments between external nodes, competitor fee moves, peer outages, and what
our nodes see of them (forwards, balances, fees).

An HTLC over a fleet channel succeeds only if the sender's real balance (less the reserve) covers
it and both ends are online; over an external channel it succeeds with the uniform-prior
probability. A fleet node that cannot forward records `local_failed`; a failure after it records
`failed`; a payment that completes records `settled` at every fleet hop and moves balances.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from lnsim.bookkeeper import payment_id
from lnsim.pathfind import Graph, Hop
from lnsim.scenario_model import Scenario
from lnsim.state import Channel, Forward, Network

TEMPORARY_CHANNEL_FAILURE = 0x1007


@dataclass
class AdvanceReport:
    payments: int = 0
    succeeded: int = 0
    fleet_forwards: int = 0
    rebalance_attempts: int = 0
    wall_s: float = 0.0


@dataclass
class HopResult:
    ok: bool
    failed_at: int | None  # index of the hop (channel) that failed
    amounts_msat: list[int] = field(default_factory=list)


def hop_amounts(hops: list[Hop], amount_msat: int) -> list[int]:
    """Amount carried over each hop; each forwarding node charges its outgoing policy."""
    amounts = [0] * len(hops)
    carried = amount_msat
    for i in range(len(hops) - 1, -1, -1):
        amounts[i] = carried
        if i > 0:
            sender, _, channel = hops[i]
            policy = channel.policy_from(sender)
            carried += policy.base_fee_msat + carried * policy.fee_ppm // 1_000_000
    return amounts


class Payments:
    """Sends payments over the network and books them at the fleet nodes they cross."""

    def __init__(self, net: Network, graph: Graph, scenario: Scenario, rng: random.Random) -> None:
        self.net, self.graph, self.scenario, self.rng = net, graph, scenario, rng
        self.offline_until: dict[str, float] = {}

    def hop_ok(self, sender: str, receiver: str, channel: Channel, amount_msat: int) -> bool:
        nodes = self.net.nodes
        if not nodes[sender].online or not nodes[receiver].online:
            return False
        if self.offline_until.get(sender, 0) > self.net.now:
            return False
        if self.offline_until.get(receiver, 0) > self.net.now:
            return False
        if not channel.is_normal:
            return False
        if channel.to_node1_msat is not None:
            # lightningd refuses to offer an HTLC above its own advertised htlc_maximum_msat
            if amount_msat > channel.policy_from(sender).htlc_max_msat:
                return False
            return channel.local_msat(sender) - channel.reserve_msat >= amount_msat
        cap = channel.capacity_msat
        return self.rng.random() < (cap + 1 - amount_msat) / (cap + 1)

    def execute(self, hops: list[Hop], amount_msat: int, at: float) -> HopResult:
        amounts = hop_amounts(hops, amount_msat)
        failed_at = None
        for i, (sender, receiver, channel) in enumerate(hops):
            if not self.hop_ok(sender, receiver, channel, amounts[i]):
                failed_at = i
                break
        self._book(hops, amounts, failed_at, at)
        if failed_at is None:
            for i, (sender, _, channel) in enumerate(hops):
                channel.move(sender, amounts[i])
        return HopResult(failed_at is None, failed_at, amounts)

    def _book(self, hops: list[Hop], amounts: list[int], failed_at: int | None, at: float) -> None:
        for i in range(1, len(hops)):
            node = self.net.nodes[hops[i][0]]
            if node.fleet is None or (failed_at is not None and failed_at < i):
                continue
            in_channel, out_channel = hops[i - 1][2], hops[i][2]
            in_msat, out_msat = amounts[i - 1], amounts[i]
            fleet = node.fleet
            status = (
                "settled" if failed_at is None else "local_failed" if failed_at == i else "failed"
            )
            forward = Forward(
                created_index=len(fleet.forwards) + 1,
                in_channel=in_channel.scid,
                in_htlc_id=self._htlc_id(in_channel, node.pubkey),
                in_msat=in_msat,
                status=status,
                received_time=round(at, 3),
                out_channel=out_channel.scid,
            )
            stats_in = in_channel.stats.get(node.pubkey)
            stats_out = out_channel.stats.get(node.pubkey)
            if stats_in:
                stats_in.in_payments_offered += 1
                stats_in.in_offered_msat += in_msat
            if status == "local_failed":
                forward.failcode = TEMPORARY_CHANNEL_FAILURE
                forward.failreason = "WIRE_TEMPORARY_CHANNEL_FAILURE"
            else:
                forward.out_htlc_id = self._htlc_id(out_channel, node.pubkey)
                forward.out_msat = out_msat
                forward.fee_msat = in_msat - out_msat
                forward.resolved_time = round(at + 0.5 + self.rng.random() * 2, 3)
                fleet.forwards_updated_index += 1
                forward.updated_index = fleet.forwards_updated_index
                if stats_out:
                    stats_out.out_payments_offered += 1
                    stats_out.out_offered_msat += out_msat
            if status == "settled":
                fee = in_msat - out_msat
                fleet.fees_collected_msat += fee
                if stats_in:
                    stats_in.in_payments_fulfilled += 1
                    stats_in.in_fulfilled_msat += in_msat
                if stats_out:
                    stats_out.out_payments_fulfilled += 1
                    stats_out.out_fulfilled_msat += out_msat
                # bookkeeper books the settlement (also a 0-fee one) when it resolves
                assert forward.resolved_time is not None
                fleet.books.routed(
                    in_channel.channel_id,
                    out_channel.channel_id,
                    in_msat,
                    out_msat,
                    int(forward.resolved_time),
                    payment_id(node.pubkey, forward.created_index),
                )
            fleet.forwards.append(forward)

    @staticmethod
    def _htlc_id(channel: Channel, pubkey: str) -> int:
        value = channel.next_htlc_id.get(pubkey, 0)
        channel.next_htlc_id[pubkey] = value + 1
        return value

    def pay(self, source: str, dest: str, amount_msat: int, at: float) -> tuple[bool, int]:
        """One payment with retries; returns (succeeded, forwards booked at fleet nodes)."""
        demand = self.scenario.demand
        excluded: set[str] = set()
        booked = 0
        for _ in range(demand.max_attempts):
            hops = self.graph.route(
                source,
                dest,
                amount_msat,
                risk_ppm=demand.risk_ppm,
                hop_ppm=demand.hop_ppm,
                excluded=excluded,
            )
            if hops is None:
                return False, booked
            booked += sum(1 for h in hops[1:] if self.net.nodes[h[0]].fleet is not None)
            result = self.execute(hops, amount_msat, at)
            if result.ok:
                return True, booked
            assert result.failed_at is not None
            excluded.add(hops[result.failed_at][2].scid)
        return False, booked

    def draw_amount_msat(self) -> int:
        d = self.scenario.demand
        sat = self.rng.lognormvariate(math.log(d.amount_median_sat), d.amount_sigma)
        return int(min(max(sat, d.amount_min_sat), d.amount_max_sat)) * 1000
