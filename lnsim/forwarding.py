"""Executing a route hop by hop, and what the fleet nodes on it record.

An HTLC over a channel with a fleet end succeeds only if the sender's real (tracked) balance less
the channel reserve covers it, both ends are up and connected; over an external channel it
succeeds with the uniform-prior probability, since nobody knows external balances. A fleet node
that cannot forward books `local_failed` (4103, WIRE_TEMPORARY_CHANNEL_FAILURE); a failure
further on books `failed`; a payment that completes books `settled` at every fleet hop, moves the
tracked balances and credits the fee. That is all our loops ever see of the market, so it follows
CLN's listforwards semantics (dense created_index, updated_index only once resolved).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from lnsim.routing import Hop, hop_amounts
from lnsim.state import Channel, Forward, IncomeEvent, Network

TEMPORARY_CHANNEL_FAILURE = 0x1007  # 4103
TEMPORARY_CHANNEL_FAILURE_NAME = "WIRE_TEMPORARY_CHANNEL_FAILURE"


@dataclass(slots=True)
class Outcome:
    ok: bool
    failed_at: int | None  # index of the hop whose sender could not pass the HTLC on
    amounts_msat: list[int]


class Forwarder:
    def __init__(self, net: Network, rng: random.Random) -> None:
        self.net, self.rng = net, rng

    def hop_ok(self, sender: str, receiver: str, channel: Channel, amount_msat: int) -> bool:
        nodes = self.net.nodes
        s, r = nodes[sender], nodes[receiver]
        if not (s.online and r.online and channel.state == "CHANNELD_NORMAL"):
            return False
        if channel.to_node1_msat is None:
            cap = channel.capacity_msat
            return self.rng.random() * (cap + 1) < cap + 1 - amount_msat
        if s.fleet is not None and not s.fleet.peers.get(receiver, False):
            return False
        if r.fleet is not None and not r.fleet.peers.get(sender, False):
            return False
        return channel.local_msat(sender) - channel.reserve_msat >= amount_msat

    def execute(self, hops: list[Hop], amount_msat: int, at: float) -> Outcome:
        """Send over `hops` now; book forwards at fleet nodes; move balances on success."""
        amounts = hop_amounts(hops, amount_msat)
        failed_at = None
        for i, (sender, receiver, channel) in enumerate(hops):
            if not self.hop_ok(sender, receiver, channel, amounts[i]):
                failed_at = i
                break
        ok = failed_at is None
        offered = len(hops) if failed_at is None else failed_at
        htlc_ids = [self._offer(hops[i], amounts[i], ok) for i in range(offered)]
        payment_id = None
        for i in range(1, offered + (0 if ok else 1)):
            node = self.net.nodes[hops[i][0]]
            if node.fleet is not None:
                payment_id = payment_id or _payment_id(hops, amount_msat, at)
                self._book(hops, amounts, htlc_ids, i, failed_at, at, payment_id)
        if ok:
            for i, (sender, _, channel) in enumerate(hops):
                channel.move(sender, amounts[i])
        return Outcome(ok, failed_at, amounts)

    def _offer(self, hop: Hop, amount_msat: int, fulfilled: bool) -> int:
        """The HTLC id on this hop, and the in_/out_ counters of its fleet ends."""
        sender, receiver, channel = hop
        if channel.to_node1_msat is None:
            return 0
        htlc_id = channel.next_htlc_id.get(sender, 0)
        channel.next_htlc_id[sender] = htlc_id + 1
        out_stats, in_stats = channel.stats.get(sender), channel.stats.get(receiver)
        if out_stats is not None:
            out_stats.out_payments_offered += 1
            out_stats.out_offered_msat += amount_msat
            if fulfilled:
                out_stats.out_payments_fulfilled += 1
                out_stats.out_fulfilled_msat += amount_msat
        if in_stats is not None:
            in_stats.in_payments_offered += 1
            in_stats.in_offered_msat += amount_msat
            if fulfilled:
                in_stats.in_payments_fulfilled += 1
                in_stats.in_fulfilled_msat += amount_msat
        return htlc_id

    def _book(
        self,
        hops: list[Hop],
        amounts: list[int],
        htlc_ids: list[int],
        i: int,
        failed_at: int | None,
        at: float,
        payment_id: str,
    ) -> None:
        """Hop i's sender is a fleet node forwarding hops[i-1] -> hops[i]."""
        node = self.net.nodes[hops[i][0]]
        fleet = node.fleet
        assert fleet is not None
        in_channel, out_channel = hops[i - 1][2], hops[i][2]
        in_msat, out_msat = amounts[i - 1], amounts[i]
        status = "settled" if failed_at is None else "local_failed" if failed_at == i else "failed"
        forward = Forward(
            created_index=len(fleet.forwards) + 1,
            in_channel=in_channel.scid,
            in_htlc_id=htlc_ids[i - 1],
            in_msat=in_msat,
            status=status,
            received_time=round(at, 3),
            out_channel=out_channel.scid,
        )
        if status == "local_failed":
            forward.failcode = TEMPORARY_CHANNEL_FAILURE
            forward.failreason = TEMPORARY_CHANNEL_FAILURE_NAME
        else:
            forward.out_htlc_id = htlc_ids[i]
            forward.out_msat, forward.fee_msat = out_msat, in_msat - out_msat
            forward.resolved_time = round(at + 0.3 + self.rng.random() * 2, 3)
            fleet.forwards_updated_index += 1
            forward.updated_index = fleet.forwards_updated_index
        if status == "settled" and in_msat > out_msat:
            fleet.fees_collected_msat += in_msat - out_msat
            fleet.income.append(
                IncomeEvent(
                    account=out_channel.channel_id,
                    tag="routed",
                    credit_msat=in_msat - out_msat,
                    debit_msat=0,
                    timestamp=int(at),
                    payment_id=payment_id,
                )
            )
        fleet.forwards.append(forward)


def _payment_id(hops: list[Hop], amount_msat: int, at: float) -> str:
    text = f"{hops[0][0]}:{hops[-1][1]}:{amount_msat}:{at:.3f}"
    return hashlib.sha256(text.encode()).hexdigest()
