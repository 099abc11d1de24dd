"""A second hiveops writer, run as a child process: it dies by SIGKILL in the middle of a
warehouse write, or keeps writing while a loop runs.

It writes through the same warehouse code the loops use (`db.writer`, `db.stage`, the collect
loop's named statements, `migrate`), without Prefect so that it starts in a second, and kills
itself at the chosen point, the way the OOM killer or a power cut would stop a flow run.

    python childwriter.py MODE WAREHOUSE [ARGS]
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from engine import ingest, snapshot
from models.cln import GetInfo, ListFunds, PeerChannel
from models.forwards import forwards_frame
from models.settings import NodeConfig, RpcConfig
from models.snapshot import NodeState
from tasks.gateway import NodeGateway
from warehouse import db, migrate


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def node_state(socket_path: str, taken_at: datetime) -> NodeState:
    gw = NodeGateway(NodeConfig(name="nexus-02", rpc_socket=Path(socket_path)), RpcConfig())
    return NodeState(
        name="nexus-02",
        is_fleet=True,
        taken_at=taken_at,
        info=gw.call_parsed("getinfo", GetInfo.model_validate),
        channels=gw.call_parsed(
            "listpeerchannels", lambda r: [PeerChannel.model_validate(c) for c in r["channels"]]
        ),
        funds=gw.call_parsed("listfunds", ListFunds.model_validate),
    )


def snapshot_transaction(wh: Path, socket_path: str, taken_at: float) -> None:
    """The collect loop's snapshot write, killed after its last insert, before COMMIT."""
    state = node_state(socket_path, datetime.fromtimestamp(taken_at, tz=UTC))
    with db.writer(wh, who="killer") as con:
        con.execute("BEGIN TRANSACTION")
        db.stage(con, snapshot.node_row(state), ["node_id"])
        db.run(con, "collect.upsert_node")
        db.stage(con, snapshot.node_snapshot_row(state), ["node_id", "taken_at"])
        db.run(con, "collect.insert_node_snapshot")
        db.stage(con, snapshot.channel_rows(state, set()), ["node_id", "taken_at", "scid"])
        db.run(con, "collect.insert_channel_snapshots")
        die()


def bulk_forwards(wh: Path, node_id: str) -> None:
    """A forwards insert large enough to be mid-write when the kill lands (0.3 s in)."""
    n = 400_000
    page = pl.DataFrame(
        {
            "created_index": range(10_000_000, 10_000_000 + n),
            "updated_index": [None] * n,
            "in_channel": ["1x1x1"] * n,
            "out_channel": ["2x2x2"] * n,
            "in_htlc_id": range(n),
            "out_htlc_id": range(n),
            "in_msat": [2_000] * n,
            "out_msat": [1_000] * n,
            "fee_msat": [1_000] * n,
            "status": ["settled"] * n,
            "failcode": [None] * n,
            "failreason": [None] * n,
            "received_time": [1_700_000_000.0] * n,
            "resolved_time": [1_700_000_001.0] * n,
            "style": ["tlv"] * n,
        },
        schema=forwards_frame([]).schema,
    )
    rows = ingest.forward_rows(page, node_id)
    with db.writer(wh, who="killer") as con:
        db.stage(con, rows, ["node_id", "created_index"])
        threading.Timer(0.3, die).start()
        db.run(con, "collect.insert_new_forwards")
    die()  # the insert finished first: die anyway, right after it


class _DyingConnection:
    """Passes statements to DuckDB and dies right after migration `version`'s DDL ran."""

    def __init__(self, con: duckdb.DuckDBPyConnection, version: int) -> None:
        self.con, self.version = con, version

    def execute(self, query: str, params: object = None) -> duckdb.DuckDBPyConnection:
        result = self.con.execute(query, params) if params is not None else self.con.execute(query)
        if query.startswith("INSERT INTO schema_migrations") and params[0] == self.version:  # type: ignore[index]
            die()
        return result


def migration(wh: Path) -> None:
    con = duckdb.connect(str(wh))
    migrate.migrate(_DyingConnection(con, 5))  # type: ignore[arg-type]


def hammer(wh: Path, seconds: float) -> None:
    """Alerts written one transaction at a time for `seconds`, through db.writer: another loop
    writing at the same time as the one under test."""
    import time
    import uuid

    deadline = time.monotonic() + seconds
    n = 0
    print("writing", flush=True)
    while time.monotonic() < deadline:
        with db.writer(wh, who="hammer") as con:
            db.run(
                con,
                "common.insert_alert",
                alert_id=uuid.uuid4().hex,
                raised_at=datetime.now(UTC),
                loop="hammer",
                node=None,
                kind="concurrent_writer",
                severity="info",
                message=f"write {n}",
                details="{}",
            )
        n += 1
    db.release_all()
    print(n, flush=True)


def main() -> None:
    mode, wh = sys.argv[1], Path(sys.argv[2])
    if mode == "snapshot_transaction":
        snapshot_transaction(wh, sys.argv[3], float(sys.argv[4]))
    elif mode == "bulk_forwards":
        bulk_forwards(wh, sys.argv[3])
    elif mode == "migration":
        migration(wh)
    elif mode == "hammer":
        hammer(wh, float(sys.argv[3]))
        return
    sys.exit(3)  # never reached: each mode dies first


if __name__ == "__main__":
    main()
