"""What every fault case checks: the warehouse before, during and after a fault."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tests.faults.nodeproxy import FaultProxy
from warehouse import db

NODE = "nexus-02"
DAY_S = 86_400
T0 = 1_767_225_600 + 3 * DAY_S  # the baseline run; the sim starts at 2026-01-01
T1, T2 = T0 + 3600, T0 + 7200  # the faulty run, the run after the fault cleared
RPC = "[rpc]\nretries = 2\nbackoff_base_s = 0.05\nbackoff_max_s = 0.3\npage_size = 100\n"
RPC_PATIENT = "[rpc]\nretries = 6\nbackoff_base_s = 0.2\nbackoff_max_s = 1.0\npage_size = 100\n"
RPC_FAST_TIMEOUT = RPC.replace("[rpc]\n", "[rpc]\ntimeout_s = 0.5\n")


@dataclass
class World:
    fleet: Any
    proxy: FaultProxy
    tmp: Path
    baseline: Path
    reference: dict[str, list]


def write_config(path: Path, fleet: Any, node_socket: Path, warehouse: Path, rpc: str) -> Path:
    lines = [f'warehouse_path = "{warehouse}"']
    lines += [
        "[[nodes]]",
        f'name = "{NODE}"',
        f'rpc_socket = "{node_socket}"',
        f'node_id = "{fleet.node_ids[NODE]}"',
    ]
    path.write_text("\n".join(lines) + "\n" + rpc)
    return path


# The tables collect writes, each with the columns that say what was observed (not when hiveops
# happened to store it), ordered by their keys.
OBSERVED = {
    "forwards": "SELECT * FROM forwards ORDER BY node_id, created_index",
    "node_snapshots": "SELECT * FROM node_snapshots ORDER BY node_id, taken_at",
    "channel_snapshots": "SELECT * FROM channel_snapshots ORDER BY node_id, taken_at, scid",
    "onchain_costs": "SELECT * FROM onchain_costs ORDER BY cost_key",
}


def dump(path: Path, tables: dict[str, str] = OBSERVED) -> dict[str, list[tuple[Any, ...]]]:
    db.release_all()
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name, query in tables.items():
            out[name] = con.execute(query).fetchall()
        return out
    finally:
        con.close()


def at(rows: list[tuple[Any, ...]], column: int, value: Any) -> list[tuple[Any, ...]]:
    return [r for r in rows if r[column] == value]


def assert_kept(before: dict[str, list], after: dict[str, list]) -> None:
    """Every row stored before the fault is still there, unchanged, exactly once."""
    for table, rows in before.items():
        later = after[table]
        assert len(set(later)) == len(later), f"{table}: duplicated rows"
        missing = set(rows) - set(later)
        assert not missing, f"{table}: {len(missing)} rows lost, e.g. {sorted(missing)[:1]}"


def copy_warehouse(source: Path, target: Path) -> Path:
    db.release_all()
    shutil.copyfile(source, target)
    return target


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert 'File "' not in text, text
