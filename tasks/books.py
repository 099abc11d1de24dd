"""Books tasks: read bookkeeper into the warehouse, and find fee changes hiveops did not make.

Bookkeeper is the ledger (issue #19): bkpr-listincome is the node's own income statement, every
tag as CLN reports it, and bkpr-channelsapy its per-channel return. A node without the bookkeeper
plugin is logged and skipped, never failed: the P&L then falls back to the warehouse.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from prefect import task

from engine.books.rows import account_rows, apy_rows, income_rows
from models.books import ChannelApy
from models.cln import IncomeEvent
from models.settings import NodeConfig, RpcConfig
from models.snapshot import NodeState
from tasks.gateway import NodeError, NodeGateway
from warehouse import db

log = logging.getLogger("hiveops.books")
UNKNOWN_COMMAND = -32601
REREAD_S = 3600  # consolidated on-chain fees of the last hour may still grow
APY_WINDOW = timedelta(days=30)


@task(name="collect-books", retries=2, retry_delay_seconds=2)
def collect_books(
    warehouse_path: Path,
    node: NodeConfig,
    rpc: RpcConfig,
    state: NodeState,
    lock_timeout_s: float,
) -> int:
    """bkpr-listincome since an hour before the last stored event (that span replaced, in one
    transaction), the channel_id -> scid map, and bkpr-channelsapy over the last 30 days."""
    gw = NodeGateway(node, rpc)
    node_id, at = state.info.id, state.taken_at
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect books") as con:
        mark = int(db.fetch_one(con, "books.income_high_water", node_id=node_id)["last_timestamp"])
    start = max(0, mark - REREAD_S)
    try:
        events = gw.call_parsed(
            "bkpr-listincome",
            lambda r: [IncomeEvent.model_validate(e) for e in r["income_events"]],
            {"start_time": start},
        )
    except NodeError as exc:
        if exc.code == UNKNOWN_COMMAND:
            log.warning(
                "%s: bookkeeper not available; the ledger falls back to forwards", node.name
            )
            return 0
        raise
    income = income_rows(events, node_id, at)
    accounts = account_rows(state.channels, node_id, at)
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect books") as con:
        con.execute("BEGIN TRANSACTION")
        db.run(con, "books.replace_income_after", node_id=node_id, start=start)
        written = db.stage(con, income, ["node_id", "income_key"])
        db.run(con, "books.insert_income")
        db.stage(con, accounts, ["node_id", "account"])
        db.run(con, "books.insert_accounts")
        con.execute("COMMIT")
    return written + _collect_apy(gw, warehouse_path, node_id, at, lock_timeout_s)


def _collect_apy(
    gw: NodeGateway, warehouse_path: Path, node_id: str, at: datetime, lock_timeout_s: float
) -> int:
    window_start = at - APY_WINDOW
    try:
        entries = gw.call_parsed(
            "bkpr-channelsapy",
            lambda r: [ChannelApy.model_validate(e) for e in r["channels_apy"]],
            {"start_time": int(window_start.timestamp()), "end_time": int(at.timestamp())},
        )
    except NodeError as exc:
        if exc.code == UNKNOWN_COMMAND:
            return 0
        raise
    rows = apy_rows(entries, node_id, at, window_start)
    if rows.is_empty():
        return 0
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect books") as con:
        n = db.stage(con, rows, ["node_id", "collected_at", "account"])
        db.run(con, "books.insert_channel_apy")
    return n


@task(name="detect-external-changes", retries=2, retry_delay_seconds=2)
def detect_external_changes(warehouse_path: Path, node_id: str, lock_timeout_s: float) -> int:
    """Fee, base fee or max-HTLC moves between the last two snapshots that no applied hiveops
    fee change explains (an operator's setchannel, another plugin)."""
    with db.writer(warehouse_path, timeout_s=lock_timeout_s, who="collect external") as con:
        before = db.fetch_one(con, "books.count_external", node_id=node_id)["n"]
        db.run(con, "books.detect_external_changes", node_id=node_id)
        after = db.fetch_one(con, "books.count_external", node_id=node_id)["n"]
    return int(after) - int(before)
