"""Collect tasks: read one node, write what it said. Each task is one node, so a flow over a
fleet stays at a handful of task runs per node however many forwards or channels there are."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import polars as pl
from prefect import task

from engine import ingest, snapshot
from models.cln import (
    GetInfo,
    GossipChannel,
    IncomeEvent,
    ListFunds,
    PeerChannel,
    field_filter,
)
from models.forwards import forwards_frame
from models.settings import NodeConfig, RpcConfig
from models.snapshot import NodeState
from tasks.gateway import NodeError, NodeGateway
from warehouse import db

log = logging.getLogger("hiveops.collect")


class SnapshotRejected(RuntimeError):
    """A snapshot that contradicts the node's own listfunds; storing it would poison P&L."""


@task(name="fetch-node-state")
def fetch_node_state(
    node: NodeConfig, rpc: RpcConfig, taken_at: datetime, is_fleet: bool
) -> NodeState:
    gw = NodeGateway(node, rpc)
    info = gw.call_parsed("getinfo", GetInfo.model_validate)
    channels = gw.call_parsed(
        "listpeerchannels",
        lambda r: [PeerChannel.model_validate(c) for c in r["channels"]],
        filter={"channels": [field_filter(PeerChannel)]},
    )
    funds = gw.call_parsed("listfunds", ListFunds.model_validate)
    return NodeState(
        name=node.name,
        is_fleet=is_fleet,
        taken_at=taken_at,
        info=info,
        channels=channels,
        funds=funds,
    )


@task(name="check-snapshot")
def check_snapshot(state: NodeState) -> None:
    problems = snapshot.snapshot_problems(state)
    if problems:
        raise SnapshotRejected(
            f"node {state.name}: snapshot rejected, not stored: {'; '.join(problems)}"
        )


@task(name="store-snapshot", retries=2, retry_delay_seconds=2)
def store_snapshot(
    warehouse_path: Path, state: NodeState, fleet_ids: set[str], lock_timeout_s: float
) -> int:
    channels = snapshot.channel_rows(state, fleet_ids)
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect snapshot") as con:
        con.execute("BEGIN TRANSACTION")
        db.stage(con, snapshot.node_row(state), ["node_id"])
        db.run(con, "collect.upsert_node")
        db.stage(con, snapshot.node_snapshot_row(state), ["node_id", "taken_at"])
        db.run(con, "collect.insert_node_snapshot")
        db.stage(con, channels, ["node_id", "taken_at", "scid"])
        db.run(con, "collect.insert_channel_snapshots")
        con.execute("COMMIT")
    return channels.height + 1


@task(name="sync-forwards", retries=2, retry_delay_seconds=2)
def sync_forwards(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    node_id: str,
    lock_timeout_s: float,
) -> int:
    """Page listforwards from the last stored created_index; each page is committed on its own,
    so a node that vanishes mid-sync keeps every page already read."""
    gw = NodeGateway(node, rpc)
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect forwards") as con:
        mark = db.fetch_one(con, "collect.forwards_high_water", node_id=node_id)
    written = 0
    start = int(mark["last_created_index"]) + 1
    written += _pull(gw, warehouse_path, node_id, "created", start, rpc.page_size, lock_timeout_s)
    if mark["offered"]:
        # In-flight forwards settle later; their new state shows up in the `updated` index.
        start = int(mark["last_updated_index"]) + 1
        written += _pull(
            gw, warehouse_path, node_id, "updated", start, rpc.page_size, lock_timeout_s
        )
    return written


def _pull(
    gw: NodeGateway,
    warehouse_path: Path,
    node_id: str,
    index: str,
    start: int,
    page_size: int,
    lock_timeout_s: float,
) -> int:
    written = 0
    while True:
        page = gw.call_parsed(
            "listforwards",
            lambda r: forwards_frame(r["forwards"]),
            {"index": index, "start": start, "limit": page_size},
        )
        if page.height:
            rows = ingest.forward_rows(page, node_id)
            with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect forwards") as con:
                written += db.stage(con, rows, ["node_id", "created_index"])
                db.run(
                    con,
                    "collect.insert_new_forwards"
                    if index == "created"
                    else "collect.upsert_forwards",
                )
        if page.height < page_size:
            return written
        column = "created_index" if index == "created" else "updated_index"
        start = int(page[column].max()) + 1


@task(name="collect-peer-fees", retries=2, retry_delay_seconds=2)
def collect_peer_fees(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    state: NodeState,
    our_ids: set[str],
    lock_timeout_s: float,
) -> int:
    """What every channel toward each of our peers charges: the market our fees compete in."""
    gw = NodeGateway(node, rpc)
    peers = sorted({c.peer_id for c in state.channels})
    frames = []
    for peer_id in peers:
        gossip = gw.call_parsed(
            "listchannels",
            lambda r: [GossipChannel.model_validate(c) for c in r["channels"]],
            {"destination": peer_id},
            filter={"channels": [field_filter(GossipChannel)]},
        )
        frames.append(
            ingest.policy_rows(
                gossip,
                peer_id=peer_id,
                observer_id=state.info.id,
                our_ids=our_ids,
                seen_at=state.taken_at,
            )
        )
    if not frames:
        return 0
    rows = pl.concat(frames)
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect peer fees") as con:
        n = db.stage(con, rows, ["scid", "direction", "last_update"])
        db.run(con, "collect.insert_peer_fee_policies")
    return n


@task(name="collect-costs", retries=2, retry_delay_seconds=2)
def collect_costs(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    node_id: str,
    lock_timeout_s: float,
) -> int:
    """On-chain fees from bookkeeper; a node without bookkeeper is logged, not failed."""
    gw = NodeGateway(node, rpc)
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect costs") as con:
        since = int(
            db.fetch_one(con, "collect.income_high_water", node_id=node_id)["last_timestamp"]
        )
    try:
        events = gw.call_parsed(
            "bkpr-listincome",
            lambda r: [IncomeEvent.model_validate(e) for e in r["income_events"]],
            {"start_time": max(0, since - 3600)},
        )
    except NodeError as exc:
        if exc.code == -32601:
            log.warning("%s: bookkeeper not available; on-chain costs not collected", node.name)
            return 0
        raise
    rows = ingest.cost_rows(events, node_id)
    if rows.is_empty():
        return 0
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect costs") as con:
        n = db.stage(con, rows, ["node_id", "cost_key"])
        db.run(con, "collect.insert_onchain_costs")
    return n
