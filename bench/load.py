"""Load: a warehouse holding a year of a busy node, then collect and report runs on top of it.

    nice -n 10 .venv/bin/python bench/load.py [--forwards 5000000] [--runs 3]

1. The simulator (busy scenario, in a child process) is given `--forwards` synthetic forwards
   spread over the past 365 days on nexus-02.
2. Backfill: the same forwards go into a fresh warehouse through the warehouse write path the
   collect loop uses (models.forwards frame -> engine.ingest rows -> collect.insert_new_forwards;
   reading 5 M over JSON-RPC is what bench/ingest.py measures), and a snapshot of the node every
   8 h for the year through the collect loop's store task: what a year of collect leaves.
3. In a separate process (so its memory peak is its own), `--runs` times: the simulator runs
   8 busy hours, then the collect flow runs (a real Prefect flow run, incremental), timed; then
   the report flow runs once over the whole warehouse, timed. That process prints its peak RSS.
Goals: an incremental collect under 10 s, the report under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOUR_S = 3600
NODE = "nexus-02"

SIM = """
import sys
from pathlib import Path
import polars as pl
from lnsim.simfleet import SimFleet
from models.forwards import FORWARD_SCHEMA
fleet = SimFleet("busy", workdir=Path(sys.argv[1]))
fleet.advance(24 * 3600)
fleet.market.synthesize_forwards(fleet.node_ids["nexus-02"], int(sys.argv[2]), seed=7)
forwards = fleet.net.nodes[fleet.node_ids["nexus-02"]].fleet.forwards
pl.DataFrame(
    {c: [getattr(f, c, None) for f in forwards] for c in FORWARD_SCHEMA}, schema=FORWARD_SCHEMA
).write_parquet(sys.argv[3])
del forwards
fleet.start()
print(fleet.socket_paths["nexus-02"], fleet.node_ids["nexus-02"], fleet.control_path,
      fleet.now, fleet.forward_count("nexus-02"), flush=True)
sys.stdin.read()
fleet.stop()
"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backfill(config: Path, node_id: str, sim_now: int, dump: Path) -> None:
    import polars as pl

    from engine import ingest, snapshot
    from models.settings import load_settings
    from tasks.collect import fetch_node_state, store_snapshot
    from warehouse import db

    settings = load_settings(config)
    node, wh = settings.node(NODE), settings.warehouse_path
    db.ensure_migrated(wh)
    t0 = time.monotonic()
    frame, n = pl.read_parquet(dump), 0
    for chunk in frame.iter_slices(500_000):
        with db.writer(wh, who="load backfill") as con:
            n += db.stage(con, ingest.forward_rows(chunk, node_id), ["node_id", "created_index"])
            db.run(con, "collect.insert_new_forwards")
    took = time.monotonic() - t0
    print(f"backfill: {n:,} forwards in {took:.1f}s ({n / took:,.0f}/s)", flush=True)
    t0 = time.monotonic()
    snapshots = 0
    state = fetch_node_state.fn(node, settings.rpc, datetime.fromtimestamp(sim_now, tz=UTC), True)
    store_snapshot.fn(wh, state, {node_id}, 600.0)  # the node row, as the first collect writes it
    nodes, channels = [], []
    for step in range(365 * 3, 0, -1):  # every 8 h for a year, the node as it is now
        at = state.model_copy(
            update={"taken_at": datetime.fromtimestamp(sim_now - step * 8 * HOUR_S, tz=UTC)}
        )
        nodes.append(snapshot.node_snapshot_row(at))
        channels.append(snapshot.channel_rows(at, {node_id}))
    with db.writer(wh, who="load backfill") as con:  # the statements store_snapshot runs
        db.stage(con, pl.concat(nodes), ["node_id", "taken_at"])
        db.run(con, "collect.insert_node_snapshot")
        snapshots = db.stage(con, pl.concat(channels), ["node_id", "taken_at", "scid"])
        db.run(con, "collect.insert_channel_snapshots")
    db.release_all()
    print(
        f"backfill: {snapshots:,} snapshot rows (a year at 8 h) in {time.monotonic() - t0:.1f}s; "
        f"warehouse {wh.stat().st_size / 2**20:,.0f} MiB; peak RSS {peak_rss_mib():,.0f} MiB",
        flush=True,
    )


def measure(config: Path, control: str, runs: int) -> dict[str, object]:
    """The measured phase, in its own process: incremental collects, then the report."""
    from pyln.client import LightningRpc

    from flows.collect import collect
    from flows.report import report
    from models.settings import load_settings
    from warehouse import db

    sim = LightningRpc(control)
    wh = load_settings(config).warehouse_path
    now = sim.call("sim-now")["now"]
    t0 = time.monotonic()
    collect(config_path=str(config), now=now)  # starts the local Prefect server, collects nothing
    warmup_s = time.monotonic() - t0
    collect_s, new = [], []
    for _ in range(runs):
        now = sim.call("sim-advance", {"seconds": 8 * HOUR_S})["now"]
        with db.reader(wh) as con:
            before = con.execute("SELECT count(*) FROM forwards").fetchone()[0]  # type: ignore[index]
        t0 = time.monotonic()
        collect(config_path=str(config), now=now)
        collect_s.append(time.monotonic() - t0)
        with db.reader(wh) as con:
            after = con.execute("SELECT count(*) FROM forwards").fetchone()[0]  # type: ignore[index]
        new.append(after - before)
    t0 = time.monotonic()
    report(config_path=str(config), now=now)
    report_s = time.monotonic() - t0
    with db.reader(wh) as con:
        total = con.execute("SELECT count(*) FROM forwards").fetchone()[0]  # type: ignore[index]
    return {
        "warmup_s": warmup_s,
        "collect_s": collect_s,
        "new_forwards": new,
        "report_s": report_s,
        "forwards": total,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forwards", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--measure", nargs=2, metavar=("CONFIG", "CONTROL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1], args.runs)))
        return 0

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="hiveops-load-") as tmp:
        work = Path(tmp)
        dump = work / "forwards.parquet"
        t0 = time.monotonic()
        sim = subprocess.Popen(
            [sys.executable, "-c", SIM, str(work / "sim"), str(args.forwards), str(dump)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert sim.stdout is not None and sim.stdin is not None
        socket_path, node_id, control, sim_now, count = sim.stdout.readline().split()
        print(f"simulator: {int(count):,} forwards on {NODE} ({time.monotonic() - t0:.0f}s)")
        config = work / "hiveops.toml"
        config.write_text(
            f'warehouse_path = "{work / "load.duckdb"}"\n[[nodes]]\nname = "{NODE}"\n'
            f'rpc_socket = "{socket_path}"\nnode_id = "{node_id}"\n'
            "[rpc]\ntimeout_s = 300\npage_size = 10000\n"
        )
        backfill(config, node_id, int(sim_now), dump)
        env = {
            **os.environ,
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # as in the demo: task-run rows contend with flow runs for the server's SQLite
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        measured = subprocess.run(
            [sys.executable, __file__, "--runs", str(args.runs), "--measure", str(config), control],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        if measured.returncode != 0:
            print(measured.stderr[-4000:])
        else:
            print(measured.stdout.strip().splitlines()[-1], flush=True)
        sim.stdin.close()
        try:
            sim.wait(600)  # tearing down millions of forwards takes a while
        except subprocess.TimeoutExpired:
            sim.kill()
        if measured.returncode != 0:
            return 1
        m = json.loads(measured.stdout.strip().splitlines()[-1])

    collects = ", ".join(
        f"{s:.1f}s (+{n} forwards)" for s, n in zip(m["collect_s"], m["new_forwards"], strict=True)
    )
    print(f"warehouse: {m['forwards']:,} forwards")
    print(f"collect, first run (starts the local Prefect server): {m['warmup_s']:.1f}s")
    print(f"collect, incremental after 8 busy hours: {collects}; goal < 10 s")
    print(f"report over the whole warehouse: {m['report_s']:.1f}s; goal < 30 s")
    print(f"peak RSS of the collect+report process: {m['peak_rss_mib']:,.0f} MiB")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average at the end {load}")
    ok = max(m["collect_s"]) < 10 and m["report_s"] < 30
    print("goals met" if ok else "GOALS NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
