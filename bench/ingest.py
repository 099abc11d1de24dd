"""Backfill forwards from the simulator into DuckDB through the real path, and compare it with
the fastest raw path over the same records.

    .venv/bin/python bench/ingest.py [--forwards 1000000] [--page-size 10000] [--scenario audit]

ours: pyln-client over the unix socket -> models.forwards (typed polars frame, old-msat tolerant)
      -> engine.ingest row shaping -> deduplicated upsert into the `forwards` table (with its
      primary key and CHECKs), committed page by page (tasks.collect.sync_forwards).
raw:  the same pages' JSON bytes, already in memory -> json.loads -> pyarrow -> INSERT into a
      table without constraints.
The simulator runs in a child process so its serialisation does not share our GIL; both paths
are measured in this one run and printed as forwards/s and their ratio.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.settings import NodeConfig, RpcConfig  # noqa: E402
from tasks.collect import sync_forwards  # noqa: E402
from warehouse import db  # noqa: E402

RAW_SCHEMA = pa.schema(
    [
        ("created_index", pa.int64()),
        ("updated_index", pa.int64()),
        ("in_channel", pa.string()),
        ("in_htlc_id", pa.int64()),
        ("in_msat", pa.int64()),
        ("out_channel", pa.string()),
        ("out_htlc_id", pa.int64()),
        ("out_msat", pa.int64()),
        ("fee_msat", pa.int64()),
        ("status", pa.string()),
        ("style", pa.string()),
        ("received_time", pa.float64()),
        ("resolved_time", pa.float64()),
        ("failcode", pa.int64()),
        ("failreason", pa.string()),
    ]
)

CHILD = """
import sys, time
from pathlib import Path
from lnsim.simfleet import SimFleet
fleet = SimFleet(sys.argv[1], workdir=Path(sys.argv[2]))
node = "nexus-02"
fleet.market.synthesize_forwards(fleet.node_ids[node], int(sys.argv[3]), seed=7)
# A real lightningd serialises in C; pre-render the simulator's JSON so that its Python
# serialisation is not what this benchmark measures.
import json
from lnsim.rpcmethods import forward_json
for f in fleet.net.nodes[fleet.node_ids[node]].fleet.forwards:
    f.json_cache = json.dumps(forward_json(f))
fleet.start()
print(fleet.socket_paths[node], fleet.node_ids[node], fleet.forward_count(node), flush=True)
sys.stdin.read()
fleet.stop()
"""


def raw_call(path: str, request: dict[str, object]) -> bytes:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(json.dumps(request).encode())
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n\n"):
            break
    sock.close()
    return b"".join(chunks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forwards", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--scenario", default="audit")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hiveops-ingest-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, args.scenario, str(work / "sim"), str(args.forwards)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert child.stdout is not None and child.stdin is not None
        rpc_path, node_id, sim_count = child.stdout.readline().split()
        print(f"simulator: {sim_count} forwards on nexus-02 ({time.monotonic() - t0:.1f}s setup)")

        node = NodeConfig(name="nexus-02", rpc_socket=Path(rpc_path))
        rpc = RpcConfig(page_size=args.page_size, timeout_s=120)
        wh = work / "ours.duckdb"
        db.ensure_migrated(wh)
        t0 = time.monotonic()
        ours_n = sync_forwards.fn(wh, node, rpc, node_id, 60.0)
        ours_s = time.monotonic() - t0
        with db.reader(wh) as con:
            stored = con.execute("SELECT count(*) FROM forwards").fetchall()[0][0]

        pages: list[bytes] = []
        start = 1
        while True:
            body = raw_call(
                rpc_path,
                {
                    "jsonrpc": "2.0",
                    "id": start,
                    "method": "listforwards",
                    "params": {"index": "created", "start": start, "limit": args.page_size},
                },
            )
            pages.append(body)
            count = body.count(b'"created_index"')
            if count < args.page_size:
                break
            start += count
        child.stdin.close()
        child.wait(30)

        con = duckdb.connect(str(work / "raw.duckdb"))
        t0 = time.monotonic()
        raw_n = 0
        for body in pages:
            rows = json.loads(body)["result"]["forwards"]
            if not rows:
                continue
            con.register("page", pa.Table.from_pylist(rows, schema=RAW_SCHEMA))
            con.execute("CREATE TABLE IF NOT EXISTS raw AS SELECT * FROM page LIMIT 0")
            con.execute("INSERT INTO raw SELECT * FROM page")
            raw_n += len(rows)
        raw_s = time.monotonic() - t0
        con.close()

    ours_rate, raw_rate = ours_n / ours_s, raw_n / raw_s
    print(f"ours: {ours_n} forwards in {ours_s:.2f}s = {ours_rate:,.0f}/s (stored {stored})")
    print(f"raw : {raw_n} forwards in {raw_s:.2f}s = {raw_rate:,.0f}/s (json.loads + insert only)")
    print(f"ratio ours/raw = {ours_rate / raw_rate:.2f}  (goal >= 0.5)")
    ok = stored == int(sim_count) == ours_n
    print("counts match the simulator" if ok else "COUNT MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
