"""What a fleet node can do to the market: fees, peers, opens, closes, stopping and starting.

The RPC layer calls these while holding `network.lock`. They validate like lightningd does and
raise `SimRpcError` with CLN's codes, so our loops meet the same refusals as in production
(an open we cannot afford, a peer we never connected to).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lnsim.errors import (
    CONNECT_ALL_ADDRESSES_FAILED,
    CONNECT_NO_KNOWN_ADDRESS,
    FUND_CANNOT_AFFORD,
    FUND_OUTPUT_IS_DUST,
    LIGHTNINGD,
    SimRpcError,
)
from lnsim.graph import channel_id
from lnsim.state import Channel, ChannelStats, FleetState, IncomeEvent, Network, Policy, Utxo

if TYPE_CHECKING:
    from lnsim.routing import Router
    from lnsim.scenario import Scenario
    from lnsim.sling import Sling

BLOCK_S = 600
MIN_CHANNEL_SAT = 20_000
OPEN_STATES = ("CHANNELD_NORMAL", "CHANNELD_AWAITING_LOCKIN")


class NodeActions:
    """Mixed into `Market`, which provides the attributes declared here."""

    net: Network
    scenario: Scenario
    router: Router
    sling: dict[str, Sling]
    _scid_counter: Iterator[int]

    def _schedule_confirm(self, at: float, ref: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _fleet(self, node_pk: str) -> FleetState:
        fleet = self.net.nodes[node_pk].fleet
        if fleet is None:
            raise SimRpcError(LIGHTNINGD, f"{node_pk} is not a fleet node")
        return fleet

    def fleet_channel(self, node_pk: str, ref: str) -> list[Channel]:
        """Open channels of `node_pk` matching a scid, channel_id, peer id, or 'all'."""
        chans = [c for c in self.net.channels_of(node_pk) if c.state in OPEN_STATES]
        if ref == "all":
            return chans
        found = [c for c in chans if ref in (c.scid, c.channel_id, c.other(node_pk))]
        if not found:
            raise SimRpcError(LIGHTNINGD, f"Could not find active channel with id {ref}")
        return found

    def set_fee(
        self,
        node_pk: str,
        scid_or_peer: str,
        base_msat: int | None,
        ppm: int | None,
        htlcmin: int | None = None,
        htlcmax: int | None = None,
    ) -> list[Channel]:
        """setchannel: the change is gossiped at once (payers see it on their next route)."""
        channels = self.fleet_channel(node_pk, scid_or_peer)
        for channel in channels:
            policy = channel.policy_from(node_pk)
            if base_msat is not None:
                policy.base_fee_msat = base_msat
            if ppm is not None:
                policy.fee_ppm = ppm
            if htlcmin is not None:
                policy.htlc_min_msat = htlcmin
            if htlcmax is not None:
                policy.htlc_max_msat = min(htlcmax, channel.capacity_msat)
            policy.last_update = self.net.now
        return channels

    def connect(self, node_pk: str, peer_pk: str) -> None:
        peer = self.net.nodes.get(peer_pk)
        if peer is None:
            raise SimRpcError(
                CONNECT_ALL_ADDRESSES_FAILED,
    CONNECT_NO_KNOWN_ADDRESS, f"Unable to connect, no address known for peer {peer_pk}"
            )
        if not peer.online:
            raise SimRpcError(CONNECT_ALL_ADDRESSES_FAILED, f"{peer_pk}: peer is offline (connection refused)")
        self._fleet(node_pk).peers[peer_pk] = True
        if peer.fleet is not None:
            peer.fleet.peers[node_pk] = True

    def feerates(self) -> dict[str, int]:
        spec = self.scenario.onchain
        return {
            "perkw": spec.feerate_perkw,
            "open_sat": spec.feerate_perkw * spec.open_weight // 1000,
            "close_sat": spec.feerate_perkw * spec.close_weight // 1000,
        }

    def fund_channel(
        self, node_pk: str, peer_pk: str, amount_sat: int, feerate_perkw: int | None = None
    ) -> tuple[Channel, str, int]:
        """fundchannel: spends wallet UTXOs, pays the on-chain fee, locks in after N blocks."""
        node, fleet = self.net.nodes[node_pk], self._fleet(node_pk)
        if peer_pk not in self.net.nodes or not fleet.peers.get(peer_pk):
            raise SimRpcError(LIGHTNINGD, f"Unknown peer {peer_pk}: connect to it first")
        if amount_sat < MIN_CHANNEL_SAT:
            raise SimRpcError(
                FUND_OUTPUT_IS_DUST, f"{amount_sat}sat is below the minimum channel size"
            )
        spec = self.scenario.onchain
        fee_sat = (feerate_perkw or spec.feerate_perkw) * spec.open_weight // 1000
        spendable = sorted(
            (u for u in fleet.utxos if u.status == "confirmed" and not u.reserved),
            key=lambda u: (-u.amount_msat, u.txid),
        )
        need_msat = (amount_sat + fee_sat) * 1000
        total_msat = sum(u.amount_msat for u in spendable)
        if need_msat > total_msat:
            raise SimRpcError(
                FUND_CANNOT_AFFORD,
                f"Could not afford {amount_sat}sat using all {len(spendable)} available UTXOs: "
                f"{max(0, total_msat // 1000 - fee_sat)}sat available",
            )
        spent_msat = 0
        for utxo in spendable:
            if spent_msat >= need_msat:
                break
            fleet.utxos.remove(utxo)
            spent_msat += utxo.amount_msat
        height = self.net.blockheight
        txid = hashlib.sha256(f"fund:{node_pk}:{peer_pk}:{self.net.now}:{height}".encode())
        txid_hex = txid.hexdigest()
        if spent_msat > need_msat:
            fleet.utxos.append(
                Utxo(txid_hex, 1, spent_msat - need_msat, height, status="unconfirmed")
            )
        scid = f"{height + spec.lockin_blocks}x{100 + next(self._scid_counter)}x0"
        channel = self._new_channel(node_pk, peer_pk, amount_sat * 1000, scid, txid_hex)
        node.channels.append(scid)
        self.net.nodes[peer_pk].channels.append(scid)
        fleet.income.append(
            IncomeEvent("wallet", "onchain_fee", 0, fee_sat * 1000, self.net.now, txid=txid_hex)
        )
        self._schedule_confirm(self.net.now + spec.lockin_blocks * BLOCK_S, scid)
        self._schedule_confirm(self.net.now + BLOCK_S, f"utxo:{node_pk}:{txid_hex}")
        return channel, txid_hex, 0

    def _new_channel(self, opener: str, peer: str, cap_msat: int, scid: str, txid: str) -> Channel:
        node1, node2 = sorted((opener, peer))
        mine = Policy(1000, 10, cap_msat * 99 // 100, 0, 34, last_update=self.net.now)
        theirs = Policy(1000, 10, cap_msat * 99 // 100, 0, 40, last_update=self.net.now)
        channel = Channel(
            scid=scid,
            node1=node1,
            node2=node2,
            capacity_msat=cap_msat,
            policies={0: mine, 1: theirs} if opener == node1 else {0: theirs, 1: mine},
            funding_txid=txid,
            funding_outnum=0,
            channel_id=channel_id(txid, 0),
            opened_at=self.net.now,
            to_node1_msat=cap_msat if opener == node1 else 0,
            state="CHANNELD_AWAITING_LOCKIN",
            opener_is_node1=opener == node1,
        )
        for end in (opener, peer):
            channel.next_htlc_id[end] = 0
            if self.net.nodes[end].fleet is not None:
                channel.stats[end] = ChannelStats()
        self.net.channels[scid] = channel
        return channel

    def close_channel(self, node_pk: str, scid_or_peer: str) -> dict[str, Any]:
        """Mutual close: balances go to each fleet end's wallet once the close confirms."""
        channel = self.fleet_channel(node_pk, scid_or_peer)[0]
        if channel.state != "CHANNELD_NORMAL":
            raise SimRpcError(LIGHTNINGD, f"Channel {channel.scid} is in state {channel.state}")
        fee_sat = self.feerates()["close_sat"]
        opener = channel.node1 if channel.opener_is_node1 else channel.node2
        txid = hashlib.sha256(f"close:{channel.scid}:{self.net.now}".encode()).hexdigest()
        channel.state, channel.closer = "CLOSINGD_COMPLETE", "local"
        for output, end in enumerate((channel.node1, channel.node2)):
            fleet = self.net.nodes[end].fleet
            if fleet is None:
                continue
            payout = channel.local_msat(end) - (fee_sat * 1000 if end == opener else 0)
            if payout > 0:
                fleet.utxos.append(
                    Utxo(txid, output, payout, self.net.blockheight, status="unconfirmed")
                )
            if end == opener:
                fleet.income.append(
                    IncomeEvent(
                        channel.channel_id, "onchain_fee", 0, fee_sat * 1000, self.net.now, txid=txid
                    )
                )
            fleet.closed.append(channel)
        self._schedule_confirm(self.net.now + BLOCK_S, f"utxo:{node_pk}:{txid}")
        other = channel.other(node_pk)
        if self.net.nodes[other].fleet is not None:
            self._schedule_confirm(self.net.now + BLOCK_S, f"utxo:{other}:{txid}")
        self.router.rebuild()
        return {"type": "mutual", "txids": [txid], "txs": ["02" + "00" * 60]}

    def _confirm(self, ref: str) -> None:
        """A funding tx locked in (scid), or a wallet output confirmed ('utxo:pk:txid')."""
        if ref.startswith("utxo:"):
            _, pk, txid = ref.split(":")
            fleet = self.net.nodes[pk].fleet
            assert fleet is not None
            for utxo in fleet.utxos:
                if utxo.txid == txid:
                    utxo.status = "confirmed"
            return
        channel = self.net.channels.get(ref)
        if channel is not None and channel.state == "CHANNELD_AWAITING_LOCKIN":
            channel.state = "CHANNELD_NORMAL"
            self.router.rebuild()

    def set_node_online(self, pk: str, online: bool) -> None:
        """Stop or start a node: a stopped fleet node's channels are unusable, peers see it gone.

        sling jobs survive a restart but stay stopped (sling-autogo defaults to false);
        sling-once runs are forgotten.
        """
        node = self.net.nodes[pk]
        node.online = online
        for other in self.net.fleet_nodes():
            assert other.fleet is not None
            if other.pubkey != pk and pk in other.fleet.peers:
                other.fleet.peers[pk] = online and other.online
        if node.fleet is not None:
            for peer in node.fleet.peers:
                node.fleet.peers[peer] = online and self.net.nodes[peer].online
            if pk in self.sling:
                self.sling[pk].node_restarted() if online else self.sling[pk].node_stopped()
        self.router.set_hidden(pk, not online)
