"""The DuckLake alternative to the read copy, measured: readers attaching while a writer commits.

Needs DuckDB 1.5.5 and its extension wheels, in a venv of its own (the project stays on 2.0):

    python3 -m venv /tmp/dl-venv
    /tmp/dl-venv/bin/pip install duckdb==1.5.5 duckdb-extensions==1.5.5 \
        duckdb-extension-ducklake==1.5.5 duckdb-extension-sqlite-scanner==1.5.5
    /tmp/dl-venv/bin/python bench/ducklake_readers.py [--seconds 30]

A DuckLake with a SQLite catalog gets 100k rows; one process then inserts 1,000 rows every 0.1 s
while another attaches read-only, counts the rows and detaches, as often as it can. Printed:
commits, reader connects, failures, and the median connect + count + close, beside the same on a
plain .duckdb file (what a reader of the read copy pays).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def lake(folder: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    from duckdb_extensions import import_extension  # the PyPI wheels, installed offline

    con = duckdb.connect()
    for ext in ("sqlite_scanner", "ducklake"):
        import_extension(ext, con=con)
    option = ", READ_ONLY" if read_only else ""
    con.execute(
        f"ATTACH 'ducklake:sqlite:{folder}/catalog.sqlite' AS lake "
        f"(DATA_PATH '{folder}/data/'{option})"
    )
    return con


def writer(folder: Path, seconds: float) -> None:
    con = lake(folder)
    commits = failures = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            con.execute("INSERT INTO lake.t SELECT range, 'y' FROM range(1000)")
            commits += 1
        except duckdb.Error:
            failures += 1
        time.sleep(0.1)
    print(commits, failures, flush=True)


def readers(connect, seconds: float) -> tuple[int, int, float]:  # type: ignore[no-untyped-def]
    ok = failed = 0
    times: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            con = connect()
            con.execute("SELECT count(*) FROM t").fetchone()
            con.close()
            ok += 1
            times.append(time.monotonic() - t)
        except duckdb.Error:
            failed += 1
    return ok, failed, statistics.median(times) if times else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--writer", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.writer:
        writer(args.writer, args.seconds)
        return 0
    with tempfile.TemporaryDirectory(prefix="ducklake-") as tmp:
        folder = Path(tmp)
        con = lake(folder)
        con.execute("CREATE TABLE lake.t (i BIGINT, v VARCHAR)")
        con.execute("INSERT INTO lake.t SELECT range, 'x' FROM range(100000)")
        con.close()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--writer", str(folder), "--seconds", str(args.seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )

        def lake_reader() -> duckdb.DuckDBPyConnection:
            con = lake(folder, read_only=True)
            con.execute("USE lake")
            return con

        ok, failed, median_s = readers(lake_reader, args.seconds)
        commits, write_failures = map(int, proc.communicate()[0].split())
        plain = folder / "plain.duckdb"
        con = duckdb.connect(str(plain))
        con.execute("CREATE TABLE t AS SELECT range i, 'x' v FROM range(100000)")
        con.close()
        p_ok, p_failed, p_median_s = readers(
            lambda: duckdb.connect(str(plain), read_only=True), min(args.seconds, 10)
        )
    print(f"duckdb {duckdb.__version__}, DuckLake with a SQLite catalog, {args.seconds:.0f} s:")
    print(f"  writer: {commits} commits, {write_failures} failed")
    print(
        f"  readers: {ok} connects, {failed} failed, median attach + count + close {median_s:.3f} s"
    )
    print(f"plain .duckdb file: {p_ok} connects, {p_failed} failed, median {p_median_s:.3f} s")
    print(f"ratio DuckLake / plain file per reader connect: {median_s / p_median_s:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
