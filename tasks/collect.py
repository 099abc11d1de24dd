"""Collect tasks: read one node, write what it said. Each task is one node, so a flow over a
fleet stays at a handful of task runs per node however many forwards or channels there are."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

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


class IndexReset(RuntimeError):
    """The node's forward indexes no longer match the stored ones (its database was replaced)."""


def _retry_unless_node_error(task: Any, task_run: Any, state: Any) -> bool:
    """Task retries are for the warehouse: the gateway has already retried a node error with
    backoff, and retrying the whole task would only multiply that wait."""
    return not isinstance(state.data, NodeError | IndexReset)


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


@task(
    name="store-snapshot",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_unless_node_error,
)
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


@task(
    name="sync-forwards",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_unless_node_error,
)
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
        last = int(mark["last_created_index"])
        stored = db.fetch_one(con, "collect.forward_at", node_id=node_id, created_index=last)
    if stored:
        _check_index(gw, node, stored)
    written = 0
    written += _pull(
        gw, warehouse_path, node_id, "created", last + 1, rpc.page_size, lock_timeout_s
    )
    if mark["offered"]:
        # In-flight forwards settle later; their new state shows up in the `updated` index.
        start = int(mark["last_updated_index"]) + 1
        written += _pull(
            gw, warehouse_path, node_id, "updated", start, rpc.page_size, lock_timeout_s
        )
    return written


def _check_index(gw: NodeGateway, node: NodeConfig, stored: dict[str, Any]) -> None:
    probe = gw.call_parsed(
        "listforwards",
        lambda r: forwards_frame(r["forwards"]),
        {"index": "created", "start": stored["created_index"], "limit": 1},
    )
    problem = ingest.index_reset(stored, probe)
    if problem:
        raise IndexReset(
            f"node {node.name}: listforwards index reset: {problem}. lightningd's database was "
            f"replaced or restored from an old backup, and its forwards would overwrite stored "
            f"ones; no forward is collected until nodes[{node.name}].rpc_socket points at the "
            f"original node again, or this node's rows are moved out of the warehouse"
        )


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
    column = "created_index" if index == "created" else "updated_index"
    while True:
        raw = gw.call_parsed(
            "listforwards",
            lambda r: forwards_frame(r["forwards"]),
            {"index": index, "start": start, "limit": page_size},
        )
        page = ingest.rows_from(raw, start, column)
        if page.height < raw.height:
            if page.is_empty() and raw.height == page_size:
                raise NodeError(
                    gw.node.name,
                    "listforwards",
                    f"the node ignores 'start' (asked from {column} {start}, it answered from "
                    f"{raw[column].min()}) and honours 'limit': its forwards cannot be paged; "
                    f"raise rpc.page_size above its forward count or upgrade lightningd",
                )
            log.warning(
                "%s: listforwards ignores 'start' (asked from %s %d, got %d rows from %s); "
                "keeping the %d new ones",
                gw.node.name,
                column,
                start,
                raw.height,
                raw[column].min(),
                page.height,
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
        if raw.height < page_size or page.is_empty():
            return written
        start = int(page[column].max()) + 1


@task(
    name="collect-peer-fees",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_unless_node_error,
)
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


@task(
    name="collect-costs",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=_retry_unless_node_error,
)
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
