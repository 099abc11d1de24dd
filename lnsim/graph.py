"""The real Lightning graph snapshot (public gossip, 2026-02-03) and neighbourhoods cut from it.

A simulated fleet needs competitors with real capacities and real fees, not invented ones, or
fee experiments measure the simulator's imagination. The full graph (17k nodes) is far more than
a payer model can route over quickly, so we cut a connected neighbourhood of a few dozen to a few
hundred nodes, deterministically for a seed, and keep the channels among them.

Identifiers the snapshot lacks (short_channel_ids, funding txids, channel_ids) are derived
deterministically so the same scenario always shows the same ids.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl

GRAPH_NAME = "ln-graph-2026-02-03"
GRAPH_DIR_ENV = "HIVEOPS_GRAPH_DIR"
CHANNELS_FILE = f"{GRAPH_NAME}.channels.parquet"
NODES_FILE = f"{GRAPH_NAME}.nodes.parquet"
# External channels get blocks in [600_000, 606_000): before any fleet channel, all < 2^24.
EXTERNAL_SCID_BLOCK = 600_000


class GraphNotFoundError(FileNotFoundError):
    pass


def graph_dir() -> Path:
    """`$HIVEOPS_GRAPH_DIR`, else the nearest `shared/data` above this checkout."""
    env = os.environ.get(GRAPH_DIR_ENV)
    if env:
        if (Path(env) / CHANNELS_FILE).exists():
            return Path(env)
        raise GraphNotFoundError(
            f"{GRAPH_DIR_ENV}={env} but {Path(env) / CHANNELS_FILE} does not exist; point "
            f"{GRAPH_DIR_ENV} at the folder holding {CHANNELS_FILE} and {NODES_FILE}"
        )
    tried = []
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data"
        tried.append(str(candidate / CHANNELS_FILE))
        if (candidate / CHANNELS_FILE).exists():
            return candidate
    raise GraphNotFoundError(
        f"Lightning graph snapshot not found (tried {', '.join(tried[:3])}, ...); set "
        f"{GRAPH_DIR_ENV} to the folder holding {CHANNELS_FILE} and {NODES_FILE}"
    )


@lru_cache(maxsize=2)
def _load(folder: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    channels = pl.read_parquet(Path(folder) / CHANNELS_FILE)
    nodes = pl.read_parquet(Path(folder) / NODES_FILE)
    return channels, nodes


def load_graph(folder: Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(half-channels, nodes) frames, read once per process: tests build many networks."""
    return _load(str(folder or graph_dir()))


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """The external part of a simulated network: node rows and enabled half-channel rows."""

    nodes: pl.DataFrame  # node_idx, pubkey, alias, in BFS order
    half_channels: pl.DataFrame  # enabled half-channels with both ends in `nodes`


def select_neighbourhood(
    size: int,
    seed: int,
    *,
    hub_rank: int = 40,
    fanout: int = 6,
    max_channels_per_node: int = 8,
    folder: Path | None = None,
) -> Neighbourhood:
    """A connected set of `size` real nodes, grown breadth-first from the `hub_rank`-th hub.

    Neighbours are visited in seeded random order and at most `fanout` per node, which keeps the
    real mix of hubs and small nodes rather than only the hub's biggest friends. Channels are kept
    when they are among the `max_channels_per_node` largest of either end: payers route over big
    channels anyway, and a sparser graph keeps path finding fast for month-long runs.
    """
    channels, nodes = load_graph(folder)
    enabled = channels.filter(pl.col("enabled"))
    degree = (
        enabled.group_by("source_idx")
        .agg(pl.len().alias("degree"))
        .sort(["degree", "source_idx"], descending=[True, False])
    )
    hub = degree["source_idx"][min(hub_rank, degree.height - 1)]
    neighbours: dict[int, set[int]] = {}
    for src, dst in enabled.select("source_idx", "destination_idx").iter_rows():
        neighbours.setdefault(src, set()).add(dst)
    rng = random.Random(seed)
    chosen: list[int] = []
    seen, queue = {hub}, deque([hub])
    while queue and len(chosen) < size:
        node = queue.popleft()
        chosen.append(node)
        candidates = sorted(neighbours.get(node, ()))
        rng.shuffle(candidates)
        for nxt in candidates[:fanout]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    inside = enabled.filter(
        pl.col("source_idx").is_in(chosen) & pl.col("destination_idx").is_in(chosen)
    )
    ranked = inside.with_columns(
        pl.col("capacity_sat").rank("ordinal", descending=True).over("source_idx").alias("r1"),
        pl.col("capacity_sat").rank("ordinal", descending=True).over("destination_idx").alias("r2"),
    )
    keep = ranked.filter(
        (pl.col("r1") <= max_channels_per_node) | (pl.col("r2") <= max_channels_per_node)
    )["channel_idx"].unique()
    half_channels = inside.filter(pl.col("channel_idx").is_in(keep)).sort(
        ["channel_idx", "direction"]
    )
    order = {idx: i for i, idx in enumerate(chosen)}
    chosen_nodes = (
        nodes.filter(pl.col("node_idx").is_in(chosen))
        .with_columns(pl.col("node_idx").replace_strict(order).alias("_order"))
        .sort("_order")
        .drop("_order")
    )
    return Neighbourhood(nodes=chosen_nodes, half_channels=half_channels)


def external_scid(channel_idx: int) -> str:
    """A stable, unique short_channel_id (BLOCKxTXxOUT) for a snapshot channel."""
    return f"{EXTERNAL_SCID_BLOCK + channel_idx // 10}x{(channel_idx % 10) * 137 + 1}x0"


def funding_txid(scid: str) -> str:
    """A fake but well-formed funding txid (64 hex), stable per scid."""
    return hashlib.sha256(f"funding:{scid}".encode()).hexdigest()


def channel_id(txid: str, outnum: int) -> str:
    """BOLT 2's channel_id: the funding txid (internal byte order) XOR the output index."""
    raw = bytearray(bytes.fromhex(txid)[::-1])
    raw[30] ^= (outnum >> 8) & 0xFF
    raw[31] ^= outnum & 0xFF
    return raw.hex()
