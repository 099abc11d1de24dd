"""Build the simulated network: a real neighbourhood of the Lightning graph plus our fleet.

External nodes, capacities and fees come from the public gossip snapshot shipped in lnsim/data
(see its SOURCE.md). Balances
are not public, so external channels keep none (payers and the market use the uniform prior);
fleet channels get the balances the scenario sets.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import deque
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import polars as pl

from lnsim.bookkeeper import AccountEvent
from lnsim.scenario_model import Scenario
from lnsim.state import Channel, ChannelStats, FleetState, Network, Node, Policy, Utxo

GRAPH_NAME = "ln-graph-2026-02-03"


def graph_dir() -> Traversable:
    """$HIVEOPS_GRAPH_DIR if set, else the snapshot shipped as package data in lnsim/data.

    importlib.resources, so the same call works from a checkout and from an installed wheel.
    """
    env = os.environ.get("HIVEOPS_GRAPH_DIR")
    folder: Traversable = Path(env) if env else files("lnsim") / "data"
    if not (folder / f"{GRAPH_NAME}.channels.parquet").is_file():
        where = f"HIVEOPS_GRAPH_DIR={env}" if env else f"the package data folder {folder}"
        fix = (
            "unset HIVEOPS_GRAPH_DIR to use the shipped snapshot, or point it at a folder holding "
            f"{GRAPH_NAME}.channels.parquet and {GRAPH_NAME}.nodes.parquet"
            if env
            else "reinstall hiveops (the wheel ships lnsim/data/*.parquet)"
        )
        raise FileNotFoundError(
            f"Lightning graph snapshot {GRAPH_NAME}.*.parquet not found in {where}: {fix}"
        )
    return folder


def read_graph(kind: str) -> pl.DataFrame:
    """One table of the snapshot: "channels" or "nodes"."""
    with (graph_dir() / f"{GRAPH_NAME}.{kind}.parquet").open("rb") as f:
        return pl.read_parquet(f)


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fleet_pubkey(name: str) -> str:
    digest = _hex(f"hiveops-sim-member:{name}")
    return ("02" if int(digest[0], 16) % 2 == 0 else "03") + digest[:64]


def _scid(channel_idx: int) -> str:
    return f"{700_000 + channel_idx // 3000}x{channel_idx % 3000}x0"


def _neighbourhood(
    channels: pl.DataFrame, size: int, hub_rank: int, rng: random.Random
) -> list[int]:
    """A connected set of `size` nodes grown breadth-first (random order) from a hub.

    Random order keeps the real mix of hubs and small nodes: small nodes have few routes, which is
    what gives a mid-sized router its traffic.
    """
    degree = (
        channels.group_by("source_idx")
        .agg(pl.len().alias("deg"))
        .sort(["deg", "source_idx"], descending=[True, False])
    )
    hub = degree["source_idx"][min(hub_rank, degree.height - 1)]
    neighbours: dict[int, list[int]] = {}
    for src, dst in channels.select("source_idx", "destination_idx").iter_rows():
        neighbours.setdefault(src, []).append(dst)
    chosen, seen, queue = [], {hub}, deque([hub])
    while queue and len(chosen) < size:
        node = queue.popleft()
        chosen.append(node)
        candidates = sorted(set(neighbours.get(node, [])))
        rng.shuffle(candidates)
        for nxt in candidates[:6]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return chosen


def _sparsify(channels: pl.DataFrame, keep: int = 8) -> pl.DataFrame:
    """Keep a channel when it is among the `keep` largest of either endpoint.

    Hubs in a real neighbourhood are connected to nearly everyone; payers route over the big
    channels anyway, and a sparser graph keeps path finding fast enough for month-long runs.
    """
    ranked = channels.with_columns(
        pl.col("capacity_sat").rank("ordinal", descending=True).over("source_idx").alias("r1"),
        pl.col("capacity_sat").rank("ordinal", descending=True).over("destination_idx").alias("r2"),
    )
    kept = ranked.filter((pl.col("r1") <= keep) | (pl.col("r2") <= keep))["channel_idx"].unique()
    return channels.filter(pl.col("channel_idx").is_in(kept))


def build_network(scenario: Scenario, seed: int | None = None) -> Network:
    rng = random.Random(scenario.seed if seed is None else seed)
    all_channels = read_graph("channels").filter(pl.col("enabled"))
    nodes_df = read_graph("nodes")
    chosen = _neighbourhood(
        all_channels, scenario.network.external_nodes, scenario.network.hub_rank, rng
    )
    chosen_set = set(chosen)
    sub = _sparsify(
        all_channels.filter(
            pl.col("source_idx").is_in(chosen_set) & pl.col("destination_idx").is_in(chosen_set)
        )
    )
    idx_to_pk = dict(
        nodes_df.filter(pl.col("node_idx").is_in(chosen_set))
        .select("node_idx", "pubkey")
        .iter_rows()
    )
    aliases = dict(nodes_df.select("pubkey", "alias").iter_rows())
    now = scenario.start_s
    net = Network(nodes={}, channels={}, now=now, start_time=now)
    for idx in chosen:
        pk = idx_to_pk[idx]
        net.nodes[pk] = Node(pubkey=pk, alias=aliases.get(pk) or pk[:20])
    for row in sub.iter_rows(named=True):
        src, dst = idx_to_pk[row["source_idx"]], idx_to_pk[row["destination_idx"]]
        scid = _scid(row["channel_idx"])
        node1, node2 = sorted((src, dst))
        channel = net.channels.get(scid)
        if channel is None:
            channel = Channel(
                scid=scid,
                node1=node1,
                node2=node2,
                capacity_msat=row["capacity_sat"] * 1000,
                policies={},
                funding_txid=_hex(scid),
                funding_outnum=0,
                channel_id=_hex("cid" + scid),
                opened_at=now - 86_400 * 200,
            )
            net.channels[scid] = channel
            net.nodes[node1].channels.append(scid)
            net.nodes[node2].channels.append(scid)
        htlc_max = row["htlc_maximum_msat"] or channel.capacity_msat
        channel.policies[0 if src == node1 else 1] = Policy(
            base_fee_msat=row["base_fee_msat"],
            fee_ppm=row["fee_ppm"],
            htlc_max_msat=min(htlc_max, channel.capacity_msat),
            htlc_min_msat=row["htlc_minimum_msat"],
            cltv_delta=row["cltv_delta"],
            last_update=now - rng.randrange(86_400 * 14),
        )
    # one-directional gossip: the missing direction is disabled
    for channel in net.channels.values():
        for direction in (0, 1):
            if direction not in channel.policies:
                channel.policies[direction] = Policy(0, 0, channel.capacity_msat, enabled=False)
    _add_fleet(net, scenario, chosen, idx_to_pk, rng)
    return net


def _add_fleet(
    net: Network,
    scenario: Scenario,
    chosen: list[int],
    idx_to_pk: dict[int, str],
    rng: random.Random,
) -> None:
    by_degree = sorted(chosen, key=lambda i: (-len(net.nodes[idx_to_pk[i]].channels), i))
    ranked = [idx_to_pk[i] for i in by_degree]
    members = {m.name: fleet_pubkey(m.name) for m in scenario.members}
    height = net.blockheight
    for member in scenario.members:
        pk = members[member.name]
        net.nodes[pk] = Node(
            pubkey=pk, alias=member.alias or member.name, fleet=FleetState(name=member.name)
        )
        if member.onchain_sat:
            utxo = Utxo(
                txid=_hex(f"utxo:{member.name}"),
                output=0,
                amount_msat=member.onchain_sat * 1000,
                blockheight=height - 1000,
            )
            net.nodes[pk].fleet.utxos.append(utxo)
            net.nodes[pk].fleet.books.deposit(
                utxo.amount_msat,
                f"{utxo.txid}:0",
                utxo.blockheight,
                net.now - 1000 * 600,
                internal=False,
            )
    counter = 0
    for member in scenario.members:
        pk = members[member.name]
        for spec in member.channels:
            kind, _, ref = spec.peer.partition(":")
            peer = members[ref] if kind == "fleet" else ranked[int(ref) % len(ranked)]
            counter += 1
            scid = f"{900_000 + counter}x{counter}x0"
            node1, node2 = sorted((pk, peer))
            cap = spec.capacity_sat * 1000
            local = int(cap * spec.local_share)
            ours = Policy(
                spec.base_msat,
                spec.fee_ppm,
                htlc_max_msat=cap * 99 // 100,
                last_update=net.now - 3600,
            )
            theirs = Policy(
                1000,
                rng.choice([1, 10, 50, 100, 200, 500]),
                htlc_max_msat=cap * 99 // 100,
                last_update=net.now - 7200,
            )
            if kind == "fleet":
                theirs = Policy(0, 0, htlc_max_msat=cap * 99 // 100, last_update=net.now - 3600)
            channel = Channel(
                scid=scid,
                node1=node1,
                node2=node2,
                capacity_msat=cap,
                policies={0: ours if pk == node1 else theirs, 1: theirs if pk == node1 else ours},
                funding_txid=_hex(scid),
                funding_outnum=0,
                channel_id=_hex("cid" + scid),
                opened_at=net.now - 86_400 * 60,
                to_node1_msat=local if pk == node1 else cap - local,
                opener_is_node1=pk == node1,
            )
            for end in (pk, peer):
                if net.nodes[end].fleet is not None:
                    _book_open(net, channel, end)
                    channel.stats[end] = ChannelStats()
                    channel.next_htlc_id[end] = 0
                    net.nodes[end].fleet.peers[channel.other(end)] = True
            net.channels[scid] = channel
            net.nodes[pk].channels.append(scid)
            net.nodes[peer].channels.append(scid)


def _book_open(net: Network, channel: Channel, end: str) -> None:
    """The bookkeeper's open event of a channel that predates the simulation: `end`'s balance at
    the start stands in for its funding (what bkpr-channelsapy measures returns against)."""
    books = net.nodes[end].fleet.books  # type: ignore[union-attr]
    books.record(
        AccountEvent(
            "chain",
            channel.channel_id,
            "channel_open",
            channel.local_msat(end),
            0,
            channel.opened_at,
            outpoint=f"{channel.funding_txid}:{channel.funding_outnum}",
            blockheight=net.blockheight - (net.now - channel.opened_at) // 600,
        )
    )
