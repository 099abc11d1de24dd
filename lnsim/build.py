"""Build the simulated network: a real neighbourhood of the Lightning graph plus our fleet.

External nodes, capacities and fees come from the public gossip snapshot. Balances are not
public, so external channels keep none (`to_node1_msat=None`: payers and the market use the
uniform prior); channels with a fleet end get the balances the scenario sets, because those are
what our loops read and act on.
"""

from __future__ import annotations

import hashlib
import random
import statistics

from lnsim.graph import (
    channel_id,
    external_scid,
    funding_txid,
    select_neighbourhood,
)
from lnsim.scenario import ChannelSpec, Scenario
from lnsim.state import Channel, ChannelStats, FleetState, Network, Node, Policy, Utxo

DAY_S = 86_400
CLN_DEFAULT_CLTV = 34


def fleet_pubkey(name: str) -> str:
    """A deterministic, well-formed compressed pubkey (02/03 + 64 hex) for a member name."""
    digest = hashlib.sha256(f"hiveops-sim-member:{name}".encode()).hexdigest()
    return ("02" if int(digest[-1], 16) % 2 == 0 else "03") + digest


def build_network(scenario: Scenario, seed: int | None = None) -> Network:
    """External neighbourhood + fleet members, their channels, peers and wallets."""
    seed = scenario.seed if seed is None else seed
    rng = random.Random(seed)
    spec = scenario.network
    hood = select_neighbourhood(
        spec.external_nodes,
        seed,
        hub_rank=spec.hub_rank,
        fanout=spec.fanout,
        max_channels_per_node=spec.max_channels_per_node,
    )
    now = scenario.start_s
    net = Network(
        nodes={}, channels={}, now=now, start_time=now, start_blockheight=scenario.start_blockheight
    )
    idx_to_pk: dict[int, str] = {}
    for idx, pk, alias in hood.nodes.select("node_idx", "pubkey", "alias").iter_rows():
        idx_to_pk[idx] = pk
        net.nodes[pk] = Node(pubkey=pk, alias=alias or pk[:20])
    for row in hood.half_channels.iter_rows(named=True):
        _add_half_channel(net, row, idx_to_pk, rng)
    for channel in net.channels.values():
        for direction in (0, 1):  # one-directional gossip: the missing side is disabled
            if direction not in channel.policies:
                channel.policies[direction] = Policy(0, 0, channel.capacity_msat, enabled=False)
    _add_fleet(net, scenario)
    return net


def _add_half_channel(
    net: Network, row: dict, idx_to_pk: dict[int, str], rng: random.Random
) -> None:
    src, dst = idx_to_pk[row["source_idx"]], idx_to_pk[row["destination_idx"]]
    scid = external_scid(row["channel_idx"])
    channel = net.channels.get(scid)
    if channel is None:
        node1, node2 = sorted((src, dst))
        txid = funding_txid(scid)
        channel = Channel(
            scid=scid,
            node1=node1,
            node2=node2,
            capacity_msat=row["capacity_sat"] * 1000,
            policies={},
            funding_txid=txid,
            funding_outnum=0,
            channel_id=channel_id(txid, 0),
            opened_at=net.now - DAY_S * (100 + row["channel_idx"] % 900),
        )
        net.channels[scid] = channel
        net.nodes[node1].channels.append(scid)
        net.nodes[node2].channels.append(scid)
    channel.policies[channel.direction_from(src)] = Policy(
        base_fee_msat=row["base_fee_msat"],
        fee_ppm=row["fee_ppm"],
        htlc_max_msat=min(row["htlc_maximum_msat"] or channel.capacity_msat, channel.capacity_msat),
        htlc_min_msat=row["htlc_minimum_msat"],
        cltv_delta=row["cltv_delta"],
        last_update=net.now - rng.randrange(14 * DAY_S),
    )


def rank_external(net: Network, rule: str) -> list[str]:
    """External pubkeys ordered for a peer rule: `rank` by channel count, `capacity` by sats."""
    def capacity(pk: str) -> int:
        return sum(net.channels[s].capacity_msat for s in net.nodes[pk].channels)

    external = [pk for pk, n in net.nodes.items() if n.fleet is None]
    if rule == "capacity":
        return sorted(external, key=lambda pk: (-capacity(pk), pk))
    return sorted(external, key=lambda pk: (-len(net.nodes[pk].channels), -capacity(pk), pk))


def _peer_policy(net: Network, peer: str, capacity_msat: int) -> Policy:
    """What an external peer charges toward us: its own median fee elsewhere."""
    mine = [
        net.channels[s].policy_from(peer)
        for s in net.nodes[peer].channels
        if net.channels[s].policy_from(peer).enabled
    ]
    ppm = int(statistics.median(p.fee_ppm for p in mine)) if mine else 100
    base = int(statistics.median(p.base_fee_msat for p in mine)) if mine else 1000
    return Policy(base, ppm, htlc_max_msat=capacity_msat * 99 // 100, last_update=net.now - 7200)


def _add_fleet(net: Network, scenario: Scenario) -> None:
    members = {m.name: fleet_pubkey(m.name) for m in scenario.members}
    for member in scenario.members:
        pk = members[member.name]
        fleet = FleetState(name=member.name)
        if member.onchain_sat:
            fleet.utxos.append(
                Utxo(
                    txid=hashlib.sha256(f"wallet:{member.name}".encode()).hexdigest(),
                    output=0,
                    amount_msat=member.onchain_sat * 1000,
                    blockheight=net.blockheight - 1000,
                )
            )
        net.nodes[pk] = Node(pubkey=pk, alias=member.alias or member.name, fleet=fleet)
    ranked = {rule: rank_external(net, rule) for rule in ("rank", "capacity")}
    fixed = {c.scid for m in scenario.members for c in m.channels if c.scid}
    counter = 0
    for member in scenario.members:
        for spec in member.channels:
            counter += 1
            scid = spec.scid or _fleet_scid(net, counter, fixed)
            kind, _, ref = spec.peer.partition(":")
            if kind == "fleet":
                peer = members[ref]
            else:
                candidates = ranked[kind]
                peer = candidates[int(ref) % len(candidates)]
            _add_fleet_channel(net, members[member.name], peer, spec, scid)


def _fleet_scid(net: Network, counter: int, taken: set[str]) -> str:
    block = net.start_blockheight - 4000 + 97 * counter
    scid = f"{block}x{(counter * 613) % 2900 + 17}x{counter % 2}"
    return scid if scid not in taken else f"{block + 1}x1x0"


def _add_fleet_channel(net: Network, pk: str, peer: str, spec: ChannelSpec, scid: str) -> None:
    cap = spec.capacity_sat * 1000
    local = int(cap * spec.local_share)
    node1, node2 = sorted((pk, peer))
    ours = Policy(
        spec.fee_base_msat,
        spec.fee_ppm,
        htlc_max_msat=cap * 99 // 100,
        cltv_delta=CLN_DEFAULT_CLTV,
        last_update=net.now - 3600,
    )
    if net.nodes[peer].fleet is not None:  # fleet channels are priced by the opener's spec
        theirs = Policy(spec.fee_base_msat, spec.fee_ppm, cap * 99 // 100, 0, CLN_DEFAULT_CLTV)
        theirs.last_update = net.now - 3600
    else:
        theirs = _peer_policy(net, peer, cap)
    txid = funding_txid(scid)
    outnum = int(scid.split("x")[2])
    channel = Channel(
        scid=scid,
        node1=node1,
        node2=node2,
        capacity_msat=cap,
        policies={0: ours, 1: theirs} if pk == node1 else {0: theirs, 1: ours},
        funding_txid=txid,
        funding_outnum=outnum,
        channel_id=channel_id(txid, outnum),
        opened_at=net.now - DAY_S * (30 + int(scid.split("x")[1]) % 90),
        to_node1_msat=local if pk == node1 else cap - local,
        opener_is_node1=pk == node1,
    )
    for end in (pk, peer):
        fleet = net.nodes[end].fleet
        if fleet is not None:
            channel.stats[end] = ChannelStats()
            fleet.peers[channel.other(end)] = True
        channel.next_htlc_id[end] = 0
    net.channels[scid] = channel
    net.nodes[pk].channels.append(scid)
    net.nodes[peer].channels.append(scid)
