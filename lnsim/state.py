"""The simulated network's in-memory state: what the market mutates and the RPC layer reads.

One `Network` holds every node and channel. The market (demand, routing, sling, competitor
dynamics) writes it while the clock advances; the JSON-RPC handlers render CLN responses from it.
Both take `Network.lock` so an RPC call never sees a half-applied payment.

Balances are tracked only on channels with a fleet endpoint. External channels have no known
balance: payers and the market treat them with the uniform-balance prior (Pickhardt et al.), so
an HTLC of `a` over capacity `c` succeeds with probability (c + 1 - a) / (c + 1).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lnsim.bookkeeper import Bookkeeper

FORWARD_STATUSES = ("offered", "settled", "local_failed", "failed")


@dataclass(slots=True)
class Policy:
    """One direction of a channel, as gossip shows it (listchannels)."""

    base_fee_msat: int
    fee_ppm: int
    htlc_max_msat: int
    htlc_min_msat: int = 0
    cltv_delta: int = 40
    enabled: bool = True
    last_update: int = 0

    def fee_msat(self, amount_msat: int) -> int:
        return self.base_fee_msat + (amount_msat * self.fee_ppm) // 1_000_000


@dataclass(slots=True)
class Channel:
    """A public channel. Direction 0 is node1 -> node2 (node1 < node2 as hex, as in BOLT 7)."""

    scid: str
    node1: str
    node2: str
    capacity_msat: int
    policies: dict[int, Policy]
    funding_txid: str
    funding_outnum: int
    channel_id: str
    opened_at: int
    # node1's balance; None on external channels (unknown, modelled by the uniform prior).
    to_node1_msat: int | None = None
    state: str = "CHANNELD_NORMAL"
    opener_is_node1: bool = True
    closer: str | None = None
    # HTLC counters per fleet endpoint pubkey, for listpeerchannels' in_/out_ stats.
    stats: dict[str, ChannelStats] = field(default_factory=dict)
    next_htlc_id: dict[str, int] = field(default_factory=dict)

    def other(self, pubkey: str) -> str:
        return self.node2 if pubkey == self.node1 else self.node1

    def direction_from(self, pubkey: str) -> int:
        return 0 if pubkey == self.node1 else 1

    def policy_from(self, pubkey: str) -> Policy:
        return self.policies[self.direction_from(pubkey)]

    def local_msat(self, pubkey: str) -> int:
        """Balance on `pubkey`'s side; only valid on tracked (fleet) channels."""
        if self.to_node1_msat is None:
            raise ValueError(f"channel {self.scid} has no tracked balance")
        if pubkey == self.node1:
            return self.to_node1_msat
        return self.capacity_msat - self.to_node1_msat

    def move(self, from_pubkey: str, amount_msat: int) -> None:
        """Shift `amount_msat` from `from_pubkey`'s side to the other side."""
        if self.to_node1_msat is None:
            return
        delta = -amount_msat if from_pubkey == self.node1 else amount_msat
        self.to_node1_msat += delta
        if not 0 <= self.to_node1_msat <= self.capacity_msat:
            raise AssertionError(f"channel {self.scid} balance out of range")

    @property
    def reserve_msat(self) -> int:
        """Each side's channel reserve: 1% of capacity, as CLN defaults."""
        return self.capacity_msat // 100

    @property
    def is_normal(self) -> bool:
        return self.state == "CHANNELD_NORMAL"


@dataclass(slots=True)
class ChannelStats:
    in_payments_offered: int = 0
    in_offered_msat: int = 0
    in_payments_fulfilled: int = 0
    in_fulfilled_msat: int = 0
    out_payments_offered: int = 0
    out_offered_msat: int = 0
    out_payments_fulfilled: int = 0
    out_fulfilled_msat: int = 0


@dataclass(slots=True)
class Forward:
    """One listforwards row of a fleet node. created_index is 1-based and dense."""

    created_index: int
    in_channel: str
    in_htlc_id: int
    in_msat: int
    status: str
    received_time: float
    out_channel: str | None = None
    out_htlc_id: int | None = None
    out_msat: int | None = None
    fee_msat: int | None = None
    resolved_time: float | None = None
    failcode: int | None = None
    failreason: str | None = None
    updated_index: int | None = None
    # The serialised listforwards entry, cached by the RPC layer (forwards are final once
    # resolved; anything that changes a forward must reset this).
    json_cache: str | None = None


@dataclass(slots=True)
class Utxo:
    txid: str
    output: int
    amount_msat: int
    blockheight: int
    status: str = "confirmed"
    reserved: bool = False


@dataclass(slots=True)
class FleetState:
    """What only a fleet node (one we run an RPC server for) has."""

    name: str
    utxos: list[Utxo] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    forwards_updated_index: int = 0
    books: Bookkeeper = field(default_factory=Bookkeeper)
    fees_collected_msat: int = 0
    # peers we have a connection to (pubkey -> connected); channels need a connected peer.
    peers: dict[str, bool] = field(default_factory=dict)
    # closed channels kept for listclosedchannels / bookkeeping.
    closed: list[Channel] = field(default_factory=list)


@dataclass(slots=True)
class Node:
    pubkey: str
    alias: str
    online: bool = True
    fleet: FleetState | None = None
    channels: list[str] = field(default_factory=list)  # scids, open or pending

    @property
    def is_fleet(self) -> bool:
        return self.fleet is not None


@dataclass
class Network:
    """All nodes and channels, the clock, and the lock that guards them."""

    nodes: dict[str, Node]
    channels: dict[str, Channel]
    now: int  # simulated unix seconds
    start_time: int
    start_blockheight: int = 930_000
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def blockheight(self) -> int:
        """One block every 600 simulated seconds."""
        return self.start_blockheight + (self.now - self.start_time) // 600

    def fleet_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.fleet is not None]

    def node_by_name(self, name: str) -> Node:
        for n in self.nodes.values():
            if n.fleet is not None and n.fleet.name == name:
                return n
        raise KeyError(f"no fleet node named {name!r}")

    def channels_of(self, pubkey: str) -> list[Channel]:
        return [self.channels[s] for s in self.nodes[pubkey].channels]
