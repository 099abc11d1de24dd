"""What publishing the read copy costs on a big warehouse, against a collect run on the same file.

    .venv/bin/python bench/readcopy.py [--forwards 5000000] [--runs 5]

A simulated audit fleet (three nodes) is collected once, then the warehouse gets N synthetic
forwards (one synthetic node, so the real nodes' sync is unchanged). Measured in this one run:
- collect runs (the flow call plus handing the file back) that never publish
  (`publish_every_s` = a day), that publish after every run (`publish_max_age_s = 0`), and with
  the defaults (a publish costing over a tenth of the run waits until the copy is 30 min old);
- `publish_now` alone: CHECKPOINT, byte copy + fsync, rename;
- disk: the live file, the copy, and the peak while a publish runs (live + old copy + new copy).
Prints the ratio of a publish to a collect run: above 0.10 the defaults publish less often.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYNTHETIC = """
INSERT INTO forwards
SELECT '03' || repeat('ee', 32), i + 1, i + 1,
       (100 + i % 40) || 'x' || (i % 7) || 'x1', (200 + i % 37) || 'x3x0',
       i % 1000, i % 999, 1000 + (i * 7919) % 5000000, 990 + (i * 7919) % 5000000,
       10 + i % 500, CASE WHEN i % 5 = 0 THEN 'local_failed' ELSE 'settled' END, NULL, NULL,
       TIMESTAMPTZ '2025-01-01' + to_seconds(i * 6),
       TIMESTAMPTZ '2025-01-01' + to_seconds(i * 6 + 2), 'tlv'
FROM range($n) r(i)
"""
DAY_S = 86_400


def _set_warehouse(config: Path, base: str, keys: str) -> None:
    config.write_text(base + f"\n[warehouse]\n{keys}\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forwards", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows.collect import collect
    from lnsim.simfleet import SimFleet
    from models.settings import load_settings
    from warehouse import db

    with (
        tempfile.TemporaryDirectory(prefix="bench-readcopy-") as tmp,
        prefect_test_harness(server_startup_timeout=180),  # a busy 2-core box starts it slowly
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        SimFleet("audit", workdir=Path(tmp) / "sim") as fleet,
    ):
        work = Path(tmp)
        live = work / "hiveops.duckdb"
        config = fleet.write_config(work / "hiveops.toml", live)
        base = config.read_text()
        fleet.advance(3 * DAY_S)
        collect(config_path=str(config), now=fleet.now)
        started = time.monotonic()
        with db.writer(live, who="bench load") as con:
            con.execute(SYNTHETIC, {"n": args.forwards})
            con.execute("CHECKPOINT")
        db.release_all()
        print(f"loaded {args.forwards:,} synthetic forwards in {time.monotonic() - started:.0f} s")
        copy = load_settings(config).read_copy_path
        db.publish_now(live, loop="bench", run_id="warm")

        def collect_runs(keys: str) -> tuple[list[float], int]:
            _set_warehouse(config, base, keys)
            times = []
            with db.reader(live) as con:
                before = con.execute("select count(*) from read_copy_publishes").fetchone()[0]
            for _ in range(args.runs):
                fleet.advance(600)
                t = time.monotonic()
                collect(config_path=str(config), now=fleet.now)
                db.release_all()  # the held connection's close (and the publish, if due)
                times.append(time.monotonic() - t)
            with db.reader(live) as con:
                after = con.execute("select count(*) from read_copy_publishes").fetchone()[0]
            return times, after - before

        plain, _ = collect_runs("publish_every_s = 86400")  # the largest allowed: no publish
        every, every_n = collect_runs("publish_max_age_s = 0")
        auto, auto_n = collect_runs("")
        publishes = [db.publish_now(live, loop="bench", run_id=f"p{i}") for i in range(args.runs)]
        live_b, copy_b = live.stat().st_size, copy.stat().st_size

    med = statistics.median
    pub = [p for p in publishes if p is not None]
    total, ckpt, cp = (
        med(getattr(p, a) for p in pub) for a in ("total_s", "checkpoint_s", "copy_s")
    )
    runs = args.runs
    print(f"collect run, never publishing   (median of {runs}): {med(plain):.2f} s {_fmt(plain)}")
    print(
        f"collect run, publishing every run: {med(every):.2f} s {_fmt(every)}, {every_n} publishes"
    )
    print(f"collect run, defaults           : {med(auto):.2f} s {_fmt(auto)}, {auto_n} publishes")
    print(f"publish alone: {total:.2f} s (checkpoint {ckpt:.2f} s, copy + fsync {cp:.2f} s)")
    peak = (live_b + 2 * copy_b) / 1e6
    print(f"disk: live {live_b / 1e6:.0f} MB, copy {copy_b / 1e6:.0f} MB, peak while publishing")
    print(f"      {peak:.0f} MB (live + old copy + new copy)")
    ratio = total / med(plain)
    print(f"publish / collect run: {ratio:.2f} (over 0.10: the defaults publish less often)")
    for name, times in (("every run", every), ("defaults", auto)):
        added = (med(times) - med(plain)) / med(plain)
        print(f"collect run time added, {name}: {added:+.0%}")
    return 0


def _fmt(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"


if __name__ == "__main__":
    sys.exit(main())
