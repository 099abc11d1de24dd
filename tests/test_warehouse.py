import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from warehouse import db
from warehouse.migrate import available

HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    from pathlib import Path
    from warehouse import db
    path, mode, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    if mode == "hiveops":
        with db.writer(path, who="holder test"):
            print("held", flush=True); time.sleep(seconds)
    else:
        con = duckdb.connect(str(path)); print("held", flush=True); time.sleep(seconds); con.close()
    """
)


def hold(path: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    db.release_all()  # our own idle-held connection would block the foreign holder
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_migrations_are_applied_once_and_recorded(warehouse_path: Path) -> None:
    with db.writer(warehouse_path) as con:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()]
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert versions == [v for v, _, _ in available()]
    assert {
        "nodes",
        "channel_snapshots",
        "forwards",
        "peer_fee_policies",
        "onchain_costs",
        "heartbeats",
        "alerts",
        "channel_latest",
        "daily_revenue",
    } <= tables
    db._migrated.clear()
    with db.writer(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(versions)


def test_a_second_hiveops_writer_waits_for_the_first(warehouse_path: Path) -> None:
    db.ensure_migrated(warehouse_path)
    proc = hold(warehouse_path, "hiveops", 1.0)
    started = time.monotonic()
    with db.writer(warehouse_path, timeout_s=20) as con:
        con.execute("SELECT 1").fetchall()
    assert time.monotonic() - started >= 0.5
    proc.wait(10)


def test_lock_timeout_names_the_file_the_holder_and_the_fix(warehouse_path: Path) -> None:
    db.ensure_migrated(warehouse_path)
    proc = hold(warehouse_path, "hiveops", 3.0)
    with pytest.raises(db.WarehouseLocked) as err, db.writer(warehouse_path, timeout_s=0.3):
        pass
    message = str(err.value)
    assert str(warehouse_path) in message and f"pid {proc.pid}" in message
    assert "lock_timeout_s" in message
    proc.wait(10)


def test_foreign_duckdb_holder_is_waited_for_then_released(warehouse_path: Path) -> None:
    db.ensure_migrated(warehouse_path)
    proc = hold(warehouse_path, "duckdb", 1.0)
    with db.writer(warehouse_path, timeout_s=20) as con:
        assert con.execute("SELECT count(*) FROM forwards").fetchone()[0] == 0
    proc.wait(10)


def test_reader_refuses_writes(warehouse_path: Path) -> None:
    db.ensure_migrated(warehouse_path)
    with db.reader(warehouse_path) as con, pytest.raises(duckdb.Error):
        con.execute("DELETE FROM forwards")


def forward(created: int, updated: int | None, status: str) -> dict[str, object]:
    return {
        "node_id": "n",
        "created_index": created,
        "updated_index": updated,
        "in_channel": "1x1x1",
        "out_channel": "2x2x2",
        "in_htlc_id": 1,
        "out_htlc_id": 2,
        "in_msat": 1001,
        "out_msat": 1000,
        "fee_msat": 1,
        "status": status,
        "failcode": None,
        "failreason": None,
        "received_at": datetime(2026, 1, 1, tzinfo=UTC),
        "resolved_at": None,
        "style": "tlv",
    }


def upsert(con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> None:
    frame = pl.DataFrame(rows).with_columns(pl.col("received_at").cast(pl.Datetime("us", "UTC")))
    db.stage(con, frame, ["node_id", "created_index"])
    db.run(con, "collect.upsert_forwards")


def test_duplicate_keys_in_one_batch_keep_the_last_row(warehouse_path: Path) -> None:
    with db.writer(warehouse_path) as con:
        upsert(con, [forward(1, None, "offered"), forward(1, 4, "settled")])
        assert con.execute("SELECT status FROM forwards").fetchall() == [("settled",)]


def test_forward_is_only_replaced_by_a_newer_version(warehouse_path: Path) -> None:
    with db.writer(warehouse_path) as con:
        upsert(con, [forward(1, None, "offered")])
        upsert(con, [forward(1, 5, "settled")])
        upsert(con, [forward(1, 3, "failed")])  # an older update read late
        upsert(con, [forward(1, None, "offered")])  # a re-read of the original
        assert con.execute("SELECT status, updated_index FROM forwards").fetchall() == [
            ("settled", 5)
        ]
